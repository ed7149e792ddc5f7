// biased_lock.hpp: the lock inside every sync/ primitive, nearly free for the
// thread that uses the primitive most.
//
// A primitive is almost always used by the fibers of one scheduler thread, and a
// lock-prefixed instruction costs that thread ~2.5 ns per operation (a channel
// round trip takes four). So the lock is biased: the first scheduler thread to take
// it becomes its *home*, and home takes it with plain stores and loads. Any other
// thread (another scheduler, a plain thread) takes the *remote* path: an ordinary
// spin lock among remotes, plus a handshake with home that costs a membarrier(2)
// system call, a few microseconds. That is the price of sharing a primitive across
// threads; the multi-core work may add an unbiased mode for primitives that are
// shared all the time.
//
// The handshake is Dekker's algorithm with an asymmetric fence:
//
//   home:   home_busy = 1;  compiler fence;  if (remote_busy) back off; else enter
//   remote: remote_busy = 1;  membarrier();  wait until home_busy == 0;  enter
//
// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) runs a full memory barrier on every
// other running thread of the process. Either home's store to home_busy came before
// that barrier (the remote then sees it and waits), or home's load of remote_busy
// came after it (home then sees remote_busy and backs off). Never both enter.
// Without membarrier (old kernels, some sandboxes) nothing binds a home, and every
// thread takes the remote path, which then needs no barrier at all.
//
// A fiber never parks while holding the lock (see wait_queue.hpp), so it is held
// for a few dozen instructions; spinning beats sleeping.
#pragma once

#include <atomic>

#include "runtime/detail/scheduler.hpp"

namespace weft::detail {

// A biased lock's home is a scheduler thread, named by its scheduler: the pointer
// every blocking call loads anyway, one instruction away. `unbound` marks a lock
// with no home yet; it is not null, so a plain thread (no scheduler) never matches.
inline const void* this_thread_identity() noexcept { return this_thread_scheduler; }

class biased_lock {
 public:
  [[gnu::always_inline]] void lock() noexcept {
    if (home_.load(std::memory_order_relaxed) == this_thread_identity()) [[likely]] {
      home_busy_.store(true, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // the asymmetric half: no CPU fence
      if (!remote_busy_.load(std::memory_order_acquire)) [[likely]]
        return;
      home_lock_contended();
      return;
    }
    remote_lock();
  }

  [[gnu::always_inline]] void unlock() noexcept {
    if (home_.load(std::memory_order_relaxed) == this_thread_identity()) [[likely]] {
      home_busy_.store(false, std::memory_order_release);
      return;
    }
    remote_unlock();
  }

 private:
  [[gnu::noinline]] void home_lock_contended() noexcept;
  [[gnu::noinline]] void remote_lock() noexcept;
  [[gnu::noinline]] void remote_unlock() noexcept;

  static constexpr char unbound_marker = 0;
  static constexpr const void* unbound = &unbound_marker;

  std::atomic<const void*> home_{unbound};  // written once, by remote_lock, under spin_
  std::atomic<bool> home_busy_{false};
  std::atomic<bool> remote_busy_{false};
  std::atomic<bool> spin_{false};           // among remote lockers
};

}  // namespace weft::detail
