// wait_group.hpp: wait for a set of tasks to finish (Go's sync.WaitGroup).
//
//   weft::wait_group wg;
//   for (auto& job : jobs) { wg.add(); weft::spawn([&] { run(job); wg.done(); }).detach(); }
//   wg.wait();
//
// add(n) raises the counter, done() lowers it by one; when it reaches zero every
// waiting fiber wakes (FIFO). wait() returns at once while the counter is zero.
// A counter that would go negative (or overflow) is errc::invalid_argument (and is
// left as it was). wait_for/wait_until return false at the deadline; a cancelled waiter throws
// cancelled_error. add and done work from any thread; wait from fibers.
#pragma once

#include <cstddef>

#include <weft/runtime/clock.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/wait_queue.hpp>

namespace weft {

class wait_group {
 public:
  wait_group() = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;
  // ~wait_group wakes any waiter with errc::destroyed_while_waiting, and returns once
  // none can touch the wait_group any more (see sync/detail/wait_queue.hpp).
  ~wait_group() { detail::abandon_waiters(lock_, "weft::wait_group", waiters_); }

  // add adds n (which may be negative) to the counter; zero wakes the waiters.
  // A counter that would go negative or past PTRDIFF_MAX is errc::invalid_argument.
  void add(std::ptrdiff_t n = 1) { add(n, "weft::wait_group::add"); }
  // done is add(-1).
  void done() { add(-1, "weft::wait_group::done"); }
  std::ptrdiff_t count() const noexcept;

  // wait returns once the counter is zero.
  void wait() { wait_as(no_deadline, "weft::wait_group::wait"); }
  bool wait_until(time_point deadline) { return wait_as(deadline, "weft::wait_group::wait_until"); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_as(deadline_after(d), "weft::wait_group::wait_for");
  }

 private:
  // wait_as: the one waiting path; `call` is the name errors give (the call the user made).
  bool wait_as(time_point deadline, const char* call);
  void add(std::ptrdiff_t n, const char* call);

  mutable detail::biased_lock lock_;  // guards count_ and waiters_
  std::ptrdiff_t count_ = 0;
  detail::wait_queue waiters_;
};

}  // namespace weft
