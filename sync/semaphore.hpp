// semaphore.hpp: counting semaphores (asyncio.Semaphore, asyncio.BoundedSemaphore).
//
//   weft::semaphore slots(4);            // at most 4 fibers inside at once
//   slots.acquire();  ...  slots.release();
//   { weft::semaphore_guard g(slots); ... }   // released however the scope ends
//
// acquire() takes a permit, waiting while there is none. Waiters are served in FIFO
// order: release() hands its permit straight to the longest-waiting fiber, so a
// fiber arriving later cannot take it first (no barging). A deadline form returns
// false, a cancelled waiter throws cancelled_error; neither takes a permit, and a
// permit handed to a waiter at the instant it was cancelled is kept (acquire
// returns, the cancellation stays pending).
//
// bounded_semaphore reports a release beyond its initial count (a release without
// an acquire, the classic permit leak in reverse) as errc::semaphore_overflow.
//
// Threads: release and try_acquire work from any thread; acquire from fibers.
#pragma once

#include <cstddef>
#include <mutex>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/always_inline.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/wait_queue.hpp>

namespace weft {

class semaphore {
 public:
  // semaphore(initial) starts with `initial` permits; negative: errc::invalid_argument.
  explicit semaphore(std::ptrdiff_t initial);
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;
  // ~semaphore wakes any waiter with errc::destroyed_while_waiting, and returns once
  // none can touch the semaphore any more (see sync/detail/wait_queue.hpp).
  virtual ~semaphore() { detail::abandon_waiters(lock_, "weft::semaphore", waiters_); }

  // acquire takes one permit, waiting in FIFO order while there is none.
  WEFT_ALWAYS_INLINE void acquire() {
    auto& s = detail::scheduler::require_fiber("weft::semaphore::acquire");
    acquire_until(s, no_deadline, "weft::semaphore::acquire");
  }
  // try_acquire takes a permit only if one is free now (and nobody waits).
  bool try_acquire() noexcept {
    std::lock_guard guard(lock_);
    if (count_ == 0) return false;
    --count_;
    return true;
  }
  // acquire_until waits at most until `deadline`; false if it passed.
  bool acquire_until(time_point deadline) {
    return acquire_until(detail::scheduler::require_fiber("weft::semaphore::acquire_until"), deadline,
                         "weft::semaphore::acquire_until");
  }
  template <class Rep, class Period>
  bool acquire_for(std::chrono::duration<Rep, Period> d) {
    return acquire_until(detail::scheduler::require_fiber("weft::semaphore::acquire_for"), deadline_after(d),
                         "weft::semaphore::acquire_for");
  }

  // release gives back n permits, each to the next waiter or to the count.
  // Negative n, or a count that would pass PTRDIFF_MAX: errc::invalid_argument.
  WEFT_ALWAYS_INLINE void release(std::ptrdiff_t n = 1) {
    std::lock_guard guard(lock_);
    if (n < 0 || n > headroom()) [[unlikely]]
      throw_bad_release(n);
    for (; n > 0; --n) {
      if (detail::waiter* w = waiters_.pop_claimed())
        detail::wake_served(w);
      else
        ++count_;
    }
  }

  // available is the number of free permits (a snapshot).
  std::ptrdiff_t available() const noexcept {
    std::lock_guard guard(lock_);
    return count_;
  }

 protected:
  // headroom: how many permits a release may give back (unlimited here).
  virtual std::ptrdiff_t headroom() const noexcept { return PTRDIFF_MAX - count_; }
  virtual bool bounded() const noexcept { return false; }
  std::ptrdiff_t count_;

 private:
  // acquire_until: the one waiting path; `call` is the name errors give.
  WEFT_ALWAYS_INLINE bool acquire_until(detail::scheduler& s, time_point deadline, const char* call) {
    std::unique_lock guard(lock_);
    if (count_ > 0) {  // permits are free only while nobody waits
      --count_;
      return true;
    }
    detail::waiter w;
    guard.release();
    return detail::served_or_throw(detail::block_on(s, lock_, waiters_, w, call, deadline), w, call);
  }
  [[noreturn, gnu::cold]] void throw_bad_release(std::ptrdiff_t n) const;

  mutable detail::biased_lock lock_;  // guards count_ and waiters_
  detail::wait_queue waiters_;
};

// bounded_semaphore is a semaphore whose count may never exceed its initial value.
class bounded_semaphore : public semaphore {
 public:
  explicit bounded_semaphore(std::ptrdiff_t initial) : semaphore(initial), limit_(initial) {}

 private:
  std::ptrdiff_t headroom() const noexcept override { return limit_ - count_; }
  bool bounded() const noexcept override { return true; }
  std::ptrdiff_t limit_;
};

// semaphore_guard holds one permit for a scope (acquire on entry, release on exit).
class semaphore_guard {
 public:
  explicit semaphore_guard(semaphore& s) : s_(s) { s_.acquire(); }
  semaphore_guard(const semaphore_guard&) = delete;
  semaphore_guard& operator=(const semaphore_guard&) = delete;
  ~semaphore_guard() { s_.release(); }

 private:
  semaphore& s_;
};

}  // namespace weft
