// mutex and condition_variable.
#include <atomic>
#include <deque>
#include <mutex>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

// TEST_Ps run on one scheduler and spread over two (spread_test); the Fifo suites
// need waiters that arrive in a known order, which one scheduler alone can fix.
class Mutex : public spread_test {};
class ConditionVariable : public spread_test {};
WEFT_SPREAD_TEST_SUITE(Mutex);
WEFT_SPREAD_TEST_SUITE(ConditionVariable);

TEST_P(Mutex, ProtectsACriticalSectionAcrossBlockingCalls) {
  run([&] {
    weft::mutex m;
    std::atomic<int> inside = 0, most = 0;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 5; ++i)
      fs.push_back(spawn([&] {
        std::lock_guard g(m);
        record_max(most, ++inside);
        weft::this_fiber::sleep_for(1ms);  // still held while suspended
        --inside;
      }));
    for (auto& f : fs) f.join();
    EXPECT_EQ(most, 1);
  });
}

TEST(MutexFifo, WaitersGetItInFifoOrder) {
  run_checked([] {
    weft::mutex m;
    std::vector<int> order;
    m.lock();
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 4; ++i)
      fs.push_back(weft::spawn([&, i] {
        std::lock_guard g(m);
        order.push_back(i);
      }));
    weft::this_fiber::yield();
    m.unlock();
    EXPECT_FALSE(m.try_lock());  // handed to waiter 0: no barging
    for (auto& f : fs) f.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  });
}

TEST_P(Mutex, TryLockForTimesOutAndWorksWithUniqueLock) {
  run([&] {
    weft::mutex m;
    weft::event held, let_go;
    auto holder = spawn([&] {
      std::lock_guard g(m);
      held.set();
      let_go.wait();
    });
    held.wait();
    std::unique_lock lk(m, std::chrono::milliseconds(1));
    EXPECT_FALSE(lk.owns_lock());
    let_go.set();
    holder.join();
    EXPECT_TRUE(lk.try_lock_for(std::chrono::milliseconds(1)));
  });
}

TEST_P(Mutex, CancelledWaiterDoesNotGetTheMutex) {
  run([&] {
    weft::mutex m;
    m.lock();
    auto a = spawn([&] { std::lock_guard g(m); });
    std::atomic<bool> b_ran = false;
    auto b = spawn([&] {
      std::lock_guard g(m);
      b_ran = true;
    });
    settle();
    a.cancel();
    EXPECT_THROW(a.join(), weft::cancelled_error);
    m.unlock();
    b.join();
    EXPECT_TRUE(b_ran);
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

TEST_P(Mutex, MisuseIsReported) {
  run([&] {
    weft::mutex m;
    try {
      m.unlock();
      FAIL();
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::not_owner);
    }
    m.lock();
    try {
      m.lock();
      FAIL();
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::would_deadlock);
    }
    auto other = spawn([&] { EXPECT_THROW(m.unlock(), weft::error); });
    other.join();
    m.unlock();
  });
  weft::mutex outside;
  EXPECT_THROW(outside.lock(), weft::error);
}

TEST_P(ConditionVariable, ProducerConsumerWithPredicate) {
  run([&] {
    weft::mutex m;
    weft::condition_variable cv;
    std::deque<int> queue;
    bool finished = false;
    auto consumer = spawn([&] {
      int sum = 0;
      std::unique_lock lk(m);
      for (;;) {
        cv.wait(lk, [&] { return !queue.empty() || finished; });
        if (queue.empty()) return sum;
        sum += queue.front();
        queue.pop_front();
      }
    });
    for (int i = 1; i <= 10; ++i) {
      {
        std::lock_guard g(m);
        queue.push_back(i);
      }
      cv.notify_one();
      weft::this_fiber::yield();
    }
    {
      std::lock_guard g(m);
      finished = true;
    }
    cv.notify_all();
    EXPECT_EQ(consumer.join(), 55);
  });
}

TEST(ConditionVariableFifo, NotifyOneWakesInFifoOrder) {
  run_checked([] {
    weft::mutex m;
    weft::condition_variable cv;
    std::vector<int> woke;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 3; ++i)
      fs.push_back(weft::spawn([&, i] {
        std::unique_lock lk(m);
        cv.wait(lk);
        woke.push_back(i);
      }));
    weft::this_fiber::yield();
    for (int i = 0; i < 3; ++i) {
      cv.notify_one();
      weft::this_fiber::yield();
    }
    for (auto& f : fs) f.join();
    EXPECT_EQ(woke, (std::vector<int>{0, 1, 2}));
  });
}

TEST_P(ConditionVariable, WaitForTimesOutHoldingTheMutex) {
  run([] {
    weft::mutex m;
    weft::condition_variable cv;
    std::unique_lock lk(m);
    EXPECT_EQ(cv.wait_for(lk, 2ms), std::cv_status::timeout);
    EXPECT_TRUE(lk.owns_lock());
    EXPECT_FALSE(cv.wait_for(lk, 2ms, [] { return false; }));
  });
}

// Cancelled while the mutex is held by someone else: the waiter still gets the
// mutex back before cancelled_error leaves wait(), so its guard unlocks it.
TEST_P(ConditionVariable, CancelledWaitReacquiresTheMutex) {
  run([&] {
    weft::mutex m;
    weft::condition_variable cv;
    weft::event about_to_wait;
    std::atomic<bool> held_at_throw = false;
    auto waiter = spawn([&] {
      std::unique_lock lk(m);
      about_to_wait.set();  // main's m.lock() below returns only once wait() let go of m
      try {
        cv.wait(lk);
      } catch (const weft::cancelled_error&) {
        held_at_throw = lk.owns_lock();
        throw;
      }
    });
    about_to_wait.wait();
    m.lock();
    waiter.cancel();
    settle();  // it is woken, then queues for the mutex
    m.unlock();
    EXPECT_THROW(waiter.join(), weft::cancelled_error);
    EXPECT_TRUE(held_at_throw);
    EXPECT_TRUE(m.try_lock());
    m.unlock();
  });
}

// A unique_lock handed to a fiber that does not hold its mutex: wait reports
// not_owner before it queues anything, so a later notify finds no waiter of a frame
// that is gone (it used to queue first, then throw from the mutex's unlock).
TEST_P(ConditionVariable, WaitByAFiberThatDoesNotHoldTheMutexIsNotOwnerAndQueuesNothing) {
  run([&] {
    weft::mutex m;
    weft::condition_variable cv;
    std::unique_lock lk(m);  // main holds m
    auto other = spawn([&] {
      try {
        cv.wait(lk);
        ADD_FAILURE() << "wait returned";
      } catch (const weft::error& e) {
        EXPECT_EQ(e.code(), weft::errc::not_owner);
        EXPECT_NE(std::string(e.what()).find("weft::condition_variable::wait"), std::string::npos) << e.what();
      }
    });
    other.join();
    // A notify now must find nobody; then a real waiter is served as usual.
    cv.notify_one();
    bool woken = false;
    lk.unlock();
    auto waiter = spawn([&] {
      std::unique_lock mine(m);
      cv.wait(mine, [&] { return woken; });
    });
    settle();
    {
      std::lock_guard g(m);
      woken = true;
    }
    cv.notify_all();
    waiter.join();
    EXPECT_TRUE(woken);
  });
}
