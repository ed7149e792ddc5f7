#include <weft/runtime/scheduler_handle.hpp>

#include <weft/runtime/detail/scheduler.hpp>

namespace weft {

bool scheduler_handle::post(std::function<void()> fn) const {
  if (!inbox_) throw error(errc::scheduler_stopped, "weft::scheduler_handle::post", "the handle is empty");
  return inbox_->post(std::move(fn));
}

scheduler_handle this_scheduler() {
  return scheduler_handle(detail::scheduler::require_fiber("weft::this_scheduler").inbox());
}

}  // namespace weft
