// event, wait_group, barrier, once.
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

// Each suite's TEST_Ps run on one scheduler and spread over two (spread_test).
class Event : public spread_test {};
class WaitGroup : public spread_test {};
class Barrier : public spread_test {};
class Once : public spread_test {};
WEFT_SPREAD_TEST_SUITE(Event);
WEFT_SPREAD_TEST_SUITE(WaitGroup);
WEFT_SPREAD_TEST_SUITE(Barrier);
WEFT_SPREAD_TEST_SUITE(Once);

TEST_P(Event, SetWakesEveryWaiter) {
  run([&] {
    weft::event ev;
    std::atomic<int> woke = 0;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 5; ++i) fs.push_back(spawn([&] { ev.wait(); ++woke; }));
    settle();
    EXPECT_EQ(woke, 0);
    ev.set();
    for (auto& f : fs) f.join();
    EXPECT_EQ(woke, 5);
    EXPECT_TRUE(ev.is_set());
    ev.wait();  // set: returns at once
    ev.clear();
    EXPECT_FALSE(ev.wait_for(2ms));
  });
}

TEST_P(Event, CancelledWaiterLeaves) {
  run([&] {
    weft::event ev;
    auto f = spawn([&] { ev.wait(); });
    settle();
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
    // It left the event's queue: a set now wakes nobody and a new waiter passes.
    ev.set();
    auto g = spawn([&] { ev.wait(); });
    g.join();
  });
}

TEST_P(Event, SetFromAnotherThread) {
  hang_guard guard;  // a lost wake-up would leave wait() parked forever
  const bool woken = run([] {
    weft::event ev;
    std::thread t([&ev] { ev.set(); });  // no scheduler_handle: the thread is the way in
    ev.wait();
    t.join();
    return ev.is_set();
  });
  EXPECT_TRUE(woken);
}

TEST_P(WaitGroup, WaitsForEveryTask) {
  run([&] {
    weft::wait_group wg;
    std::atomic<int> finished = 0;
    for (int i = 0; i < 10; ++i) {
      wg.add();
      spawn([&, i] {
        weft::this_fiber::sleep_for(std::chrono::microseconds(100 * i));
        ++finished;
        wg.done();
      }).detach();
    }
    wg.wait();
    EXPECT_EQ(finished, 10);
    EXPECT_EQ(wg.count(), 0);
    wg.wait();  // zero: returns at once
  });
}

TEST(WaitGroupArguments, NegativeCounterIsAnError) {
  weft::wait_group wg;
  wg.add(2);
  EXPECT_THROW(wg.add(-3), weft::error);
  EXPECT_EQ(wg.count(), 2);
}

TEST_P(WaitGroup, WaitForTimesOut) {
  run([] {
    weft::wait_group wg;
    wg.add();
    EXPECT_FALSE(wg.wait_for(2ms));
    wg.done();
    EXPECT_TRUE(wg.wait_for(2ms));
  });
}

TEST_P(Barrier, ReleasesARoundTogetherAndIsReusable) {
  run([&] {
    weft::barrier b(3);
    std::mutex log_lock;  // the fibers may run on two threads
    std::vector<int> log;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 3; ++i)
      fs.push_back(spawn([&] {
        for (int round = 0; round < 3; ++round) {
          {
            std::lock_guard g(log_lock);
            log.push_back(round);
          }
          b.arrive_and_wait();
        }
      }));
    for (auto& f : fs) f.join();
    // No fiber starts round r+1 before all three finished round r.
    EXPECT_EQ(log, (std::vector<int>{0, 0, 0, 1, 1, 1, 2, 2, 2}));
  });
}

TEST_P(Barrier, TimedOutArrivalIsWithdrawn) {
  run([&] {
    weft::barrier b(2);
    EXPECT_FALSE(b.arrive_and_wait_for(2ms));  // alone: gives up, withdraws
    std::atomic<bool> other_passed = false;
    auto f = spawn([&] {
      b.arrive_and_wait();
      other_passed = true;
    });
    settle();
    EXPECT_FALSE(other_passed);  // the withdrawn arrival did not count
    b.arrive_and_wait();
    f.join();
    EXPECT_TRUE(other_passed);
  });
  EXPECT_THROW(weft::barrier(0), weft::error);
}

TEST_P(Barrier, CancelledArrivalIsWithdrawn) {
  run([&] {
    weft::barrier b(2);
    auto a = spawn([&] { b.arrive_and_wait(); });
    settle();
    a.cancel();
    EXPECT_THROW(a.join(), weft::cancelled_error);
    auto c = spawn([&] { return b.arrive_and_wait_for(2ms); });
    EXPECT_FALSE(c.join());  // a's arrival no longer counts
  });
}

TEST_P(Once, RunsOnceWhileOthersWait) {
  run([&] {
    weft::once_flag flag;
    std::atomic<int> runs = 0;
    std::mutex seen_lock;  // the fibers may run on two threads
    std::vector<int> seen;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 4; ++i)
      fs.push_back(spawn([&] {
        weft::call_once(flag, [&] {
          weft::this_fiber::sleep_for(1ms);  // the others arrive meanwhile
          ++runs;
        });
        std::lock_guard g(seen_lock);
        seen.push_back(runs);
      }));
    for (auto& f : fs) f.join();
    EXPECT_EQ(runs, 1);
    EXPECT_EQ(seen, (std::vector<int>{1, 1, 1, 1}));
    EXPECT_TRUE(flag.done());
  });
}

TEST_P(Once, FailedRunLetsTheNextCallerTry) {
  run([&] {
    weft::once_flag flag;
    std::atomic<int> attempts = 0;
    weft::event first_inside;  // orders the second caller after the first, on any thread
    auto first = spawn([&] {
      weft::call_once(flag, [&] {
        ++attempts;
        first_inside.set();
        weft::this_fiber::sleep_for(1ms);
        throw std::runtime_error("first try fails");
      });
    });
    first_inside.wait();
    auto second = spawn([&] { weft::call_once(flag, [&] { ++attempts; }); });
    EXPECT_THROW(first.join(), std::runtime_error);
    second.join();
    EXPECT_EQ(attempts, 2);
    EXPECT_TRUE(flag.done());
  });
}

TEST_P(Once, RecursiveCallIsReported) {
  run([] {
    weft::once_flag flag;
    try {
      weft::call_once(flag, [&] { weft::call_once(flag, [] {}); });
      FAIL();
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::would_deadlock);
    }
    EXPECT_FALSE(flag.done());
  });
}

TEST(BarrierArguments, NegativeOrAbsurdPartiesIsInvalidArgument) {
  for (auto make : {+[] { weft::barrier b(-1); }, +[] { weft::barrier b(static_cast<std::size_t>(-3)); },
                    +[] { weft::barrier b(0); }}) {
    try {
      make();
      ADD_FAILURE() << "accepted";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
      EXPECT_EQ(std::string(e.what()).rfind("weft::barrier: ", 0), 0u) << e.what();
    }
  }
  weft::barrier fine(3);
  EXPECT_EQ(fine.parties(), 3u);
}

TEST(WaitGroupArguments, CounterOverflowOrUnderflowIsInvalidArgumentAndLeavesIt) {
  weft::wait_group wg;
  wg.add(PTRDIFF_MAX);
  try {
    wg.add(1);
    ADD_FAILURE() << "overflow accepted";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::invalid_argument);
    EXPECT_EQ(std::string(e.what()).rfind("weft::wait_group::add: counter would go past PTRDIFF_MAX", 0), 0u)
        << e.what();
  }
  EXPECT_EQ(wg.count(), PTRDIFF_MAX);
  wg.add(-PTRDIFF_MAX);
  try {
    wg.done();
    ADD_FAILURE() << "underflow accepted";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::invalid_argument);
    EXPECT_EQ(std::string(e.what()).rfind("weft::wait_group::done: counter would go negative", 0), 0u) << e.what();
  }
  EXPECT_EQ(wg.count(), 0);
}
