#include "sync/wait_group.hpp"

#include <mutex>

#include "runtime/error.hpp"

namespace weft {

void wait_group::add(std::ptrdiff_t n) {
  std::lock_guard guard(lock_);
  if (count_ + n < 0) throw error(errc::invalid_argument, "weft::wait_group::add", "the counter would go negative");
  count_ += n;
  if (count_ == 0) waiters_.drain_claimed([](detail::waiter* w) { detail::wake_served(w); });
}

std::ptrdiff_t wait_group::count() const noexcept {
  std::lock_guard guard(lock_);
  return count_;
}

bool wait_group::wait_until(time_point deadline) {
  auto& s = detail::scheduler::require_fiber("weft::wait_group::wait");
  lock_.lock();
  if (count_ == 0) {
    lock_.unlock();
    return true;
  }
  detail::waiter w;
  return detail::served_or_throw(detail::block_on(s, lock_, waiters_, w, "weft::wait_group::wait", deadline));
}

}  // namespace weft
