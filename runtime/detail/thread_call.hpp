// thread_call.hpp: run a blocking function on its own thread while only the calling
// fiber waits (how net::resolve keeps getaddrinfo off the scheduler, as asyncio's
// loop.getaddrinfo does with its executor).
#pragma once

#include <pthread.h>

#include <csignal>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/scheduler_handle.hpp>

namespace weft::detail {

// call_on_thread(fn, deadline) runs fn() on a new thread and suspends the calling
// fiber until it returns; it returns fn's result (or rethrows its exception), or
// nullopt if the deadline passes first. Throws cancelled_error if the fiber is
// cancelled, errc::not_in_fiber outside a fiber; `call` (a static string) is the
// user's call that errors and a deadlock report name. fn cannot be interrupted: after a timeout or cancellation it runs to its
// end on its own and its result is dropped, so fn must own everything it uses.
template <class F>
auto call_on_thread(F fn, time_point deadline, const char* call = "weft::detail::call_on_thread")
    -> std::optional<std::invoke_result_t<F&>> {
  using result = std::invoke_result_t<F&>;
  static_assert(!std::is_void_v<result> && !std::is_reference_v<result>,
                "call_on_thread: fn must return a value");
  scheduler& s = scheduler::require_fiber(call);

  // Shared by the fiber and the thread; whoever leaves last frees it. The handle
  // tells the scheduler that a wake-up may still come from outside, so a fiber
  // waiting here is never taken for deadlocked.
  struct shared_state {
    std::mutex m;
    bool done = false;
    bool waiting = false;  // the fiber is parked on `token` (guards the record's life)
    park_token token{};
    std::optional<result> value;
    std::exception_ptr failure;
    scheduler_handle keep_alive = this_scheduler();
  };
  auto st = std::make_shared<shared_state>();
  // The helper starts with every signal blocked, so signals meant for the program
  // (a signal_set's SIGTERM, say) are never delivered to it instead.
  {
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    struct restore_mask {
      sigset_t* mask;
      ~restore_mask() { pthread_sigmask(SIG_SETMASK, mask, nullptr); }
    } restore{&previous};
    std::thread([st, fn = std::move(fn)]() mutable {
      std::optional<result> value;
      std::exception_ptr failure;
      try {
        value.emplace(fn());
      } catch (...) {
        failure = std::current_exception();
      }
      std::lock_guard lock(st->m);
      st->value = std::move(value);
      st->failure = failure;
      st->done = true;
      // Under the lock: the fiber cannot stop waiting (and perhaps finish) meanwhile.
      if (st->waiting) scheduler::wake(st->token, wake_reason::notified);
    }).detach();
  }  // the mask is restored here, before this fiber waits

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
    if (why == wake_reason::timed_out) return std::nullopt;
    if (why == wake_reason::cancelled) throw_cancelled();
  }
  if (cancel_pending) scheduler::keep_cancel_pending(s.running());
  if (st->failure) std::rethrow_exception(st->failure);
  return std::move(st->value);
}

}  // namespace weft::detail
