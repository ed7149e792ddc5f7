#include <weft/runtime/scheduler_handle.hpp>

#include <string>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scheduler_group.hpp>

namespace weft {

bool scheduler_handle::post(std::function<void()> fn) const {
  if (!inbox_) throw error(errc::scheduler_stopped, "weft::scheduler_handle::post", "the handle is empty");
  return inbox_->post(std::move(fn));
}

scheduler_handle this_scheduler() {
  return scheduler_handle(detail::scheduler::require_fiber("weft::this_scheduler").inbox());
}

scheduler_handle runtime_handle::scheduler(std::size_t i) const {
  if (i >= schedulers_.size())
    throw error(errc::invalid_argument, "weft::runtime_handle::scheduler",
                "scheduler " + std::to_string(i) + " of a runtime of " + std::to_string(schedulers_.size()));
  return schedulers_[i];
}

const scheduler_handle& runtime_handle::next(const char* call) const {
  if (schedulers_.empty()) throw error(errc::scheduler_stopped, call, "the handle is empty");
  return schedulers_[turn_->fetch_add(1, std::memory_order_relaxed) % schedulers_.size()];
}

runtime_handle this_runtime() {
  auto& here = detail::scheduler::require_fiber("weft::this_runtime");
  runtime_handle h;
  h.turn_ = std::make_shared<std::atomic<std::size_t>>(0);
  if (const detail::scheduler_group* group = here.group()) {
    for (const auto& inbox : group->inboxes()) h.schedulers_.push_back(scheduler_handle(inbox));
  } else {
    h.schedulers_.push_back(scheduler_handle(here.inbox()));
  }
  return h;
}

}  // namespace weft
