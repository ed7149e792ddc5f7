// this_fiber.hpp: what the running fiber can do to itself; every this_fiber::
// function is declared here.
#pragma once

#include <chrono>
#include <string_view>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/unhandled_exception.hpp>

namespace weft::detail {
// sleep_until_as is sleep_until with `call` (a static string) naming the user's call
// in its errors and in deadlock reports.
void sleep_until_as(time_point deadline, const char* call);
}  // namespace weft::detail

namespace weft::this_fiber {

// yield() lets every other runnable fiber of this scheduler run once, then returns.
// Not a cancellation point. Throws errc::not_in_fiber outside a fiber.
inline void yield() { detail::scheduler::require_fiber("weft::this_fiber::yield").yield(); }

// sleep_until(t) suspends the calling fiber until t (never earlier; timers have 1 ms
// resolution, so up to ~1 ms later; sleeps that fall due in the same millisecond
// wake in the order they began). sleep_for(d) sleeps for d, any duration type:
// one too long to represent (hours::max(), years, an infinity) sleeps until
// cancelled, as does sleep_until(no_deadline). d <= 0 (or NaN), or a t already past,
// goes once through the timer queue without waiting, letting the fibers already
// runnable run first (asyncio.sleep(0)). Throws cancelled_error if the fiber is
// cancelled, timeout_error if a deadline scope around it expires (runtime/scope.hpp),
// errc::not_in_fiber outside a fiber.
void sleep_until(time_point deadline);
void sleep_for(duration d);
template <class Rep, class Period>
void sleep_for(std::chrono::duration<Rep, Period> d) {
  if (d <= d.zero())
    sleep_for(duration::zero());
  else
    detail::sleep_until_as(deadline_after(d), "weft::this_fiber::sleep_for");  // names this call in errors
}

// id() is the calling fiber's process-unique id (never 0); name() its spawn name.
fiber_id id();
std::string_view name();

// scheduler_index() is the index of the scheduler running the calling fiber in its
// runtime: 0 for run()'s own thread, up to run_options::threads - 1 (see
// spawn_options::on); scheduler_count() is how many the runtime has.
std::size_t scheduler_index();
std::size_t scheduler_count();

// cancellation_requested: a cancellation is pending for this fiber (it will be
// delivered by the next blocking call outside a shield, or after the cleanup in
// progress: runtime/scope.hpp). Does not consume it. Throws errc::not_in_fiber
// outside a fiber.
inline bool cancellation_requested() {
  const detail::fiber_record* self =
      detail::scheduler::require_fiber("weft::this_fiber::cancellation_requested").running();
  return self->cancel_requested() || self->cancel_deferred();
}

// check_cancelled is a cancellation point that does not block: it throws
// cancelled_error if a cancellation is pending (consuming it), and what an expired
// deadline scope around it throws (runtime/scope.hpp). Inside a shield only the
// scopes opened inside the shield count; a cancellation stays pending. Throws
// errc::not_in_fiber outside a fiber.
void check_cancelled();

}  // namespace weft::this_fiber

namespace weft::detail {
// check_cancelled_as is check_cancelled naming `call` (a static string), for
// weft's own calls that are cancellation points (shield, to_thread, ...).
void check_cancelled_as(const char* call);
}  // namespace weft::detail
