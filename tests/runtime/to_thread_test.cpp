// weft::to_thread: blocking calls on the pool while only the calling fiber waits.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../weft_test.hpp"
#include <weft/runtime/detail/sanitizer.hpp>

using namespace weft_test;

namespace {

// gate lets a test hold pool threads inside their call until it opens.
struct gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  void wait() {
    std::unique_lock lock(m);
    cv.wait(lock, [this] { return open; });
  }
  void release() {
    {
      std::lock_guard lock(m);
      open = true;
    }
    cv.notify_all();
  }
};

}  // namespace

TEST(ToThread, ReturnsTheResultAndRunsOnAnotherThread) {
  run_checked([] {
    const auto caller = std::this_thread::get_id();
    EXPECT_EQ(weft::to_thread([](int a, const std::string& b) { return b + std::to_string(a); }, 7, "x"), "x7");
    EXPECT_NE(weft::to_thread([] { return std::this_thread::get_id(); }), caller);
    int side = 0;
    weft::to_thread([&side] { side = 3; });  // void; the caller waits, so a reference is safe here
    EXPECT_EQ(side, 3);
  });
}

TEST(ToThread, OnlyTheCallingFiberWaits) {
  hang_guard guard;
  run_checked([] {
    auto g = std::make_shared<gate>();
    int ticks = 0;
    auto ticker = weft::spawn([&] {
      while (ticks < 5) {
        weft::this_fiber::sleep_for(1ms);
        ++ticks;
      }
      g->release();  // the call ends only once the scheduler has gone on without it
    });
    weft::to_thread([g] { g->wait(); });
    EXPECT_EQ(ticks, 5);
    ticker.join();
  });
}

TEST(ToThread, RethrowsTheException) {
  run_checked([] {
    EXPECT_THROW(weft::to_thread([]() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
  });
}

TEST(ToThread, DeadlineScopeStopsWaitingAndDropsTheLateResult) {
  hang_guard guard;
  run_checked([] {
    auto g = std::make_shared<gate>();
    auto finished = std::make_shared<std::atomic<bool>>(false);
    EXPECT_THROW(weft::with_timeout(5ms, [&] {
                   return weft::to_thread([g, finished] {
                     g->wait();
                     *finished = true;
                     return 1;
                   });
                 }),
                 weft::timeout_error);
    EXPECT_FALSE(*finished);  // the call is still running; the fiber left it
    g->release();
    while (!*finished) weft::this_fiber::sleep_for(1ms);
  });
}

TEST(ToThread, CancellationStopsWaitingAtOnce) {
  hang_guard guard;
  run_checked([] {
    auto g = std::make_shared<gate>();
    auto waiter = weft::spawn([g] { return weft::to_thread([g] { g->wait(); return 2; }); });
    weft::this_fiber::sleep_for(2ms);
    waiter.cancel();
    EXPECT_THROW(waiter.join(), weft::cancelled_error);
    g->release();
  });
}

// At the limit, calls queue in order; a queued call whose fiber left never starts.
TEST(ToThread, SaturationQueuesAndAbandonedQueuedCallsNeverStart) {
  hang_guard guard;
  const std::size_t previous = weft::to_thread_limit();
  weft::set_to_thread_limit(1);
  run_checked([] {
    auto g = std::make_shared<gate>();
    auto order = std::make_shared<std::vector<int>>();  // written by the one pool thread
    auto blocker = weft::spawn([g, order] { weft::to_thread([g, order] { g->wait(); order->push_back(1); }); });
    weft::this_fiber::yield();  // blocker's call takes the only thread
    auto second = weft::spawn([order] { weft::to_thread([order] { order->push_back(2); }); });
    auto abandoned = weft::spawn([order] { weft::to_thread([order] { order->push_back(99); }); });
    weft::this_fiber::sleep_for(2ms);
    abandoned.cancel();
    EXPECT_THROW(abandoned.join(), weft::cancelled_error);
    // A scope that expires while the call is still queued says so (a pool too small
    // for its load reads otherwise as a slow call).
    try {
      weft::with_timeout(2ms, [order] { weft::to_thread([order] { order->push_back(98); }); });
      ADD_FAILURE() << "the queued call did not time out";
    } catch (const weft::timeout_error& e) {
      EXPECT_STREQ(e.what(),
                   "weft::to_thread (queued, not started: the pool's one thread was busy): deadline passed");
    }
    g->release();
    blocker.join();
    second.join();
    EXPECT_EQ(*order, (std::vector<int>{1, 2}));
    // The queue is FIFO and one thread serves it: had the cancelled call started,
    // it would have run before this one.
    weft::to_thread([order] { order->push_back(3); });
    EXPECT_EQ(*order, (std::vector<int>{1, 2, 3}));
  });
  weft::set_to_thread_limit(previous);
}

// Raising the limit starts threads for the calls queued at the old one: here the
// running call waits for the queued one (it used to wait until the next submit).
TEST(ToThread, RaisingTheLimitStartsQueuedCalls) {
  hang_guard guard;
  const std::size_t previous = weft::to_thread_limit();
  weft::set_to_thread_limit(1);
  run_checked([] {
    auto g = std::make_shared<gate>();
    auto first = weft::spawn([g] { weft::to_thread([g] { g->wait(); }); });
    weft::this_fiber::yield();  // first's call takes the only thread
    auto second = weft::spawn([g] { weft::to_thread([g] { g->release(); }); });
    weft::this_fiber::yield();  // second's call is queued behind it
    weft::set_to_thread_limit(2);
    first.join();  // returns only if the queued call ran meanwhile
    second.join();
  });
  weft::set_to_thread_limit(previous);
}

TEST(ToThread, ManyCallsAtOnceAllComeBack) {
  hang_guard guard;
  run_checked([] {
    std::vector<weft::fiber<int>> fs;
    for (int i = 0; i < 200; ++i) fs.push_back(weft::spawn([i] { return weft::to_thread([i] { return i * 2; }); }));
    int sum = 0;
    for (auto& f : fs) sum += f.join();
    EXPECT_EQ(sum, 199 * 200);
  });
}

TEST(ToThread, Misuse) {
  EXPECT_THROW(weft::to_thread([] { return 0; }), weft::error);  // outside a fiber
  try {
    weft::set_to_thread_limit(0);
    ADD_FAILURE() << "a limit of 0 was accepted";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), std::errc::invalid_argument);
  }
}

// A fiber waiting in to_thread is not deadlocked: the pool thread will wake it.
TEST(ToThread, AWaitingFiberIsNotTakenForDeadlocked) {
  hang_guard guard;
  EXPECT_EQ(run_checked([] {
              return weft::to_thread([] {
                std::this_thread::sleep_for(20ms);
                return 5;
              });
            }),
            5);
}

// When main returns, a fiber still waiting in to_thread is cancelled like any other:
// run() does not wait for the pool thread's call.
TEST(ToThread, ShutdownReleasesAWaitingFiber) {
  hang_guard guard;
  auto g = std::make_shared<gate>();
  auto left = std::make_shared<std::atomic<bool>>(false);
  run_checked([g, left] {
    weft::spawn([g, left] {
      try {
        weft::to_thread([g] { g->wait(); });
      } catch (const weft::cancelled_error&) {
        *left = true;
        throw;
      }
    }).detach();
    weft::this_fiber::sleep_for(2ms);
  });
  EXPECT_TRUE(*left);
  g->release();  // the call ends on its own, after run()
}

namespace {

// fn may be move-only: to_thread moves it to the pool (std::function could not).
// fork(): the child has none of the pool's threads; the pool starts afresh there
// (a prefork server forks after it has used weft). Before, the child's to_thread
// waited for a thread that only the parent had (reported as a deadlock, or a hang
// when the child had a thread of its own).
TEST(ToThread, WorksInAForkedChild) {
#if WEFT_TSAN
  GTEST_SKIP() << "TSan does not let a child of a multi-threaded process start threads (die_after_fork)";
#endif
  weft::run([] { EXPECT_EQ(weft::to_thread([] { return 1; }), 1); });  // the pool has a thread now
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    ::alarm(20);  // a hang ends the child, and the test fails
    std::thread own([] { ::usleep(200'000); });  // so a deadlock could not be reported
    const int got = weft::run([] { return weft::to_thread([] { return 2; }); });
    own.join();
    ::_exit(got == 2 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

TEST(ToThread, TakesAMoveOnlyFunction) {
  run_checked([] {
    auto owned = std::make_unique<int>(41);
    EXPECT_EQ(weft::to_thread([p = std::move(owned)] { return *p + 1; }), 42);
    EXPECT_EQ(weft::to_thread([](std::unique_ptr<int> p) { return *p; }, std::make_unique<int>(5)), 5);
  });
}

// A call made when it is too late already (an expired deadline scope, a pending
// cancellation) throws before fn is queued: fn never runs (it used to run, or not,
// depending on which thread got there first).
TEST(ToThread, TooLateAlreadyNeverRunsTheFunction) {
  run_checked([] {
    auto ran = std::make_shared<std::atomic<int>>(0);
    int timeouts = 0, cancels = 0;
    for (int i = 0; i < 200; ++i) {
      try {
        weft::with_timeout(0ms, [&] { weft::to_thread([ran] { ++*ran; }); });
      } catch (const weft::timeout_error&) {
        ++timeouts;
      }
    }
    for (int i = 0; i < 200; ++i) {
      auto f = weft::spawn([ran] { weft::to_thread([ran] { ++*ran; }); });
      f.cancel();  // before it starts: its first blocking call sees the cancellation
      try {
        f.join();
      } catch (const weft::cancelled_error& e) {
        ++cancels;
        EXPECT_EQ(std::string(e.what()).rfind("weft::to_thread", 0), 0u) << e.what();
      }
    }
    EXPECT_EQ(cancels, 200);
    EXPECT_EQ(timeouts, 200);
    EXPECT_EQ(ran->load(), 0);
  });
}

}  // namespace
