// Spawning, joining, detaching and reporting of fibers.
#include <algorithm>
#include <atomic>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest-spi.h>

#include "../weft_test.hpp"

using namespace weft_test;

// The shared fixture itself: a leak it exists to catch makes the test fail.
TEST(Fixture, ReportsALeakedFiberRecord) {
  weft::fiber<void>* leaked = nullptr;
  EXPECT_NONFATAL_FAILURE(run_checked([&leaked] {
                            leaked = new weft::fiber<void>(weft::spawn([] {}));
                            leaked->wait();
                          }),
                          "fiber records leaked");
  delete leaked;
}

TEST(Fixture, ReportsALeakedDescriptor) {
  int fd = -1;
  EXPECT_NONFATAL_FAILURE(run_checked([&fd] { fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC); }),
                          "file descriptors leaked");
  ::close(fd);
}

// A descriptor open before the test and closed by it is reported too (a double
// close in weft would close someone else's descriptor).
TEST(Fixture, ReportsADescriptorClosedThatWasOpenBefore) {
  const int before = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(before, 0);
  EXPECT_NONFATAL_FAILURE(run_checked([before] { ::close(before); }), "file descriptor closed twice?");
}

TEST(Run, ReturnsMainsResult) { EXPECT_EQ(run_checked([] { return 42; }), 42); }

TEST(Run, RethrowsMainsException) {
  EXPECT_THROW(run_checked([]() -> int { throw std::runtime_error("boom"); }), std::runtime_error);
}

TEST(Run, MainIsNamedMain) {
  EXPECT_EQ(run_checked([] { return std::string(weft::this_fiber::name()); }), "main");
}

TEST(Run, NestedRunOnSameThreadThrows) {
  run_checked([] {
    try {
      weft::run([] {});
      ADD_FAILURE() << "nested run did not throw";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::scheduler_running);
      EXPECT_NE(std::string(e.what()).find("start another fiber with weft::spawn"), std::string::npos) << e.what();
    }
  });
}

TEST(Run, RunsAgainAfterFinishing) {
  EXPECT_EQ(run_checked([] { return 1; }), 1);
  EXPECT_EQ(run_checked([] { return 2; }), 2);
}

TEST(Run, CancelsFibersStillAliveWhenMainReturns) {
  auto finished = std::make_shared<std::vector<std::string>>();
  run_checked([finished] {
    for (int i = 0; i < 3; ++i)
      weft::spawn([finished, i] {
        try {
          weft::this_fiber::sleep_for(std::chrono::hours(1));
        } catch (const weft::cancelled_error&) {
          finished->push_back("cancelled " + std::to_string(i));
          throw;
        }
      }).detach();
    weft::this_fiber::yield();  // let them reach their sleep
  });
  EXPECT_EQ(finished->size(), 3u);
}

TEST(Run, DestructorsOfCancelledFibersRun) {
  auto tokens = std::make_shared<int>(0);
  std::weak_ptr<int> watch = tokens;
  run_checked([tokens = std::move(tokens)]() mutable {
    weft::spawn([held = std::move(tokens)] { weft::this_fiber::sleep_for(std::chrono::hours(1)); });
  });
  EXPECT_TRUE(watch.expired()) << "the cancelled fiber's captures were not destroyed";
}

// A fiber that swallows its shutdown cancellation keeps run() from returning; once
// run_options::shutdown_report_after has passed, run() says so on stderr, naming the
// fiber and its call, instead of looking hung without a word. It goes on waiting.
TEST(Run, FibersThatOutliveTheShutdownAreReportedThenWaitedFor) {
  hang_guard guard;
  for (std::size_t threads : {1u, 2u}) {
    weft::run_options options;
    options.threads = threads;
    options.shutdown_report_after = 20ms;
    std::atomic<int> ended{0};
    testing::internal::CaptureStderr();
    run_checked([&] {
      for (std::size_t on = 0; on < threads; ++on) {  // one on each scheduler
        weft::spawn({.name = "stubborn", .on = on}, [&] {
          try {
            weft::this_fiber::sleep_for(1h);
          } catch (const weft::cancelled_error&) {
          }
          weft::this_fiber::sleep_for(300ms);  // the shutdown is over by now, it thinks
          ++ended;
        }).detach();
      }
      weft::this_fiber::yield();
    }, options);
    const std::string err = testing::internal::GetCapturedStderr();
    EXPECT_EQ(ended, static_cast<int>(threads)) << "run() returned before the fibers ended";
    for (std::size_t on = 0; on < threads; ++on) {
      const std::regex expected(
          "(^|\n)weft::run: the shutdown began [0-9]+ ms ago \\(main returned, or "
          "background_runtime::stop\\(\\)\\), and 1 fiber" +
          (threads > 1 ? " of scheduler " + std::to_string(on) : std::string()) +
          " has not ended since the shutdown cancelled it \\(a fiber that catches weft::cancelled_error[^\n]*"
          "run\\(\\) waits for it\\): fiber [0-9]+ \"stubborn\": weft::this_fiber::sleep_for\n");
      EXPECT_TRUE(std::regex_search(err, expected)) << threads << " threads, scheduler " << on << "; stderr: " << err;
    }
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), static_cast<long>(threads)) << err;
  }
}

// A fiber that swallows the cancellation and never blocks again (a yield loop) is
// named too, as runnable.
TEST(Run, AFiberThatNeverBlocksAfterItsCancellationIsReportedAsRunnable) {
  hang_guard guard;
  weft::run_options options;
  options.shutdown_report_after = 0ms;
  testing::internal::CaptureStderr();
  run_checked([] {
    weft::spawn({.name = "spinner"}, [] {
      try {
        weft::this_fiber::sleep_for(1h);
      } catch (const weft::cancelled_error&) {
      }
      const auto until = std::chrono::steady_clock::now() + 300ms;
      while (std::chrono::steady_clock::now() < until) weft::this_fiber::yield();
    }).detach();
    weft::this_fiber::yield();
  }, options);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("and 1 fiber has not ended since the shutdown cancelled it"), std::string::npos) << err;
  EXPECT_NE(err.find(": fiber "), std::string::npos) << err;
  EXPECT_NE(err.find(" \"spinner\": runnable\n"), std::string::npos) << err;
}

// Fibers that end with their cancellation, as they should, are not reported, even
// with a report due at once; nor is anything when the report is turned off.
TEST(Run, NoShutdownReportForFibersThatEndOnTheirCancellation) {
  weft::run_options options;
  options.shutdown_report_after = 0ms;
  testing::internal::CaptureStderr();
  run_checked([] {
    for (int i = 0; i < 5; ++i) weft::spawn([] { weft::this_fiber::sleep_for(1h); }).detach();
    weft::this_fiber::yield();
  }, options);
  options.shutdown_report_after = std::chrono::milliseconds::max();
  run_checked([] {
    weft::spawn([] {
      try {
        weft::this_fiber::sleep_for(1h);
      } catch (const weft::cancelled_error&) {
      }
      weft::this_fiber::sleep_for(20ms);
    }).detach();
  }, options);
  // Nor for posts from another thread still waiting to start when main returns:
  // they start (cancelled) and end; the shutdown is busy, not stuck.
  options.shutdown_report_after = 0ms;
  std::atomic<int> posts_ran{0};
  run_checked([&] {
    auto sched = weft::this_scheduler();
    std::thread poster([&] {
      for (int i = 0; i < 1'000; ++i) sched.post([&] { ++posts_ran; });
    });
    poster.join();  // all queued; main returns before most of them start
  }, options);
  EXPECT_EQ(posts_ran, 1'000);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  options.shutdown_report_after = -1ms;
  EXPECT_THROW(weft::run(options, [] {}), weft::error);
}

TEST(Spawn, JoinReturnsResult) {
  run_checked([] {
    auto f = weft::spawn([](int a, int b) { return a + b; }, 2, 3);
    EXPECT_EQ(f.join(), 5);
    EXPECT_FALSE(f.joinable());
  });
}

TEST(Spawn, JoinRethrowsException) {
  run_checked([] {
    auto f = weft::spawn([] { throw std::logic_error("bad"); });
    EXPECT_THROW(f.join(), std::logic_error);
  });
}

TEST(Spawn, MoveOnlyResultAndArguments) {
  run_checked([] {
    auto f = weft::spawn([](std::unique_ptr<int> p) { return std::make_unique<int>(*p + 1); },
                         std::make_unique<int>(41));
    EXPECT_EQ(*f.join(), 42);
  });
}

TEST(Spawn, SecondJoinThrowsNotJoinable) {
  run_checked([] {
    auto f = weft::spawn([] {});
    f.join();
    try {
      f.join();
      ADD_FAILURE() << "second join did not throw";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::not_joinable);
    }
  });
}

TEST(Spawn, JoinAfterDetachThrows) {
  run_checked([] {
    auto f = weft::spawn([] {});
    f.detach();
    EXPECT_THROW(f.join(), weft::error);
  });
}

TEST(Spawn, OutsideFiberThrowsNotInFiber) {
  try {
    weft::spawn([] {});
    ADD_FAILURE() << "spawn outside a fiber did not throw";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::not_in_fiber);
  }
}

// A detached fiber's result dies with its record, which the scheduler's own context
// may release when nothing else is runnable: a blocking call there is refused, not
// run on a context that cannot park.
TEST(Spawn, BlockingInAResultDestroyedByTheSchedulerIsRefused) {
  struct blocks_when_destroyed {
    std::shared_ptr<std::optional<std::error_code>> seen = std::make_shared<std::optional<std::error_code>>();
    bool owner = true;
    blocks_when_destroyed() = default;
    blocks_when_destroyed(blocks_when_destroyed&& o) noexcept : seen(o.seen) { o.owner = false; }
    ~blocks_when_destroyed() {
      if (!owner) return;
      try {
        weft::this_fiber::sleep_for(std::chrono::milliseconds(0));
        *seen = std::error_code{};
      } catch (const weft::error& e) {
        *seen = e.code();
      }
    }
  };
  auto seen = std::make_shared<std::optional<std::error_code>>();
  run_checked([&] {
    auto f = weft::spawn([&] {
      blocks_when_destroyed r;
      seen = r.seen;
      return r;
    });
    f.detach();
    weft::this_fiber::sleep_for(std::chrono::milliseconds(20));  // the loop runs alone
  });
  ASSERT_TRUE(seen->has_value());
  EXPECT_EQ(**seen, weft::errc::not_in_fiber);
}

TEST(Spawn, NameAndIdAreVisible) {
  run_checked([] {
    auto f = weft::spawn({.name = "worker"}, [] {
      return std::string(weft::this_fiber::name()) + "#" + std::to_string(weft::this_fiber::id());
    });
    const auto id = f.id();
    EXPECT_EQ(f.name(), "worker");
    EXPECT_NE(id, weft::this_fiber::id());
    EXPECT_EQ(f.join(), "worker#" + std::to_string(id));
  });
}

TEST(Spawn, FibersRunInSpawnOrder) {
  run_checked([] {
    std::vector<int> order;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 5; ++i) fs.push_back(weft::spawn([&order, i] { order.push_back(i); }));
    for (auto& f : fs) f.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  });
}

// Woken fibers run in the order they were woken, whether the run queue was empty
// (its front slot) or not, and a fiber woken by one of them runs after the rest.
TEST(Spawn, WokenFibersRunInTheOrderTheyWereWoken) {
  run_checked([] {
    std::vector<int> order;
    std::vector<weft::channel<int>> wake(3);
    weft::channel<int> late;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 3; ++i)
      fs.push_back(weft::spawn([&, i] {
        const int v = *wake[i].recv();
        order.push_back(v);
        if (v == 2) late.send(9);  // wakes the fiber below, queued behind 0 and 1
      }));
    fs.push_back(weft::spawn([&] { order.push_back(*late.recv()); }));
    weft::this_fiber::yield();  // every fiber now waits on its channel
    for (int i : {2, 0, 1}) wake[i].send(int(i));  // receivers wait: no blocking
    for (auto& f : fs) f.join();
    EXPECT_EQ(order, (std::vector<int>{2, 0, 1, 9}));
  });
}

TEST(Spawn, CustomStackSizeIsUsable) {
  run_checked([] {
    auto f = weft::spawn({.name = "big", .stack_size = 1 << 20}, [] {
      volatile char big[512 * 1024];  // would overflow the default stack
      big[0] = 1;
      big[sizeof big - 1] = 2;
      return big[0] + big[sizeof big - 1];
    });
    EXPECT_EQ(f.join(), 3);
  });
}

TEST(Spawn, JoinSelfThrowsWouldDeadlock) {
  run_checked([] {
    auto self = std::make_shared<weft::fiber<void>>();
    *self = weft::spawn([self] {
      weft::this_fiber::yield();
      try {
        self->join();
        ADD_FAILURE() << "self join did not throw";
      } catch (const weft::error& e) {
        EXPECT_EQ(e.code(), weft::errc::would_deadlock);
      }
    });
    self->wait();
    self->detach();
  });
}

TEST(Spawn, WaitForTimesOutThenJoins) {
  run_checked([] {
    auto f = weft::spawn([] { weft::this_fiber::sleep_for(50ms); return 7; });
    EXPECT_FALSE(f.wait_for(1ms));
    EXPECT_TRUE(f.joinable());
    EXPECT_EQ(f.join(), 7);
  });
}

TEST(Spawn, DroppedHandleDetachesAndFiberCompletes) {
  int ran = 0;
  run_checked([&ran] {
    { auto f = weft::spawn([&ran] { weft::this_fiber::yield(); ++ran; }); }
    weft::this_fiber::sleep_for(1ms);
  });
  EXPECT_EQ(ran, 1);
}

TEST(Spawn, HandleOutlivesScheduler) {
  leak_check check;  // spans the handle, which outlives the run on purpose
  weft::fiber<int> kept;
  weft::run([&kept] { kept = weft::spawn([] { return 9; }); });
  EXPECT_TRUE(kept.done());
  EXPECT_EQ(kept.join(), 9);  // done: no fiber needed to collect the result
}

TEST(Yield, AlternatesBetweenFibers) {
  run_checked([] {
    std::string trace;
    auto a = weft::spawn([&] { for (int i = 0; i < 3; ++i) { trace += 'a'; weft::this_fiber::yield(); } });
    auto b = weft::spawn([&] { for (int i = 0; i < 3; ++i) { trace += 'b'; weft::this_fiber::yield(); } });
    a.join();
    b.join();
    EXPECT_EQ(trace, "ababab");
  });
}

TEST(Yield, OutsideFiberThrows) { EXPECT_THROW(weft::this_fiber::yield(), weft::error); }

// Every way control moves between fibers, many times over: a yield to a yielder, a
// park in one channel call handed to a park in another, a fiber finishing into its
// joiner, into a fiber that never ran, and into the scheduler's loop. weft tells
// TSan about each switch (runtime/detail/sanitizer.hpp), and each must leave every
// fiber's TSan shadow call stack as deep as it found it: a switch path that pushed
// one frame more than it popped (boost's resume() inlined on one side of a switch
// and not on the other) overran TSan's 65,536-entry shadow stack within these
// rounds, and one that popped more crashed TSan at the next stack it hashed. In
// every build the test also checks that all the values arrive.
TEST(Switch, EveryKindOfSwitchManyTimesOver) {
  hang_guard guard;
  static constexpr int round_trips = 70'000;  // more than a TSan shadow stack has entries
  static constexpr int finishes = 1'000;
  run_checked([] {
    weft::channel<int> ping, pong;
    long yields = 0;
    auto echo = weft::spawn([&] {
      for (int i = 0; i < round_trips; ++i) {
        const int v = ping.recv().value();
        weft::this_fiber::yield();  // to main, which yields back
        ++yields;
        pong.send(v + 1);
      }
    });
    long sum = 0;
    for (int i = 0; i < round_trips; ++i) {
      ping.send(int(i));
      weft::this_fiber::yield();
      sum += pong.recv().value();
    }
    echo.join();
    EXPECT_EQ(yields, round_trips);
    EXPECT_EQ(sum, static_cast<long>(round_trips) * (round_trips + 1) / 2);

    int finished = 0;
    for (int i = 0; i < finishes; ++i) {
      // a finishes into b, which never ran; b into main, its joiner's wake queued.
      auto a = weft::spawn([&finished] { ++finished; });
      auto b = weft::spawn([&finished] { ++finished; });
      a.join();
      b.join();
    }
    EXPECT_EQ(finished, 2 * finishes);
    for (int i = 0; i < finishes / 10; ++i) {
      // Main sleeps: the fiber finishes with nothing runnable, into the loop.
      weft::spawn([&finished] { ++finished; }).detach();
      weft::this_fiber::sleep_for(1ms);
    }
    EXPECT_EQ(finished, 2 * finishes + finishes / 10);
  });
}

// ---- unhandled exceptions ------------------------------------------------------------

struct captured_report {
  weft::fiber_id id = 0;
  std::string name, what;
  int count = 0;
};

class UnhandledException : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = weft::set_unhandled_exception_handler(
        [this](weft::fiber_id id, std::string_view name, std::exception_ptr e) {
          report_.id = id;
          report_.name = name;
          report_.what = weft::describe_exception(e);
          ++report_.count;
        });
  }
  void TearDown() override { weft::set_unhandled_exception_handler(std::move(previous_)); }
  captured_report report_;
  weft::unhandled_exception_handler previous_;
};

TEST_F(UnhandledException, DetachedFiberExceptionIsReported) {
  run_checked([] {
    weft::spawn({.name = "doomed"}, [] { throw std::runtime_error("lost?"); }).detach();
    weft::this_fiber::yield();
  });
  EXPECT_EQ(report_.count, 1);
  EXPECT_EQ(report_.name, "doomed");
  EXPECT_EQ(report_.what, "lost?");
}

TEST_F(UnhandledException, DroppedHandleOfFailedFiberIsReported) {
  run_checked([] {
    auto f = weft::spawn([] { throw std::runtime_error("dropped"); });
    weft::this_fiber::yield();
    EXPECT_TRUE(f.done());
  });  // f destroyed here, after the fiber failed
  EXPECT_EQ(report_.count, 1);
  EXPECT_EQ(report_.what, "dropped");
}

// A fiber that drops its own handle (as a task group's child does as it ends) takes
// release_handle's shortcut for the running fiber; what it throws afterwards is
// still reported, once.
TEST_F(UnhandledException, FiberThatDetachesItselfThenThrowsIsReported) {
  run_checked([] {
    weft::fiber<void> self;
    weft::event handle_set;
    self = weft::spawn({.name = "self-detached"}, [&] {
      handle_set.wait();
      self.detach();
      EXPECT_FALSE(self.joinable());
      weft::this_fiber::yield();
      throw std::runtime_error("after detaching itself");
    });
    handle_set.set();
    for (int i = 0; i < 4; ++i) weft::this_fiber::yield();
  });
  EXPECT_EQ(report_.count, 1);
  EXPECT_EQ(report_.name, "self-detached");
  EXPECT_EQ(report_.what, "after detaching itself");
}

TEST_F(UnhandledException, JoinedExceptionIsNotReported) {
  run_checked([] {
    auto f = weft::spawn([] { throw std::runtime_error("retrieved"); });
    EXPECT_THROW(f.join(), std::runtime_error);
  });
  EXPECT_EQ(report_.count, 0);
}

TEST_F(UnhandledException, CancellationIsNotReported) {
  run_checked([] {
    weft::spawn([] { weft::this_fiber::sleep_for(std::chrono::hours(1)); }).detach();
    weft::this_fiber::yield();
  });
  EXPECT_EQ(report_.count, 0);
}

TEST(UnhandledExceptionDefault, PrintsToStderrWithName) {
  testing::internal::CaptureStderr();
  run_checked([] {
    weft::spawn({.name = "noisy"}, [] { throw std::runtime_error("never retrieved"); }).detach();
    weft::this_fiber::yield();
  });
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("\"noisy\""), std::string::npos) << err;
  EXPECT_NE(err.find("never retrieved"), std::string::npos) << err;
}
