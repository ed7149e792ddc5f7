// The lock inside every sync/ primitive: biased to its first scheduler thread,
// revoked to a plain spin lock once other threads use it for real, and exclusive
// throughout, across the revocation too.
#include <atomic>
#include <thread>
#include <vector>

#include <weft/sync/detail/biased_lock.hpp>

#include "../weft_test.hpp"

using namespace weft_test;
using weft::detail::biased_lock;

TEST(BiasedLock, FirstSchedulerThreadBecomesHomeAndAnOccasionalRemoteKeepsIt) {
  biased_lock lock;
  run_checked([&] {
    lock.lock();
    lock.unlock();
    EXPECT_TRUE(lock.is_biased());
    std::thread([&] {
      lock.lock();
      lock.unlock();
    }).join();
    EXPECT_TRUE(lock.is_biased()) << "one remote acquisition revoked the bias";
    lock.lock();  // home still takes it
    lock.unlock();
  });
}

TEST(BiasedLock, RepeatedRemoteUseRevokesTheBias) {
  biased_lock lock;
  run_checked([&] {
    lock.lock();
    lock.unlock();
    std::thread([&] {
      for (int i = 0; i < 100; ++i) {
        lock.lock();
        lock.unlock();
      }
    }).join();
    EXPECT_TRUE(lock.is_shared());
    EXPECT_FALSE(lock.is_biased());
    lock.lock();  // the former home now takes the shared path
    lock.unlock();
  });
}

// A plain counter under the lock, incremented by the home scheduler's fibers, by
// another scheduler thread and by two plain threads, while the bias is revoked
// under them: no increment is lost (and TSan sees every access ordered).
TEST(BiasedLock, ExcludesHomeRemotesAndPlainThreadsAcrossTheRevocation) {
#if WEFT_TSAN
  constexpr int per_thread = 20'000;
#else
  constexpr int per_thread = 200'000;
#endif
  biased_lock lock;
  long counter = 0;
  auto add = [&](int n) {
    for (int i = 0; i < n; ++i) {
      lock.lock();
      ++counter;
      lock.unlock();
    }
  };
  std::atomic<bool> home_bound{false};
  leak_check check;  // spans both runs: the other thread's may end after ours
  std::thread other_scheduler([&] {
    while (!home_bound) std::this_thread::yield();
    weft::run([&] { add(per_thread); });
  });
  weft::run([&] {
    add(1);  // binds home to this scheduler
    home_bound = true;
    std::thread plain1([&] { add(per_thread); }), plain2([&] { add(per_thread); });
    add(per_thread);
    weft::to_thread([&] {
      plain1.join();
      plain2.join();
    });
  });
  other_scheduler.join();
  EXPECT_EQ(counter, 1 + 4L * per_thread);
  EXPECT_TRUE(lock.is_shared());
}
