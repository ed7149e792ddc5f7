// spin_lock.hpp: a lock for critical sections of a few dozen instructions that
// threads of one runtime share (a scheduler's inbox, the lock inside sync/
// primitives once shared).
//
// A std::mutex there costs more than the work it guards when two threads meet:
// glibc's mutex puts the loser to sleep in futex_wait and the winner pays a
// futex_wake system call on unlock, several microseconds for a hand-off that
// takes a few hundred nanoseconds. A spinning waiter instead gets the lock as soon
// as it is released. It spins politely (pause), and after a while gives up its CPU
// (sched_yield), so a holder that was preempted gets to run.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>

namespace weft::detail {

// pause_while spins until `flag` is false (acquire).
inline void pause_while(const std::atomic<bool>& flag) noexcept {
  for (int spins = 0; flag.load(std::memory_order_acquire); ++spins) {
    if (spins < 128)
      __builtin_ia32_pause();
    else
      ::sched_yield();
  }
}

// pause_while_set spins until none of `bits` is set in `word` (acquire).
inline void pause_while_set(const std::atomic<std::uint8_t>& word, std::uint8_t bits) noexcept {
  for (int spins = 0; word.load(std::memory_order_acquire) & bits; ++spins) {
    if (spins < 128)
      __builtin_ia32_pause();
    else
      ::sched_yield();
  }
}

class spin_lock {
 public:
  void lock() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire)) pause_while(locked_);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft::detail
