#include <weft/runtime/this_fiber.hpp>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scheduler_group.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/scope.hpp>

namespace weft::this_fiber {

void sleep_until(time_point deadline) {
  auto& sched = detail::scheduler::require_fiber("weft::this_fiber::sleep_until");
  // Only the deadline or a cancellation ends a sleep; anything else is spurious.
  for (;;) {
    switch (sched.park_until(deadline, "weft::this_fiber::sleep_until")) {
      case detail::wake_reason::timed_out: return;
      case detail::wake_reason::cancelled: detail::throw_cancelled();
      case detail::wake_reason::notified:
        if (deadline <= clock::now()) return;
        break;
    }
  }
}

void sleep_for(duration d) {
  auto& sched = detail::scheduler::require_fiber("weft::this_fiber::sleep_for");  // names this call
  if (d > duration::zero()) return sleep_until(deadline_after(d));
  // time_point::min(): due at once, without a clock read; other fibers run first.
  if (sched.park_until(time_point::min(), "weft::this_fiber::sleep_for") == detail::wake_reason::cancelled) detail::throw_cancelled();
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

void check_cancelled() {
  auto& sched = detail::scheduler::require_fiber("weft::this_fiber::check_cancelled");
  detail::fiber_record* self = sched.running();
  if (self->shield_depth_ > 0) return;
  if (self->take_cancel()) detail::throw_delivered(self, false);
  if (self->scope_deadline_ == no_deadline) return;
  const time_point now = clock::now();
  if (now < self->scope_deadline_) return;
  // Expired, unless only scopes masked by a cleanup in progress have (scope_state.hpp).
  if (!self->masks_ || detail::unmasked_scope_deadline(self) <= now) detail::throw_delivered(self, true);
}

}  // namespace weft::this_fiber
