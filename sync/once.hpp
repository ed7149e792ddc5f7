// once.hpp: run something exactly once, however many fibers ask (std::call_once
// for fibers).
//
//   static weft::once_flag init;
//   weft::call_once(init, [] { load_config(); });
//
// The first caller runs the function; callers arriving while it runs wait (only
// their fiber) and return once it has finished; later callers return at once. If
// the function throws, the exception goes to the caller that ran it, the flag stays
// unset, and the next caller (a waiting one first, FIFO) runs it again. A cancelled
// waiter throws cancelled_error. The function may block (it runs in a fiber like
// any other); it must not call_once the same flag (errc::would_deadlock).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <utility>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/wait_queue.hpp>

namespace weft {

class once_flag {
 public:
  once_flag() = default;
  once_flag(const once_flag&) = delete;
  once_flag& operator=(const once_flag&) = delete;
  // ~once_flag wakes any waiter with errc::destroyed_while_waiting, and returns once
  // none can touch the flag any more (see sync/detail/wait_queue.hpp).
  ~once_flag() { detail::abandon_waiters(lock_, "weft::once_flag", waiters_); }

  bool done() const noexcept { return done_.load(std::memory_order_acquire); }

 private:
  template <class F, class... Args>
  friend void call_once(once_flag& flag, F&& f, Args&&... args);

  // begin: true if the caller must run the function now; false once it has run.
  bool begin();
  void end(bool succeeded) noexcept;

  std::atomic<bool> done_{false};
  detail::biased_lock lock_;  // guards runner_ and waiters_
  detail::fiber_record* runner_ = nullptr;
  detail::wait_queue waiters_;
};

// call_once runs f(args...) if no call on `flag` has completed, as described above.
template <class F, class... Args>
void call_once(once_flag& flag, F&& f, Args&&... args) {
  if (flag.done()) return;
  if (!flag.begin()) return;
  try {
    std::invoke(std::forward<F>(f), std::forward<Args>(args)...);
  } catch (...) {
    flag.end(false);
    throw;
  }
  flag.end(true);
}

}  // namespace weft
