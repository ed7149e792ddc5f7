// call_blocking.hpp: run a blocking function on the pool of threads for blocking
// calls while only the calling fiber waits (weft::to_thread; net::resolve keeps
// getaddrinfo off the scheduler this way, as asyncio's loop.getaddrinfo does).
#pragma once

#include <atomic>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <weft/runtime/detail/blocking_pool.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/scheduler_handle.hpp>
#include <weft/runtime/this_fiber.hpp>

namespace weft::detail {

// blocking_stop tells a job on the pool whether its fiber still waits for it: a
// job that loops (fs::read_file on an endless file) stops early once nobody will
// take its result. call_blocking passes one to a fn that takes it.
class blocking_stop {
 public:
  explicit blocking_stop(const std::atomic<bool>& abandoned) noexcept : abandoned_(abandoned) {}
  bool requested() const noexcept { return abandoned_.load(std::memory_order_relaxed); }

 private:
  const std::atomic<bool>& abandoned_;
};

// invoke_job calls fn() or fn(stop), whichever it takes.
template <class F>
decltype(auto) invoke_job(F& fn, const blocking_stop& stop) {
  if constexpr (std::is_invocable_v<F&, const blocking_stop&>)
    return fn(stop);
  else
    return fn();
}
template <class F>
using job_result_t = decltype(invoke_job(std::declval<F&>(), std::declval<const blocking_stop&>()));

// blocking_result_t is what call_blocking holds fn's result in (monostate for void).
template <class F>
using blocking_result_t = std::conditional_t<std::is_void_v<job_result_t<F>>, std::monostate, job_result_t<F>>;

// call_blocking(fn, deadline, call) runs fn() (or fn(stop), see blocking_stop) on
// a pool thread (blocking_pool.hpp) and suspends the calling fiber until it
// returns; it returns fn's result (or rethrows its exception), or nullopt if
// `deadline` passes first. A deadline scope around the call throws timeout_error,
// a cancellation cancelled_error. Either way the fiber stops waiting at once: a
// call still queued never starts, one already running cannot be interrupted, runs
// to its end on its own and its result is dropped, so fn must own everything it
// uses. A deadline already past, a scope already expired or a cancellation already
// pending ends the call before fn is queued: fn never runs. fn may be move-only.
// `call` (a static string) names the user's call in errors and deadlock reports.
// Outside a fiber: errc::not_in_fiber.
// throw_cancelled_while_queued is throw_cancelled for a call that never left the
// pool's queue: the message says so, with the pool's size ("weft::to_thread (queued,
// not started: all 4 pool threads were busy): deadline passed"), since a scope that
// expires there is most often a pool too small for its load (set_to_thread_limit).
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_cancelled_while_queued(const char* call) {
  const std::size_t threads = blocking_pool_limit();
  const std::string named = std::string(call) + " (queued, not started: " +
                            (threads == 1 ? std::string("the pool's one thread was")
                                          : "all " + std::to_string(threads) + " pool threads were") +
                            " busy)";
  throw_cancelled(named.c_str());  // the message copies it
}

template <class F>
auto call_blocking(F fn, time_point deadline, const char* call) -> std::optional<blocking_result_t<F>> {
  using result = blocking_result_t<F>;
  static_assert(!std::is_reference_v<job_result_t<F>>, "the function must return a value, not a reference");
  scheduler& s = scheduler::require_fiber(call);
  check_cancelled_as(call);  // too late already: fn never runs
  if (deadline <= clock::now()) return std::nullopt;

  // Shared by the fiber and the pool thread; whoever leaves last frees it. The
  // handle tells the scheduler a wake-up may still come from outside, so a fiber
  // waiting here is never taken for deadlocked.
  struct shared_state {
    std::mutex m;
    bool done = false;
    std::atomic<bool> abandoned{false};  // the fiber stopped waiting: do not start fn (set under m)
    bool started = false;    // a pool thread took fn (set under m)
    bool waiting = false;    // the fiber is parked on `token` (guards the record's life)
    park_token token{};
    std::optional<result> value;
    std::exception_ptr failure;
    scheduler_handle keep_alive = this_scheduler();
  };
  auto st = std::make_shared<shared_state>();
  // The pool takes a std::function, which must be copyable: fn (perhaps move-only)
  // travels in a shared slot.
  auto slot = std::make_shared<std::optional<F>>(std::move(fn));
  submit_blocking([st, slot] {
    {
      std::lock_guard lock(st->m);
      if (st->abandoned.load(std::memory_order_relaxed)) return;
      st->started = true;
    }
    std::optional<result> value;
    std::exception_ptr failure;
    {
      // fn and what it captured (a descriptor, a buffer) are destroyed here, before
      // the fiber is woken: once the call has returned, nothing of it lives on.
      F job = std::move(**slot);
      slot->reset();
      const blocking_stop stop(st->abandoned);
      try {
        if constexpr (std::is_void_v<job_result_t<F>>) {
          invoke_job(job, stop);
          value.emplace();
        } else {
          value.emplace(invoke_job(job, stop));
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
    st->abandoned.store(true, std::memory_order_relaxed);
    if (why == wake_reason::timed_out) return std::nullopt;
    const bool never_started = !st->started;
    lock.unlock();
    if (never_started) throw_cancelled_while_queued(call);
    throw_cancelled(call);
  }
  if (cancel_pending) scheduler::keep_cancel_pending(s.running());
  if (st->failure) std::rethrow_exception(st->failure);
  return std::move(st->value);
}

}  // namespace weft::detail
