#include <weft/sync/once.hpp>

#include <weft/runtime/error.hpp>

namespace weft {

bool once_flag::begin() {
  auto& s = detail::scheduler::require_fiber("weft::call_once");
  for (;;) {
    lock_.lock();
    if (done_.load(std::memory_order_relaxed)) {
      lock_.unlock();
      return false;
    }
    if (runner_ == nullptr) {
      runner_ = s.running();
      lock_.unlock();
      return true;
    }
    if (runner_ == s.running()) {
      lock_.unlock();
      throw error(errc::would_deadlock, "weft::call_once", "the function called call_once on its own flag");
    }
    detail::waiter w;
    // Woken when the run ends: done, or failed and open to the next runner.
    detail::served_or_throw(detail::block_on(s, lock_, waiters_, w, "weft::call_once", no_deadline), w, "weft::call_once");
  }
}

void once_flag::end(bool succeeded) noexcept {
  std::lock_guard guard(lock_);
  runner_ = nullptr;
  if (succeeded) {
    done_.store(true, std::memory_order_release);
    waiters_.drain_claimed([](detail::waiter* w) { detail::wake_served(w); });
  } else if (detail::waiter* w = waiters_.pop_claimed()) {
    detail::wake_served(w);  // the next in line tries
  }
}

}  // namespace weft
