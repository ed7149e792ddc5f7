// biased_lock.hpp: the lock inside every sync/ primitive, nearly free for the
// thread that uses the primitive most.
//
// A primitive is almost always used by the fibers of one scheduler thread, and a
// lock-prefixed instruction on every operation is a large part of a hand-off (a
// channel round trip takes four; bench/NOTES.md has the numbers). So the lock is
// biased: the first scheduler thread to take it becomes its *home*, and home takes
// it with plain stores and loads. Any other thread (another scheduler, a plain
// thread) takes the *remote* path: an ordinary spin lock among remotes, plus a
// handshake with home that costs a membarrier(2) system call, a few microseconds.
//
// A primitive that is shared for real (fibers on two schedulers of one runtime
// taking turns on a channel) must not pay that on every operation, so the bias is
// *revoked* after a few remote acquisitions (revoke_after): the lock becomes
// *shared*, and from then on every thread, home included, takes the spin lock
// alone: one compare-and-swap, no system call. A lock never goes back to a home.
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
// Revoking: a remote that holds the lock through the handshake stores home =
// shared and sets the `remote_revoked` bit, which stays set for good, then runs a
// second membarrier before it unlocks. Home reads home_ before its store to
// home_busy (to choose its path), and after it the byte that holds remote_busy and
// remote_revoked (still_home, one load). A home whose store came before that
// barrier reads remote_busy set, or, if it was descheduled between its read of
// home_ and its store (so that the whole revocation, unlock included, happened
// meanwhile), reads remote_revoked (a barrier or a context switch lies between);
// either way it backs off (home_lock_contended) and locks as everyone does. One
// that begins after the barrier sees `shared` at once. So no thread takes the home
// path once the revoking remote has unlocked. (Until 2026-12-06 home did not look
// again: a descheduled home could then enter beside a shared-path locker. The
// first fix re-read home_ after the store, a second load there, which cost
// weft/channel_throughput ~1.3x; the bit beside remote_busy costs nothing.)
//
// A fiber never parks while holding the lock (see wait_queue.hpp), so it is held
// for a few dozen instructions; spinning beats sleeping.
#pragma once

#include <atomic>
#include <cstdint>

#include <weft/runtime/detail/always_inline.hpp>
#include <weft/runtime/detail/scheduler.hpp>

namespace weft::detail {

// A biased lock's home is a scheduler thread, named by its scheduler: the pointer
// every blocking call loads anyway, one instruction away. `unbound` marks a lock
// with no home yet; it is not null, so a plain thread (no scheduler) never matches.
inline const void* this_thread_identity() noexcept { return this_thread_scheduler; }

class biased_lock {
 public:
  WEFT_ALWAYS_INLINE void lock() noexcept { lock_as(this_thread_identity()); }
  WEFT_ALWAYS_INLINE void unlock() noexcept { unlock_as(this_thread_identity()); }

  // lock_as and unlock_as are lock and unlock for a caller that already holds this
  // thread's identity (its scheduler, or null on a plain thread) in a register:
  // a channel hand-off locks and unlocks four times, and each thread-local load
  // it saves is one less on the way to the next switch.
  WEFT_ALWAYS_INLINE void lock_as(const void* here) noexcept {
    if (home_.load(std::memory_order_relaxed) == here) [[likely]] {
      home_busy_.store(true, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);  // the asymmetric half: no CPU fence
      if (still_home()) [[likely]]
        return;
      home_lock_contended(here);
      return;
    }
    remote_lock();
  }

  // lock_if_home is lock_as for a caller with a path of its own for the other
  // cases (a channel's shared ring): if this thread is the lock's home it takes the
  // lock, `taken` on the home path, `taken_after_remote` if a remote held it
  // meanwhile (then the bias may be gone, and what the remote did is visible);
  // otherwise it takes nothing and returns `not_home`.
  enum class home_lock { taken, taken_after_remote, not_home };
  WEFT_ALWAYS_INLINE home_lock lock_if_home(const void* here) noexcept {
    if (home_.load(std::memory_order_relaxed) != here) [[unlikely]]
      return home_lock::not_home;
    home_busy_.store(true, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);  // as in lock_as
    if (still_home()) [[likely]]
      return home_lock::taken;
    home_lock_contended(here);
    return home_lock::taken_after_remote;
  }

  WEFT_ALWAYS_INLINE void unlock_as(const void* here) noexcept {
    if (home_.load(std::memory_order_relaxed) == here) [[likely]] {
      home_busy_.store(false, std::memory_order_release);
      return;
    }
    remote_unlock();
  }

  // as(here) is this lock for the thread whose identity is `here`, as a Lockable
  // (for block_on and std::lock_guard).
  class held_as {
   public:
    held_as(biased_lock& l, const void* here) noexcept : lock_(l), here_(here) {}
    WEFT_ALWAYS_INLINE void lock() noexcept { lock_.lock_as(here_); }
    WEFT_ALWAYS_INLINE void unlock() noexcept { lock_.unlock_as(here_); }

   private:
    biased_lock& lock_;
    const void* here_;
  };
  held_as as(const void* here) noexcept { return held_as(*this, here); }

  // For tests and diagnostics: the lock has a home thread / has been revoked.
  bool is_biased() const noexcept {
    const void* home = home_.load(std::memory_order_relaxed);
    return home != unbound && home != shared;
  }
  bool is_shared() const noexcept { return home_.load(std::memory_order_relaxed) == shared; }

 private:
  // still_home: after home's store to home_busy_, no remote holds the lock and the
  // bias was not revoked since home read home_ (see "Revoking" above).
  WEFT_ALWAYS_INLINE bool still_home() const noexcept {
    return !(remote_.load(std::memory_order_acquire) & (remote_busy | remote_revoked));
  }
  [[gnu::noinline]] void home_lock_contended(const void* here) noexcept;
  [[gnu::noinline]] void remote_lock() noexcept;
  [[gnu::noinline]] void remote_unlock() noexcept;

  // How many remote acquisitions through the handshake a home keeps its bias for.
  // A plain thread that sets an event now and then leaves the home its free path;
  // fibers on two schedulers that take turns revoke it within a few hand-offs.
  static constexpr unsigned revoke_after = 8;

  static constexpr char unbound_marker = 0;
  static constexpr const void* unbound = &unbound_marker;
  static constexpr char shared_marker = 0;
  static constexpr const void* shared = &shared_marker;  // revoked: no home, ever

  // unbound -> a home -> shared; written only by remote_lock, under remote_spin.
  std::atomic<const void*> home_{unbound};
  std::atomic<bool> home_busy_{false};
  // The remotes' side, in one byte: `remote_spin` is the spin lock among remote
  // lockers, `remote_busy` (set only by the spin's holder) excludes home, and
  // `remote_revoked` (set once, with home_ = shared) turns home away for good (see
  // "Revoking"). One byte, so that a remote's unlock is one store: after it, nothing of this
  // object is touched, and the thread that locks next may destroy it (a fiber
  // woken by a plain thread's set() that deletes the event at once). Two flags
  // cleared one after the other let home enter, and free the memory, before the
  // second store landed. In another 8-byte word than home_busy_: home loads it
  // right after its store to home_busy_, and a load from the word a store is still
  // writing waits for that store on some CPUs (bench/NOTES.md).
  static constexpr std::uint8_t remote_spin = 1;
  static constexpr std::uint8_t remote_busy = 2;
  static constexpr std::uint8_t remote_revoked = 4;
  alignas(8) std::atomic<std::uint8_t> remote_{0};
  unsigned remote_acquisitions_ = 0;         // under remote_spin: handshakes so far
};

}  // namespace weft::detail
