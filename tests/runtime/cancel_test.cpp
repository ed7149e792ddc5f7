// Cancellation through the one suspension primitive.
#include <atomic>
#include <string>
#include <thread>

#include "../weft_test.hpp"

using namespace weft_test;

TEST(Cancel, CancelsSleepingFiber) {
  run_checked([] {
    auto f = weft::spawn([] { weft::this_fiber::sleep_for(std::chrono::hours(1)); });
    weft::this_fiber::yield();
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
  });
}

TEST(Cancel, CancelBeforeFirstBlockingCallHitsIt) {
  run_checked([] {
    std::string trace;
    auto f = weft::spawn([&] {
      trace += "started ";
      weft::this_fiber::yield();  // not a cancellation point
      trace += "yielded ";
      weft::this_fiber::sleep_for(1ms);
      trace += "slept";
    });
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
    EXPECT_EQ(trace, "started yielded ");
  });
}

TEST(Cancel, CancellationIsDeliveredOncePerCancel) {
  run_checked([] {
    auto f = weft::spawn([] {
      int caught = 0;
      try {
        weft::this_fiber::sleep_for(std::chrono::hours(1));
      } catch (const weft::cancelled_error&) {
        ++caught;
      }
      weft::this_fiber::sleep_for(1ms);  // not cancelled again
      return caught;
    });
    weft::this_fiber::yield();
    f.cancel();
    EXPECT_EQ(f.join(), 1);
  });
}

TEST(Cancel, CancelledJoinerLeavesTargetJoinable) {
  run_checked([] {
    auto target = weft::spawn([] { weft::this_fiber::sleep_for(20ms); return 5; });
    auto joiner = weft::spawn([&target] { return target.join(); });
    weft::this_fiber::yield();
    joiner.cancel();
    EXPECT_THROW(joiner.join(), weft::cancelled_error);
    EXPECT_TRUE(target.joinable());
    EXPECT_EQ(target.join(), 5);
  });
}

TEST(Cancel, WaitForTimeoutIsNotCancellation) {
  run_checked([] {
    auto slow = weft::spawn([] { weft::this_fiber::sleep_for(50ms); });
    EXPECT_FALSE(slow.wait_for(1ms));  // a value, not an exception
    slow.cancel();
    EXPECT_THROW(slow.join(), weft::cancelled_error);
  });
}

TEST(Cancel, CancelFinishedFiberIsNoOp) {
  run_checked([] {
    auto f = weft::spawn([] { return 3; });
    f.wait();
    f.cancel();
    EXPECT_EQ(f.join(), 3);
  });
}

TEST(Cancel, CancelFromAnotherThreadWakesFiber) {
  run_checked([] {
    auto f = weft::spawn([] { weft::this_fiber::sleep_for(std::chrono::hours(1)); });
    weft::this_fiber::yield();
    std::thread t([&f] { f.cancel(); });
    EXPECT_THROW(f.join(), weft::cancelled_error);
    t.join();
  });
}

TEST(Cancel, DeadlockIsReportedNotHung) {
  try {
    weft::run([] {
      // Parked forever: no timer, no fd, no other thread can wake it.
      auto f = weft::spawn([] { weft::this_fiber::sleep_until(weft::no_deadline); });
      f.join();
    });
    ADD_FAILURE() << "run returned normally";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::would_deadlock);
  }
}
