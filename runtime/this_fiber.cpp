#include <weft/runtime/this_fiber.hpp>

#include <exception>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scheduler_group.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/scope.hpp>

namespace weft::this_fiber {

namespace {

// sleep_in parks until `deadline`; `call` names the user's call in errors and
// deadlock reports. Out of line: inlined into sleep_for, its loop and clock read
// made sleep_for(0)'s path save three more registers (weft/sleep_zero 1.12x).
[[gnu::noinline]] void sleep_in(detail::scheduler& sched, time_point deadline, const char* call) {
  // Only the deadline or a cancellation ends a sleep; anything else is spurious.
  for (;;) {
    switch (sched.park_until(deadline, call)) {
      case detail::wake_reason::timed_out: return;
      case detail::wake_reason::cancelled: detail::throw_cancelled(call);
      case detail::wake_reason::notified:
        if (deadline <= clock::now()) return;
        break;
    }
  }
}

}  // namespace
}  // namespace weft::this_fiber

void weft::detail::sleep_until_as(time_point deadline, const char* call) {
  this_fiber::sleep_in(scheduler::require_fiber(call), deadline, call);
}

namespace weft::this_fiber {

void sleep_until(time_point deadline) {
  sleep_in(detail::scheduler::require_fiber("weft::this_fiber::sleep_until"), deadline, "weft::this_fiber::sleep_until");
}

void sleep_for(duration d) {
  constexpr const char* call = "weft::this_fiber::sleep_for";
  auto& sched = detail::scheduler::require_fiber(call);
  if (d > duration::zero()) return sleep_in(sched, deadline_after(d), call);
  // time_point::min(): due at once, without a clock read; other fibers run first.
  if (sched.park_until(time_point::min(), call) == detail::wake_reason::cancelled) detail::throw_cancelled(call);
}

std::size_t scheduler_index() { return detail::scheduler::require_fiber("weft::this_fiber::scheduler_index").index(); }

std::size_t scheduler_count() {
  const auto* group = detail::scheduler::require_fiber("weft::this_fiber::scheduler_count").group();
  return group ? group->size() : 1;
}

fiber_id id() { return detail::scheduler::require_fiber("weft::this_fiber::id").running()->id_; }

std::string_view name() { return detail::scheduler::require_fiber("weft::this_fiber::name").running()->name_; }

}  // namespace weft::this_fiber

namespace weft::this_fiber {

void check_cancelled() { detail::check_cancelled_as("weft::this_fiber::check_cancelled"); }

}  // namespace weft::this_fiber

namespace weft::detail {

void check_cancelled_as(const char* call) {
  auto& sched = scheduler::require_fiber(call);
  fiber_record* self = sched.running();
  // Inside a shield (or while unwinding) a cancellation stays pending; the scopes
  // opened inside a shield still count (scope_deadline_ holds only those there).
  if (self->cancel_deferred()) self->settle_deferred_cancel();
  if (self->takes_cancel_now() && self->take_cancel()) throw_delivered(self, false, call);
  if (self->scope_deadline_ == no_deadline) return;
  const time_point now = clock::now();
  if (now < self->scope_deadline_) return;
  // Expired, unless only scopes a cleanup in progress keeps quiet have (scope_state.hpp).
  if ((!self->has_masks() && std::uncaught_exceptions() == 0) || unmasked_scope_deadline(self) <= now)
    throw_delivered(self, true, call);
}

}  // namespace weft::detail
