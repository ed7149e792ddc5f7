// background_runtime: a runtime on a thread of its own, driven by a program whose
// main loop is not weft's.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

// The program's thread submits work and gets results; the fibers block, spawn and
// sleep as under run().
TEST(BackgroundRuntime, SubmitFromAPlainThreadReturnsResultsAndExceptions) {
  hang_guard guard;
  weft::background_runtime rt;
  std::future<int> sum = rt.submit([] {
    auto a = weft::spawn([] {
      weft::this_fiber::sleep_for(5ms);
      return 20;
    });
    return a.join() + 22;
  });
  std::future<void> failed = rt.submit([] { throw boom("from a fiber"); });
  auto owned = std::make_unique<std::string>("move-only");
  std::future<std::string> moved = rt.submit([owned = std::move(owned)] { return *owned; });
  EXPECT_EQ(sum.get(), 42);
  EXPECT_THROW(failed.get(), boom);
  EXPECT_EQ(moved.get(), "move-only");
  rt.stop();
  EXPECT_TRUE(rt.stopped());
}

// stop() ends the runtime as run() does when main returns: fibers still blocked are
// cancelled and waited for; later posts and submits are refused, not lost.
TEST(BackgroundRuntime, StopCancelsAndWaitsForEveryFiberThenRefusesWork) {
  hang_guard guard;
  weft::background_runtime rt({.threads = 2});
  std::atomic<int> cancelled{0};
  std::atomic<int> started{0};
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(rt.post([&] {
      ++started;
      try {
        weft::this_fiber::sleep_for(1h);
      } catch (const weft::cancelled_error&) {
        weft::this_fiber::sleep_for(5ms);  // cleanup that blocks: still waited for
        ++cancelled;
        throw;
      }
    }));
  while (started < 4) std::this_thread::sleep_for(1ms);
  weft::runtime_handle kept = rt.handle();
  rt.stop();
  EXPECT_EQ(cancelled, 4);
  EXPECT_FALSE(rt.post([] {}));
  EXPECT_FALSE(kept.post([] {}));
  std::future<int> late = rt.submit([] { return 1; });
  try {
    late.get();
    ADD_FAILURE() << "a submit after stop() ran";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::scheduler_stopped);
  }
  rt.stop();  // again: returns at once
}

// Every scheduler of a runtime of several is reachable, and the destructor stops it.
// A forked child has a copy of the object but not the runtime's thread: exiting
// (which destroys a static runtime) must not wait for it.
TEST(BackgroundRuntime, AForkedChildExitsWithoutWaitingForTheParentsRuntime) {
  auto runtime = std::make_unique<weft::background_runtime>();
  const pid_t child = ::fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    ::alarm(20);  // a hang ends the child, and the test fails
    runtime.reset();
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(runtime->submit([] { return 7; }).get(), 7);  // the parent's runs on
}

TEST(BackgroundRuntime, SeveralSchedulersAndTheDestructorStops) {
  hang_guard guard;
  std::atomic<bool> cancelled{false};
  {
    weft::background_runtime rt({.threads = 2});
    ASSERT_EQ(rt.handle().size(), 2u);
    EXPECT_EQ(rt.handle().scheduler(1).submit([] { return weft::this_fiber::scheduler_index(); }).get(), 1u);
    std::promise<void> parked;
    rt.handle().scheduler(1).post([&] {
      parked.set_value();
      try {
        weft::this_fiber::sleep_for(1h);
      } catch (const weft::cancelled_error&) {
        cancelled = true;
        throw;
      }
    });
    parked.get_future().wait();
  }
  EXPECT_TRUE(cancelled);
}

// Plain threads and fibers meet through a channel, each blocking only itself.
TEST(BackgroundRuntime, TheProgramsThreadAndFibersShareAChannel) {
  hang_guard guard;
  weft::background_runtime rt;
  weft::channel<int> requests(4), replies(10);  // room for every reply: this thread reads them last
  rt.post([&] {
    for (int v : requests) replies.send(v * v);
    replies.close();
  });
  for (int i = 1; i <= 10; ++i) requests.send(i);
  requests.close();
  std::vector<int> got;
  for (int v : replies) got.push_back(v);
  EXPECT_EQ(got, (std::vector<int>{1, 4, 9, 16, 25, 36, 49, 64, 81, 100}));
}

// stop() from a fiber of the runtime it stops would wait for itself: refused with
// would_deadlock. From two threads at once: both return once it has stopped.
TEST(BackgroundRuntime, StopFromItsOwnFiberIsRefusedAndFromTwoThreadsIsFine) {
  hang_guard guard;
  auto rt = std::make_unique<weft::background_runtime>(weft::run_options{.threads = 2});
  for (std::size_t i = 0; i < 2; ++i) {
    std::future<void> own = rt->handle().scheduler(i).submit([&] { rt->stop(); });
    try {
      own.get();
      ADD_FAILURE() << "stop() from its own fiber returned";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::would_deadlock);
      EXPECT_NE(std::string(e.what()).find("weft::background_runtime::stop"), std::string::npos) << e.what();
    }
  }
  std::thread other([&] { rt->stop(); });
  rt->stop();
  other.join();
  EXPECT_TRUE(rt->stopped());
}

TEST(BackgroundRuntime, BadOptionsAreRefusedAtConstruction) {
  try {
    weft::background_runtime rt({.threads = 100'000});
    ADD_FAILURE() << "accepted 100000 threads";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::invalid_argument);
  }
  weft::run_options negative;
  negative.shutdown_report_after = -1ms;
  EXPECT_THROW(weft::background_runtime rt(negative), weft::error);
}

// Posts are refused from the moment stop() begins, not from the moment the
// runtime's main gets its turn: a scheduler kept busy (here by a fiber that never
// yields) would otherwise queue posts that keep coming ahead of it, and stop()
// never returned under a flood (breaker's finding). Every post accepted still runs.
TEST(BackgroundRuntime, PostsAreRefusedOnceStopBeginsAndNoneAcceptedIsLost) {
  hang_guard guard;
  weft::background_runtime rt;
  std::atomic<bool> hogging{false}, hog_done{false};
  std::atomic<int> ran{0};
  rt.post([&] {
    hogging = true;
    const auto until = std::chrono::steady_clock::now() + 300ms;
    while (std::chrono::steady_clock::now() < until) {
    }
    hog_done = true;
  });
  while (!hogging) std::this_thread::yield();
  std::atomic<bool> stopping{false};
  std::thread stopper([&] {
    stopping = true;
    rt.stop();
  });
  while (!stopping) std::this_thread::yield();
  int accepted = 0;
  while (accepted < 100'000 && rt.post([&] { ++ran; })) ++accepted;
  const bool refused_while_busy = !hog_done;
  stopper.join();
  EXPECT_LT(accepted, 100'000) << "posts still accepted long after stop() began";
  EXPECT_TRUE(refused_while_busy) << "posts were taken until the scheduler was free again";
  EXPECT_EQ(ran, accepted);
}
