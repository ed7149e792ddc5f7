// sleep_for / sleep_until and the timer path.
#include <string>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

TEST(Sleep, SleepForNeverReturnsEarly) {
  run_checked([] {
    const auto start = weft::clock::now();
    weft::this_fiber::sleep_for(20ms);
    EXPECT_GE(weft::clock::now() - start, 20ms);
  });
}

// A past deadline is due at once: the sleep lets the fibers already runnable run
// (like sleep_for(0)), but it does not wait for a timer: a fiber sleeping 200 ms has
// not woken when it returns.
TEST(Sleep, SleepUntilPastDeadlineReturns) {
  hang_guard guard;
  run_checked([] {
    bool other_ran = false, late = false;
    auto other = weft::spawn([&] { other_ran = true; });
    auto alarm = weft::spawn([&] {
      weft::this_fiber::sleep_for(200ms);
      late = true;
    });
    weft::this_fiber::sleep_until(weft::clock::now() - 1s);
    EXPECT_TRUE(other_ran);
    weft::this_fiber::sleep_until(weft::time_point::min());
    weft::this_fiber::sleep_until(weft::clock::now());
    EXPECT_FALSE(late) << "sleep_until with a past deadline suspended for long";
    other.join();
    alarm.cancel();
    EXPECT_THROW(alarm.join(), weft::cancelled_error);
  });
}

TEST(Sleep, ShorterSleepWakesFirst) {
  run_checked([] {
    std::vector<int> order;
    auto slow = weft::spawn([&] { weft::this_fiber::sleep_for(40ms); order.push_back(40); });
    auto fast = weft::spawn([&] { weft::this_fiber::sleep_for(5ms); order.push_back(5); });
    auto mid = weft::spawn([&] { weft::this_fiber::sleep_for(20ms); order.push_back(20); });
    slow.join();
    fast.join();
    mid.join();
    EXPECT_EQ(order, (std::vector<int>{5, 20, 40}));
  });
}

TEST(Sleep, SleepZeroLetsOthersRun) {
  run_checked([] {
    std::string trace;
    auto other = weft::spawn([&] { trace += 'o'; });
    trace += 'a';
    weft::this_fiber::sleep_for(0ms);
    trace += 'b';
    other.join();
    EXPECT_EQ(trace, "aob");
  });
}

// A negative duration (as far down as duration::min()) sleeps like zero: the fibers
// already runnable run first, and no timer is waited for.
TEST(Sleep, NegativeDurationActsAsZero) {
  hang_guard guard;
  run_checked([] {
    std::string trace;
    bool late = false;
    auto other = weft::spawn([&] { trace += 'o'; });
    auto alarm = weft::spawn([&] {
      weft::this_fiber::sleep_for(200ms);
      late = true;
    });
    trace += 'a';
    weft::this_fiber::sleep_for(-5s);
    trace += 'b';
    EXPECT_EQ(trace, "aob");
    weft::this_fiber::sleep_for(std::chrono::hours::min());
    weft::this_fiber::sleep_for(weft::duration::min());
    weft::this_fiber::sleep_for(std::chrono::duration<double>(-1e300));
    EXPECT_FALSE(late) << "a negative sleep suspended for long";
    other.join();
    alarm.cancel();
    EXPECT_THROW(alarm.join(), weft::cancelled_error);
  });
}

// Two fibers that hand the CPU straight to each other never leave the run queue
// empty: the scheduler must still look at its timers between their switches.
TEST(Sleep, TimersFireWhileTwoFibersHandOffNonstop) {
  run_checked([] {
    bool stop = false;
    long rounds = 0;
    weft::channel<int> ping, pong;
    auto echo = weft::spawn([&] {
      while (auto v = ping.recv()) pong.send(int(*v));
    });
    auto sleeper = weft::spawn([&] {
      weft::this_fiber::sleep_for(5ms);
      stop = true;
    });
    while (!stop) {
      ping.send(1);
      ASSERT_EQ(pong.recv(), 1);
      ++rounds;
    }
    ping.close();
    echo.join();
    sleeper.join();
    EXPECT_GT(rounds, 0);
  });
}

TEST(Sleep, SleepingFiberDoesNotBlockOthers) {
  run_checked([] {
    int ticks = 0;
    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_for(30ms); });
    while (!sleeper.done()) {
      ++ticks;
      weft::this_fiber::yield();
    }
    sleeper.join();
    EXPECT_GT(ticks, 1);
  });
}

TEST(Sleep, HugeDurationDoesNotOverflow) {
  hang_guard guard;
  run_checked([] {
    auto f = weft::spawn([] { weft::this_fiber::sleep_for(std::chrono::hours(24 * 365 * 100)); });
    weft::this_fiber::yield();
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
  });
}

TEST(Sleep, OutsideFiberThrowsNotInFiber) {
  try {
    weft::this_fiber::sleep_for(1ms);
    ADD_FAILURE() << "no exception";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::not_in_fiber);
  }
}

TEST(Sleep, ManySleepersAllWake) {
  run_checked([] {
    std::vector<weft::fiber<int>> fs;
    for (int i = 0; i < 2000; ++i)
      fs.push_back(weft::spawn([i] { weft::this_fiber::sleep_for(std::chrono::milliseconds(i % 50)); return i; }));
    long sum = 0;
    for (auto& f : fs) sum += f.join();
    EXPECT_EQ(sum, 1999L * 2000 / 2);
  });
}

// Field case timer_far_future (issue 12): a sleep more than 2^36 ms ahead, armed after
// the clock has moved, must not stop the scheduler (the timer wheel re-filed it into
// the slot it was draining, forever, at 100% CPU).
TEST(Sleep, FarSleepAfterTheClockMovedLetsOthersRun) {
  hang_guard guard;
  run_checked([] {
    weft::this_fiber::sleep_for(2ms);
    auto f = weft::spawn([] { weft::this_fiber::sleep_for(std::chrono::hours(24 * 800)); });
    weft::this_fiber::sleep_for(10ms);  // hung here
    EXPECT_FALSE(f.done());
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
  });
}
