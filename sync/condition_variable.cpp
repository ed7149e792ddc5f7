#include <weft/sync/condition_variable.hpp>

namespace weft {

void condition_variable::notify_one() noexcept {
  std::lock_guard guard(lock_);
  if (detail::waiter* w = waiters_.pop_claimed()) detail::wake_served(w);
}

void condition_variable::notify_all() noexcept {
  std::lock_guard guard(lock_);
  waiters_.drain_claimed([](detail::waiter* w) { detail::wake_served(w); });
}

std::cv_status condition_variable::wait_as(std::unique_lock<mutex>& lk, time_point deadline, const char* call) {
  auto& s = detail::scheduler::require_fiber(call);
  if (!lk.owns_lock())
    throw error(errc::not_owner, call, "the lock does not hold its mutex");
  // Checked before queueing: a waiter left queued by unlock()'s not_owner would be
  // read by the next notify after this frame is gone.
  if (!lk.mutex()->held_by(s.running()))
    throw error(errc::not_owner, call, "the calling fiber does not hold the mutex");
  detail::waiter w;
  lock_.lock();
  // Queued before the mutex is released: a notify from whoever takes the mutex next
  // finds us, so no wake-up falls between the unlock and the park.
  const detail::park_token token = detail::enqueue_waiter(s, waiters_, w, call);
  lock_.unlock();
  lk.mutex()->unlock();
  const detail::wait_outcome outcome = detail::await_served(s, lock_, waiters_, w, token, deadline);
  // Destroyed while we waited: acknowledge before re-taking the mutex, which may
  // take long (the destructor waits for us).
  const bool abandoned = outcome == detail::wait_outcome::abandoned;
  if (abandoned) [[unlikely]]
    detail::acknowledge_abandon(w);
  lk.mutex()->lock_until(s, no_deadline, /*cancellable=*/false, call);
  if (abandoned) [[unlikely]]
    throw error(errc::destroyed_while_waiting, call);
  if (outcome == detail::wait_outcome::cancelled) detail::throw_cancelled(call);
  // (abandoned threw above)
  return outcome == detail::wait_outcome::served ? std::cv_status::no_timeout : std::cv_status::timeout;
}

}  // namespace weft
