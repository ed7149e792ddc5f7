// mutex.hpp: a mutex for fibers (asyncio.Lock); works with std::lock_guard,
// std::unique_lock and std::scoped_lock.
//
//   weft::mutex m;
//   { std::lock_guard g(m); ... }   // only the calling fiber waits, not the thread
//
// A mutex is owned by a fiber. lock() waits while another fiber holds it. Waiters
// are served in FIFO order: unlock() hands ownership straight to the longest-waiting
// fiber, so a fiber arriving later cannot take the mutex first (no barging).
// try_lock_for / try_lock_until (the names std::unique_lock calls) return false at
// the deadline; a cancelled waiter throws cancelled_error without the mutex.
//
// Errors: lock() by the fiber that holds it is errc::would_deadlock (it is not
// recursive), and so are try_lock_for / try_lock_until: with a deadline the call
// could only wait it out, and a recursive lock is a bug worth hearing of at once
// (try_lock() just returns false); unlock() by a fiber that does not hold it is errc::not_owner. All
// calls need a fiber (errc::not_in_fiber): ownership is per fiber.
#pragma once

#include <mutex>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/always_inline.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/wait_queue.hpp>

namespace weft {

class condition_variable;

class mutex {
 public:
  mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;
  // ~mutex wakes any waiter with errc::destroyed_while_waiting, and returns once none
  // can touch the mutex any more (see sync/detail/wait_queue.hpp).
  ~mutex() { detail::abandon_waiters(lock_, "weft::mutex", waiters_); }

  // lock takes the mutex, waiting in FIFO order while another fiber holds it.
  WEFT_ALWAYS_INLINE void lock() {
    auto& s = detail::scheduler::require_fiber("weft::mutex::lock");
    lock_until(s, no_deadline, true, "weft::mutex::lock");
  }
  // try_lock takes the mutex only if it is free now.
  bool try_lock() {
    auto& s = detail::scheduler::require_fiber("weft::mutex::try_lock");
    std::lock_guard guard(lock_);
    if (owner_ != nullptr) return false;
    owner_ = s.running();
    return true;
  }
  // try_lock_until waits at most until `deadline`; false if it passed.
  bool try_lock_until(time_point deadline) {
    return lock_until(detail::scheduler::require_fiber("weft::mutex::try_lock_until"), deadline, true,
                      "weft::mutex::try_lock_until");
  }
  template <class Clock, class Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& deadline) {
    return lock_until(detail::scheduler::require_fiber("weft::mutex::try_lock_until"), deadline_at(deadline), true,
                      "weft::mutex::try_lock_until");
  }
  template <class Rep, class Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) {
    return lock_until(detail::scheduler::require_fiber("weft::mutex::try_lock_for"), deadline_after(d), true,
                      "weft::mutex::try_lock_for");
  }

  // unlock releases the mutex to the next waiter, if any.
  WEFT_ALWAYS_INLINE void unlock() {
    auto& s = detail::scheduler::require_fiber("weft::mutex::unlock");
    std::lock_guard guard(lock_);
    if (owner_ != s.running()) [[unlikely]]
      throw_not_owner();
    if (detail::waiter* w = waiters_.pop_claimed()) {
      owner_ = w->token.fiber;
      detail::wake_served(w);
    } else {
      owner_ = nullptr;
    }
  }

 private:
  friend class condition_variable;

  // held_by: `f` holds the mutex now. Only `f` can change that answer, so it stays
  // true for `f` until `f` unlocks.
  bool held_by(const detail::fiber_record* f) {
    std::lock_guard guard(lock_);
    return owner_ == f;
  }

  // lock_until: the one locking path. cancellable == false serves a condition
  // variable, which must give its caller the mutex back even when cancelled. `call`
  // is the name errors give (the call the user made).
  WEFT_ALWAYS_INLINE bool lock_until(detail::scheduler& s, time_point deadline, bool cancellable, const char* call) {
    detail::fiber_record* self = s.running();
    std::unique_lock guard(lock_);
    if (owner_ == nullptr) {
      owner_ = self;
      return true;
    }
    if (owner_ == self) [[unlikely]]
      throw_would_deadlock(call);
    detail::waiter w;
    guard.release();
    return detail::served_or_throw(detail::block_on(s, lock_, waiters_, w, call, deadline, cancellable), w, call);
  }
  [[noreturn, gnu::cold]] static void throw_not_owner();
  [[noreturn, gnu::cold]] static void throw_would_deadlock(const char* call);

  detail::biased_lock lock_;  // guards owner_ and waiters_
  detail::fiber_record* owner_ = nullptr;
  detail::wait_queue waiters_;
};

}  // namespace weft
