#include <weft/sync/detail/biased_lock.hpp>

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <weft/runtime/detail/spin_lock.hpp>

namespace weft::detail {
namespace {

// membarrier_ready registers the process for expedited private membarriers once;
// false if the kernel (or a sandbox) does not offer them.
bool membarrier_ready() noexcept {
  static const bool ready = [] {
    const long supported = ::syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    if (supported < 0 || !(supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
    return ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }();
  return ready;
}

void heavy_barrier() noexcept { ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0); }

}  // namespace

void biased_lock::home_lock_contended(const void* here) noexcept {
  // A remote holds the lock or is taking it: step aside until it is done, so it
  // can never wait for us while we wait for it.
  for (;;) {
    home_busy_.store(false, std::memory_order_release);
    pause_while_set(remote_, remote_busy);
    // That remote may have revoked the bias (its store of `shared` is ordered
    // before its unlock, which pause_while acquired): then lock as everyone does.
    if (home_.load(std::memory_order_relaxed) != here) {
      remote_lock();
      return;
    }
    home_busy_.store(true, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (still_home()) return;
  }
}

void biased_lock::remote_lock() noexcept {
  // The revoked bit, once set, stays through every lock and unlock.
  for (;;) {
    std::uint8_t expected = remote_.load(std::memory_order_relaxed) & remote_revoked;
    if (remote_.compare_exchange_weak(expected, expected | remote_spin, std::memory_order_acquire)) break;
    pause_while_set(remote_, remote_spin);
  }
  const void* home = home_.load(std::memory_order_relaxed);
  if (home == unbound) {
    // Unbound: a scheduler thread binds it to itself (from now on it locks as home,
    // and this first time it holds the spin, which excludes every remote).
    // home_busy_ is set before the spin is released: the next remote to get it
    // sees that (release/acquire on remote_) and waits for our unlock.
    if (this_thread_scheduler != nullptr && membarrier_ready()) {
      home_busy_.store(true, std::memory_order_relaxed);
      home_.store(this_thread_identity(), std::memory_order_relaxed);
      remote_.store(0, std::memory_order_release);
      return;
    }
    remote_.store(remote_spin | remote_busy, std::memory_order_relaxed);  // unbound: no home to exclude
    return;
  }
  if (home == shared) {
    // seen by a home backing off
    remote_.store(remote_spin | remote_busy | remote_revoked, std::memory_order_relaxed);
    return;
  }
  remote_.store(remote_spin | remote_busy, std::memory_order_seq_cst);
  heavy_barrier();
  pause_while(home_busy_);
  if (++remote_acquisitions_ == revoke_after) {
    // We hold the lock, and home is outside it. See the header for why the second
    // barrier makes `shared` stick.
    home_.store(shared, std::memory_order_relaxed);
    remote_.store(remote_spin | remote_busy | remote_revoked, std::memory_order_release);
    heavy_barrier();
  }
}

void biased_lock::remote_unlock() noexcept {
  // One store: our last touch (see remote_). The revoked bit stays.
  const std::uint8_t revoked = remote_.load(std::memory_order_relaxed) & remote_revoked;
  remote_.store(revoked, std::memory_order_release);
}

}  // namespace weft::detail
