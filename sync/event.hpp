// event.hpp: a flag fibers can wait for (asyncio.Event).
//
// set() sets the flag and wakes every waiting fiber; while it is set, wait()
// returns at once; clear() resets it. A wait_for/wait_until returns false if the
// deadline passes first; a cancelled waiter throws cancelled_error. Waiters are
// woken in FIFO order. set() and clear() work from any thread; wait from fibers.
// Destroying an event wakes its waiters with weft::error(errc::destroyed_while_waiting).
#pragma once

#include <weft/runtime/clock.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/wait_queue.hpp>

namespace weft {

class event {
 public:
  event() = default;
  event(const event&) = delete;
  event& operator=(const event&) = delete;
  // ~event wakes any waiter with errc::destroyed_while_waiting, and returns once
  // none can touch the event any more (see sync/detail/wait_queue.hpp).
  ~event() { detail::abandon_waiters(lock_, "weft::event", waiters_); }

  // set sets the flag and wakes every waiter.
  void set() noexcept;
  // clear resets the flag; later waits wait again.
  void clear() noexcept;
  bool is_set() const noexcept;

  // wait returns once the flag is set.
  void wait() { wait_as(no_deadline, "weft::event::wait"); }
  // wait_until: true once the flag is set, false if `deadline` passes first.
  bool wait_until(time_point deadline) { return wait_as(deadline, "weft::event::wait_until"); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_as(deadline_after(d), "weft::event::wait_for");
  }

 private:
  // wait_as: the one waiting path; `call` is the name errors give (the call the user made).
  bool wait_as(time_point deadline, const char* call);
  mutable detail::biased_lock lock_;  // guards set_ and waiters_
  bool set_ = false;
  detail::wait_queue waiters_;
};

}  // namespace weft
