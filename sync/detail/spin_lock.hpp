// spin_lock.hpp: the lock inside every sync/ primitive.
//
// A fiber never parks while holding it (waiters queue themselves, then release it,
// then park), so it is held for a few dozen instructions at a time and contention
// can only come from another thread touching the same primitive. Spinning is then
// cheaper than any sleeping lock; after a while we give the CPU away in case the
// holder's thread was preempted.
#pragma once

#include <sched.h>

#include <atomic>

namespace weft::detail {

class spin_lock {
 public:
  void lock() noexcept {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) [[likely]]
        return;
      // Test before test-and-set: spin on a shared read, not on a bouncing write.
      for (int spins = 0; locked_.load(std::memory_order_relaxed); ++spins) {
        if (spins < 128)
          __builtin_ia32_pause();
        else
          ::sched_yield();
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
