// condition_variable.hpp: wait for a condition under a weft::mutex.
//
//   std::unique_lock lk(m);
//   cv.wait(lk, [&] { return !queue.empty(); });
//
// wait() releases the mutex and suspends the fiber until notify_one() or
// notify_all(), then takes the mutex again before returning, always: also when the
// deadline passes (wait_until returns std::cv_status::timeout, or the predicate's
// value) and when the fiber is cancelled (cancelled_error is thrown with the mutex
// held, so RAII guards unlock it as usual). Waiters are woken in FIFO order. There
// are no spurious wake-ups, but another fiber may change the state between notify
// and the waiter's return: prefer the predicate forms.
//
// A notify that reaches a waiter at the instant it was cancelled is not lost: that
// waiter returns normally, and its cancellation stays pending.
#pragma once

#include <condition_variable>
#include <mutex>

#include <weft/runtime/clock.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/wait_queue.hpp>
#include <weft/sync/mutex.hpp>

namespace weft {

class condition_variable {
 public:
  condition_variable() = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;
  // ~condition_variable wakes any waiter with errc::destroyed_while_waiting (after
  // re-taking its mutex, as always), and returns once none can touch the condition
  // variable any more (see sync/detail/wait_queue.hpp).
  ~condition_variable() { detail::abandon_waiters(lock_, "weft::condition_variable", waiters_); }

  // notify_one wakes the longest-waiting fiber, if any.
  void notify_one() noexcept;
  // notify_all wakes every waiting fiber.
  void notify_all() noexcept;

  // wait releases lk's mutex, waits for a notify, and re-locks it.
  void wait(std::unique_lock<mutex>& lk) { wait_as(lk, no_deadline, "weft::condition_variable::wait"); }
  template <class Predicate>
  void wait(std::unique_lock<mutex>& lk, Predicate pred) {
    while (!pred()) wait(lk);
  }

  // wait_until is wait with a deadline: std::cv_status::timeout once it passed.
  std::cv_status wait_until(std::unique_lock<mutex>& lk, time_point deadline) {
    return wait_as(lk, deadline, "weft::condition_variable::wait_until");
  }
  template <class Rep, class Period>
  std::cv_status wait_for(std::unique_lock<mutex>& lk, std::chrono::duration<Rep, Period> d) {
    return wait_as(lk, deadline_after(d), "weft::condition_variable::wait_for");
  }
  // The predicate forms return pred() as it is at the end (false: timed out).
  template <class Predicate>
  bool wait_until(std::unique_lock<mutex>& lk, time_point deadline, Predicate pred) {
    return wait_as(lk, deadline, std::move(pred), "weft::condition_variable::wait_until");
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::unique_lock<mutex>& lk, std::chrono::duration<Rep, Period> d, Predicate pred) {
    return wait_as(lk, deadline_after(d), std::move(pred), "weft::condition_variable::wait_for");
  }

 private:
  // wait_as: the one waiting path; `call` is the name errors give (the call the user made).
  std::cv_status wait_as(std::unique_lock<mutex>& lk, time_point deadline, const char* call);
  template <class Predicate>
  bool wait_as(std::unique_lock<mutex>& lk, time_point deadline, Predicate pred, const char* call) {
    while (!pred())
      if (wait_as(lk, deadline, call) == std::cv_status::timeout) return pred();
    return true;
  }

  detail::biased_lock lock_;  // guards waiters_
  detail::wait_queue waiters_;
};

}  // namespace weft
