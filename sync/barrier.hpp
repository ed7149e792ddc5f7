// barrier.hpp: a rendezvous of a fixed number of fibers, reusable (Python's
// threading.Barrier, C++'s std::barrier).
//
// arrive_and_wait() waits until `parties` fibers have arrived, then all of them go
// on and the barrier starts over for the next round (the last arriver does not
// wait). Waiters are released together, in FIFO order.
// A waiter whose deadline passes (false) or who is cancelled
// (cancelled_error) withdraws its arrival: the round then needs one more fiber, and
// nobody is released early.
#pragma once

#include <concepts>
#include <cstddef>

#include <weft/runtime/clock.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/wait_queue.hpp>

namespace weft {

class barrier {
 public:
  // barrier(parties) needs 1 <= parties <= PTRDIFF_MAX (errc::invalid_argument:
  // zero, negative, or a negative number converted to size_t).
  explicit barrier(std::size_t parties);
  template <std::signed_integral I>
  explicit barrier(I parties) : barrier(checked(static_cast<std::ptrdiff_t>(parties))) {}
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;
  // ~barrier wakes any waiter with errc::destroyed_while_waiting, and returns once
  // none can touch the barrier any more (see sync/detail/wait_queue.hpp).
  ~barrier() { detail::abandon_waiters(lock_, "weft::barrier", waiters_); }

  std::size_t parties() const noexcept { return parties_; }

  // arrive_and_wait arrives and waits for the round to fill.
  void arrive_and_wait() { arrive_and_wait_as(no_deadline, "weft::barrier::arrive_and_wait"); }
  // arrive_and_wait_until: true when the round filled, false (arrival withdrawn) if
  // `deadline` passed first.
  bool arrive_and_wait_until(time_point deadline) {
    return arrive_and_wait_as(deadline, "weft::barrier::arrive_and_wait_until");
  }
  template <class Rep, class Period>
  bool arrive_and_wait_for(std::chrono::duration<Rep, Period> d) {
    return arrive_and_wait_as(deadline_after(d), "weft::barrier::arrive_and_wait_for");
  }

 private:
  // arrive_and_wait_as: the one waiting path; `call` is the name errors give.
  bool arrive_and_wait_as(time_point deadline, const char* call);
  static std::size_t checked(std::ptrdiff_t parties);

  detail::biased_lock lock_;  // guards arrived_ and waiters_
  const std::size_t parties_;
  std::size_t arrived_ = 0;
  detail::wait_queue waiters_;
};

}  // namespace weft
