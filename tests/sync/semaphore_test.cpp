// semaphore and bounded_semaphore.
#include <atomic>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

// TEST_Ps run on one scheduler and spread over two (spread_test); the Fifo suites
// need waiters that arrive in a known order, which one scheduler alone can fix.
class Semaphore : public spread_test {};
WEFT_SPREAD_TEST_SUITE(Semaphore);

TEST_P(Semaphore, LimitsConcurrency) {
  run([&] {
    weft::semaphore sem(2);
    std::atomic<int> inside = 0, most = 0;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 8; ++i)
      fs.push_back(spawn([&] {
        weft::semaphore_guard g(sem);
        record_max(most, ++inside);
        weft::this_fiber::sleep_for(1ms);
        --inside;
      }));
    for (auto& f : fs) f.join();
    EXPECT_EQ(most, 2);
    EXPECT_EQ(sem.available(), 2);
  });
}

TEST(SemaphoreFifo, WaitersAreServedInFifoOrderWithoutBarging) {
  run_checked([] {
    weft::semaphore sem(0);
    std::vector<int> order;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 4; ++i)
      fs.push_back(weft::spawn([&, i] {
        sem.acquire();
        order.push_back(i);
      }));
    weft::this_fiber::yield();
    sem.release();
    EXPECT_FALSE(sem.try_acquire());  // the permit went to waiter 0, not to us
    sem.release(3);
    for (auto& f : fs) f.join();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  });
}

TEST_P(Semaphore, AcquireForTimesOutWithoutTakingAPermit) {
  run([] {
    weft::semaphore sem(0);
    EXPECT_FALSE(sem.acquire_for(2ms));
    sem.release();
    EXPECT_EQ(sem.available(), 1);
    EXPECT_TRUE(sem.acquire_for(2ms));
  });
}

TEST_P(Semaphore, CancelledWaiterLeavesQueueAndNextIsServed) {
  run([&] {
    weft::semaphore sem(0);
    auto a = spawn([&] { sem.acquire(); });
    std::atomic<bool> b_got = false;
    auto b = spawn([&] {
      sem.acquire();
      b_got = true;
    });
    settle();
    a.cancel();
    EXPECT_THROW(a.join(), weft::cancelled_error);
    sem.release();
    b.join();
    EXPECT_TRUE(b_got);
    EXPECT_EQ(sem.available(), 0);
  });
}

TEST(SemaphoreArguments, BadArgumentsAreErrors) {
  EXPECT_THROW(weft::semaphore(-1), weft::error);
  weft::semaphore sem(1);
  try {
    sem.release(-2);
    FAIL();
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::invalid_argument);
  }
}

TEST(BoundedSemaphore, ReleaseBeyondInitialCountIsReported) {
  run_checked([] {
    weft::bounded_semaphore sem(2);
    sem.acquire();
    sem.release();
    try {
      sem.release();
      FAIL();
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::semaphore_overflow);
    }
    EXPECT_EQ(sem.available(), 2);
  });
}

TEST(SemaphoreArguments, CountsBeyondPtrdiffMaxAreInvalidArgument) {
  weft::semaphore sem(PTRDIFF_MAX - 1);
  sem.release();  // exactly PTRDIFF_MAX: fine
  try {
    sem.release();
    FAIL();
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::invalid_argument);
    EXPECT_EQ(std::string(e.what()).rfind("weft::semaphore::release: 1 permit(s) would take the count", 0), 0u)
        << e.what();
  }
  EXPECT_EQ(sem.available(), PTRDIFF_MAX);
  try {
    weft::semaphore negative(-3);
    FAIL();
  } catch (const weft::error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("weft::semaphore: negative initial count -3", 0), 0u) << e.what();
  }
}
