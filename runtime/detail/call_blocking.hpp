// call_blocking.hpp: run a blocking function on the pool of threads for blocking
// calls while only the calling fiber waits (weft::to_thread; net::resolve keeps
// getaddrinfo off the scheduler this way, as asyncio's loop.getaddrinfo does).
#pragma once

#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include <weft/runtime/detail/blocking_pool.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/scheduler_handle.hpp>

namespace weft::detail {

// blocking_result_t is what call_blocking holds fn's result in (monostate for void).
template <class F>
using blocking_result_t =
    std::conditional_t<std::is_void_v<std::invoke_result_t<F&>>, std::monostate, std::invoke_result_t<F&>>;

// call_blocking(fn, deadline, call) runs fn() on a pool thread (blocking_pool.hpp)
// and suspends the calling fiber until it returns; it returns fn's result (or
// rethrows its exception), or nullopt if `deadline` passes first. A deadline scope
// around the call throws timeout_error, a cancellation cancelled_error. Either way
// the fiber stops waiting at once: a call still queued never starts, one already
// running cannot be interrupted, runs to its end on its own and its result is
// dropped, so fn must own everything it uses. `call` (a static string) names the
// user's call in errors and deadlock reports. Outside a fiber: errc::not_in_fiber.
template <class F>
auto call_blocking(F fn, time_point deadline, const char* call) -> std::optional<blocking_result_t<F>> {
  using result = blocking_result_t<F>;
  static_assert(!std::is_reference_v<std::invoke_result_t<F&>>, "the function must return a value, not a reference");
  scheduler& s = scheduler::require_fiber(call);

  // Shared by the fiber and the pool thread; whoever leaves last frees it. The
  // handle tells the scheduler a wake-up may still come from outside, so a fiber
  // waiting here is never taken for deadlocked.
  struct shared_state {
    std::mutex m;
    bool done = false;
    bool abandoned = false;  // the fiber stopped waiting: do not start fn
    bool waiting = false;    // the fiber is parked on `token` (guards the record's life)
    park_token token{};
    std::optional<result> value;
    std::exception_ptr failure;
    scheduler_handle keep_alive = this_scheduler();
  };
  auto st = std::make_shared<shared_state>();
  submit_blocking([st, fn = std::move(fn)]() mutable {
    {
      std::lock_guard lock(st->m);
      if (st->abandoned) return;
    }
    std::optional<result> value;
    std::exception_ptr failure;
    {
      // fn and what it captured (a descriptor, a buffer) are destroyed here, before
      // the fiber is woken: once the call has returned, nothing of it lives on.
      F job = std::move(fn);
      try {
        if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
          job();
          value.emplace();
        } else {
          value.emplace(job());
        }
      } catch (...) {
        failure = std::current_exception();
      }
    }
    std::lock_guard lock(st->m);
    st->value = std::move(value);
    st->failure = failure;
    st->done = true;
    // Under the lock: the fiber cannot stop waiting (and perhaps finish) meanwhile.
    if (st->waiting) scheduler::wake(st->token, wake_reason::notified);
  });

  std::unique_lock lock(st->m);
  bool cancel_pending = false;
  while (!st->done) {
    st->token = s.prepare_park(call);
    st->waiting = true;
    lock.unlock();
    const wake_reason why = s.park(st->token, deadline);
    lock.lock();
    st->waiting = false;
    if (st->done) {
      // Finished as the deadline or cancel fired: the result wins, a cancel stays pending.
      cancel_pending = why == wake_reason::cancelled;
      break;
    }
    if (why == wake_reason::notified) continue;
    st->abandoned = true;
    if (why == wake_reason::timed_out) return std::nullopt;
    lock.unlock();
    throw_cancelled(call);
  }
  if (cancel_pending) scheduler::keep_cancel_pending(s.running());
  if (st->failure) std::rethrow_exception(st->failure);
  return std::move(st->value);
}

}  // namespace weft::detail
