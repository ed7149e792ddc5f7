// event, wait_group, barrier, once.
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

TEST(Event, SetWakesEveryWaiter) {
  run_checked([] {
    weft::event ev;
    int woke = 0;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 5; ++i) fs.push_back(weft::spawn([&] { ev.wait(); ++woke; }));
    weft::this_fiber::yield();
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

TEST(Event, CancelledWaiterLeaves) {
  run_checked([] {
    weft::event ev;
    auto f = weft::spawn([&] { ev.wait(); });
    weft::this_fiber::yield();
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
  });
}

TEST(Event, SetFromAnotherThread) {
  hang_guard guard;  // a lost wake-up would leave wait() parked forever
  const bool woken = run_checked([] {
    weft::event ev;
    std::thread t([&ev] { ev.set(); });  // no scheduler_handle: the thread is the way in
    ev.wait();
    t.join();
    return ev.is_set();
  });
  EXPECT_TRUE(woken);
}

TEST(WaitGroup, WaitsForEveryTask) {
  run_checked([] {
    weft::wait_group wg;
    int finished = 0;
    for (int i = 0; i < 10; ++i) {
      wg.add();
      weft::spawn([&, i] {
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

TEST(WaitGroup, NegativeCounterIsAnError) {
  weft::wait_group wg;
  wg.add(2);
  EXPECT_THROW(wg.add(-3), weft::error);
  EXPECT_EQ(wg.count(), 2);
}

TEST(WaitGroup, WaitForTimesOut) {
  run_checked([] {
    weft::wait_group wg;
    wg.add();
    EXPECT_FALSE(wg.wait_for(2ms));
    wg.done();
    EXPECT_TRUE(wg.wait_for(2ms));
  });
}

TEST(Barrier, ReleasesARoundTogetherAndIsReusable) {
  run_checked([] {
    weft::barrier b(3);
    std::vector<int> log;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 3; ++i)
      fs.push_back(weft::spawn([&] {
        for (int round = 0; round < 3; ++round) {
          log.push_back(round);
          b.arrive_and_wait();
        }
      }));
    for (auto& f : fs) f.join();
    // No fiber starts round r+1 before all three finished round r.
    EXPECT_EQ(log, (std::vector<int>{0, 0, 0, 1, 1, 1, 2, 2, 2}));
  });
}

TEST(Barrier, TimedOutArrivalIsWithdrawn) {
  run_checked([] {
    weft::barrier b(2);
    EXPECT_FALSE(b.arrive_and_wait_for(2ms));  // alone: gives up, withdraws
    bool other_passed = false;
    auto f = weft::spawn([&] {
      b.arrive_and_wait();
      other_passed = true;
    });
    weft::this_fiber::yield();
    EXPECT_FALSE(other_passed);  // the withdrawn arrival did not count
    b.arrive_and_wait();
    f.join();
    EXPECT_TRUE(other_passed);
  });
  EXPECT_THROW(weft::barrier(0), weft::error);
}

TEST(Barrier, CancelledArrivalIsWithdrawn) {
  run_checked([] {
    weft::barrier b(2);
    auto a = weft::spawn([&] { b.arrive_and_wait(); });
    weft::this_fiber::yield();
    a.cancel();
    EXPECT_THROW(a.join(), weft::cancelled_error);
    auto c = weft::spawn([&] { return b.arrive_and_wait_for(2ms); });
    EXPECT_FALSE(c.join());  // a's arrival no longer counts
  });
}

TEST(Once, RunsOnceWhileOthersWait) {
  run_checked([] {
    weft::once_flag flag;
    int runs = 0;
    std::vector<int> seen;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 4; ++i)
      fs.push_back(weft::spawn([&] {
        weft::call_once(flag, [&] {
          weft::this_fiber::sleep_for(1ms);  // the others arrive meanwhile
          ++runs;
        });
        seen.push_back(runs);
      }));
    for (auto& f : fs) f.join();
    EXPECT_EQ(runs, 1);
    EXPECT_EQ(seen, (std::vector<int>{1, 1, 1, 1}));
    EXPECT_TRUE(flag.done());
  });
}

TEST(Once, FailedRunLetsTheNextCallerTry) {
  run_checked([] {
    weft::once_flag flag;
    int attempts = 0;
    auto first = weft::spawn([&] {
      weft::call_once(flag, [&] {
        ++attempts;
        weft::this_fiber::sleep_for(1ms);
        throw std::runtime_error("first try fails");
      });
    });
    weft::this_fiber::yield();
    auto second = weft::spawn([&] { weft::call_once(flag, [&] { ++attempts; }); });
    EXPECT_THROW(first.join(), std::runtime_error);
    second.join();
    EXPECT_EQ(attempts, 2);
    EXPECT_TRUE(flag.done());
  });
}

TEST(Once, RecursiveCallIsReported) {
  run_checked([] {
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

TEST(Barrier, NegativeOrAbsurdPartiesIsInvalidArgument) {
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

TEST(WaitGroup, CounterOverflowOrUnderflowIsInvalidArgumentAndLeavesIt) {
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
