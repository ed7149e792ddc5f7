// Handing work to a running scheduler from plain threads.
#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "../weft_test.hpp"
#include <weft/runtime/detail/sanitizer.hpp>
#include <weft/runtime/to_thread.hpp>

using namespace weft_test;

TEST(SchedulerHandle, PostFromThreadRunsInFiber) {
  run_checked([] {
    auto sched = weft::this_scheduler();
    std::atomic<bool> ran{false};
    weft::fiber_id poster_fiber = 0;
    std::thread t([&] {
      EXPECT_TRUE(sched.post([&] {
        poster_fiber = weft::this_fiber::id();
        ran = true;
      }));
    });
    while (!ran) weft::this_fiber::sleep_for(1ms);
    t.join();
    EXPECT_NE(poster_fiber, 0u);
  });
}

TEST(SchedulerHandle, SubmitReturnsFutureValue) {
  run_checked([] {
    auto sched = weft::this_scheduler();
    std::atomic<int> got{0};
    std::thread t([&] { got = sched.submit([] { weft::this_fiber::sleep_for(1ms); return 7; }).get(); });
    // The main fiber sleeps while the thread waits: the submit must wake the scheduler.
    while (got == 0) weft::this_fiber::sleep_for(1ms);
    t.join();
    EXPECT_EQ(got.load(), 7);
  });
}

TEST(SchedulerHandle, SubmitDeliversException) {
  hang_guard guard;  // a lost exception would leave the loop below polling forever
  std::string what;
  run_checked([&what] {
    auto sched = weft::this_scheduler();
    std::atomic<bool> finished{false};
    std::thread t([&] {
      try {
        sched.submit([]() -> int { throw std::runtime_error("remote"); }).get();
      } catch (const std::runtime_error& e) {
        what = e.what();
      }
      finished = true;
    });
    while (!finished) weft::this_fiber::sleep_for(1ms);
    t.join();
  });
  EXPECT_EQ(what, "remote");
}

TEST(SchedulerHandle, WakesIdleSchedulerBlockedInEpoll) {
  // The main fiber waits on a fiber that only a thread's post can finish, with no
  // timer pending: only the eventfd can wake the sleeping scheduler.
  run_checked([] {
    auto sched = weft::this_scheduler();
    auto waiter = weft::spawn([] { weft::this_fiber::sleep_until(weft::no_deadline); });
    weft::this_fiber::yield();
    std::thread t([&] {
      std::this_thread::sleep_for(20ms);
      sched.post([&waiter] { waiter.cancel(); });
    });
    EXPECT_THROW(waiter.join(), weft::cancelled_error);
    t.join();
  });
}

TEST(SchedulerHandle, ManyThreadsPostEverythingRuns) {
  // The posts pile up while the scheduler thread joins the posters, and then all
  // start as fibers at once. Under TSan each fiber carries a TSan thread state
  // (~770 KiB, at most 8,128 at once; see many_fibers_test.cpp): fewer posts there.
#if WEFT_TSAN
  constexpr int threads = 4, per_thread = 250;
#else
  constexpr int threads = 4, per_thread = 2000;
#endif
  int count = 0;
  run_checked([&] {
    auto sched = weft::this_scheduler();
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i)
      ts.emplace_back([&] {
        for (int j = 0; j < per_thread; ++j) ASSERT_TRUE(sched.post([&count] { ++count; }));
      });
    for (auto& t : ts) t.join();  // blocks the scheduler thread briefly; fine in a test
    while (count < threads * per_thread) weft::this_fiber::sleep_for(1ms);
  });
  EXPECT_EQ(count, threads * per_thread);
}

// A flood of posts from a plain thread becomes fibers a batch at a time, in order,
// not a fiber (and a stack) for each at once: each post here yields once, so
// started-and-unfinished posts show how many were started together (a breaker's
// 400,000 posts took 35 s and 3.4 GB when all started at once).
TEST(SchedulerHandle, AFloodOfPostsStartsAFewAtATimeInOrderAndAllRun) {
  hang_guard guard;
#if WEFT_TSAN
  constexpr int posts = 2'000;  // a fiber under TSan costs ~2.5 ms to start and end
#else
  constexpr int posts = 20'000;
#endif
  int started = 0, finished = 0, most_unfinished = 0, first_out_of_order = -1;
  run_checked([&] {
    auto sched = weft::this_scheduler();
    std::thread poster([&] {
      for (int i = 0; i < posts; ++i)
        ASSERT_TRUE(sched.post([&, i] {
          if (i != started && first_out_of_order < 0) first_out_of_order = i;
          ++started;
          most_unfinished = std::max(most_unfinished, started - finished);
          weft::this_fiber::yield();
          ++finished;
        }));
    });
    poster.join();  // every post is queued before the first starts
    while (finished < posts) weft::this_fiber::sleep_for(1ms);
  });
  EXPECT_EQ(finished, posts);
  EXPECT_EQ(first_out_of_order, -1) << "posts started out of order";
  EXPECT_LE(most_unfinished, posts / 10) << "the posts all became fibers at once";
}

// Posts beyond the first batch start while the scheduler stays busy: a fiber that
// never lets the run queue empty (it yields in a loop) waits for them.
TEST(SchedulerHandle, PostsStartWhileTheSchedulerStaysBusy) {
  hang_guard guard;
  constexpr int posts = 1'000;
  int ran = 0;
  run_checked([&] {
    auto sched = weft::this_scheduler();
    std::thread poster([&] {
      for (int i = 0; i < posts; ++i) ASSERT_TRUE(sched.post([&ran] { ++ran; }));
    });
    poster.join();
    while (ran < posts) weft::this_fiber::yield();  // never idle: only the loop's looks start them
  });
  EXPECT_EQ(ran, posts);
}

TEST(SchedulerHandle, PostAfterSchedulerFinishedIsRefused) {
  weft::scheduler_handle kept;
  run_checked([&kept] { kept = weft::this_scheduler(); });
  EXPECT_FALSE(kept.post([] {}));
  auto fut = kept.submit([] { return 1; });
  try {
    fut.get();
    ADD_FAILURE() << "no error";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::scheduler_stopped);
  }
}

// A legacy thread hands fibers what it owns: post and submit take move-only
// callables (a lambda that owns a unique_ptr), on one scheduler or a runtime's.
TEST(SchedulerHandle, PostAndSubmitTakeMoveOnlyCallables) {
  run_checked(
      [] {
        const auto sched = weft::this_scheduler();
        const auto runtime = weft::this_runtime();
        weft::channel<int> got(4);
        weft::event thread_done;
        std::thread t([&] {
          EXPECT_TRUE(sched.post([&got, owned = std::make_unique<int>(1)] { got.send(*owned); }));
          EXPECT_TRUE(runtime.post([&got, owned = std::make_unique<int>(2)] { got.send(*owned); }));
          EXPECT_EQ(sched.submit([owned = std::make_unique<int>(3)] { return *owned; }).get(), 3);
          EXPECT_EQ(runtime.submit([owned = std::make_unique<int>(4)] { return *owned; }).get(), 4);
          thread_done.set();
        });
        int sum = *got.recv() + *got.recv();
        // Not t.join() at once: it would block this scheduler's thread while the
        // thread's submits still need it (a hang under TSan's timing).
        thread_done.wait();
        t.join();
        EXPECT_EQ(sum, 3);
      },
      threads(2));
}

// After the run, a runtime handle's submit names itself (it said
// weft::scheduler_handle::submit, a class the caller never used).
TEST(SchedulerHandle, RuntimeSubmitAfterTheRunNamesItself) {
  weft::runtime_handle kept;
  run_checked([&kept] { kept = weft::this_runtime(); }, threads(2));
  auto fut = kept.submit([] { return 1; });
  try {
    fut.get();
    ADD_FAILURE() << "no error";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::scheduler_stopped);
    EXPECT_STREQ(e.what(), "weft::runtime_handle::submit: the scheduler has stopped");
  }
}

TEST(SchedulerHandle, ThisSchedulerOutsideFiberThrows) {
  EXPECT_THROW(weft::this_scheduler(), weft::error);
}

TEST(SchedulerHandle, SchedulersOnSeveralThreadsRunIndependently) {
  std::vector<std::thread> ts;
  std::atomic<int> total{0};
  for (int i = 0; i < 3; ++i)
    ts.emplace_back([&total] {
      total += weft::run([] {
        std::vector<weft::fiber<int>> fs;
        for (int j = 0; j < 100; ++j) fs.push_back(weft::spawn([j] { weft::this_fiber::sleep_for(1ms); return j; }));
        int sum = 0;
        for (auto& f : fs) sum += f.join();
        return sum;
      });
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(total.load(), 3 * 4950);
}

// A fiber of one run() waits for a fiber of another run() on another thread: the
// wait with a deadline times out (and withdraws), the wait without one ends when
// the fiber's own thread cancels it.
TEST(SchedulerHandle, FiberOfAnotherSchedulerCanBeWaitedFor) {
  run_checked([] {
    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_for(std::chrono::hours(1)); });
    weft::this_fiber::yield();
    std::atomic<bool> timed_out_once{false};
    std::thread other([&] {
      weft::run([&] {
        EXPECT_FALSE(sleeper.wait_for(1ms));
        timed_out_once = true;
        sleeper.wait();
        EXPECT_TRUE(sleeper.done());
      });
    });
    for (int i = 0; i < 10000 && !timed_out_once; ++i) weft::this_fiber::sleep_for(1ms);
    EXPECT_TRUE(timed_out_once);
    weft::this_fiber::sleep_for(2ms);  // let it wait again
    sleeper.cancel();
    weft::to_thread([&] { other.join(); });  // blocks a pool thread, not this scheduler
    EXPECT_THROW(sleeper.join(), weft::cancelled_error);
  });
}

TEST(SchedulerHandle, FinishedFiberJoinsFromAnotherThread) {
  leak_check check;  // spans the handle, which outlives the run on purpose
  weft::fiber<int> done_fiber;
  weft::run([&done_fiber] {
    done_fiber = weft::spawn([] { return 11; });
    done_fiber.wait();
  });
  int got = 0;
  std::thread t([&] { got = done_fiber.join(); });
  t.join();
  EXPECT_EQ(got, 11);
}
