#include <weft/sync/wait_group.hpp>

#include <cstdint>
#include <mutex>
#include <string>

#include <weft/runtime/error.hpp>

namespace weft {

void wait_group::add(std::ptrdiff_t n, const char* call) {
  std::lock_guard guard(lock_);
  if (n < 0 ? count_ + n < 0 : count_ > PTRDIFF_MAX - n)
    throw error(errc::invalid_argument, call, std::string("counter would go ") +
                                            (n < 0 ? "negative" : "past PTRDIFF_MAX") + " (it is " +
                                            std::to_string(count_) + ", adding " + std::to_string(n) + ")");
  count_ += n;
  if (count_ == 0) waiters_.drain_claimed([](detail::waiter* w) { detail::wake_served(w); });
}

std::ptrdiff_t wait_group::count() const noexcept {
  std::lock_guard guard(lock_);
  return count_;
}

bool wait_group::wait_as(time_point deadline, const char* call) {
  auto& s = detail::scheduler::require_fiber(call);
  lock_.lock();
  if (count_ == 0) {
    lock_.unlock();
    return true;
  }
  detail::waiter w;
  return detail::served_or_throw(detail::block_on(s, lock_, waiters_, w, call, deadline), w, call);
}

}  // namespace weft
