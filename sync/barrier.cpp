#include <weft/sync/barrier.hpp>

#include <cstdint>
#include <string>

#include <weft/runtime/error.hpp>

namespace weft {

barrier::barrier(std::size_t parties) : parties_(parties) {
  if (parties == 0) throw error(errc::invalid_argument, "weft::barrier", "needs at least one party");
  if (parties > static_cast<std::size_t>(PTRDIFF_MAX))
    throw error(errc::invalid_argument,
                "weft::barrier", std::to_string(parties) + " parties (a negative count converted to size_t?)");
}

std::size_t barrier::checked(std::ptrdiff_t parties) {
  if (parties < 0)
    throw error(errc::invalid_argument, "weft::barrier", "negative party count " + std::to_string(parties));
  return static_cast<std::size_t>(parties);
}

bool barrier::arrive_and_wait_as(time_point deadline, const char* call) {
  auto& s = detail::scheduler::require_fiber(call);
  lock_.lock();
  if (++arrived_ == parties_) {
    arrived_ = 0;
    waiters_.drain_claimed([](detail::waiter* w) { detail::wake_served(w); });
    lock_.unlock();
    return true;
  }
  detail::waiter w;
  // A waiter that leaves takes its arrival back, under the same lock that counts
  // arrivals, so the round cannot fill with it counted but gone.
  const auto outcome = detail::block_on(s, lock_, waiters_, w, call, deadline, true, [this] { --arrived_; });
  return detail::served_or_throw(outcome, w, call);
}

}  // namespace weft
