#include <weft/sync/event.hpp>

#include <mutex>

namespace weft {

void event::set() noexcept {
  std::lock_guard guard(lock_);
  set_ = true;
  waiters_.drain_claimed([](detail::waiter* w) { detail::wake_served(w); });
}

void event::clear() noexcept {
  std::lock_guard guard(lock_);
  set_ = false;
}

bool event::is_set() const noexcept {
  std::lock_guard guard(lock_);
  return set_;
}

bool event::wait_as(time_point deadline, const char* call) {
  auto& s = detail::scheduler::require_fiber(call);
  lock_.lock();
  if (set_) {
    lock_.unlock();
    return true;
  }
  detail::waiter w;
  return detail::served_or_throw(detail::block_on(s, lock_, waiters_, w, call, deadline), w, call);
}

}  // namespace weft
