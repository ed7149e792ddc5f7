// task_group.hpp: structured concurrency (asyncio.TaskGroup, Trio's nursery).
//
//   weft::with_task_group([&](weft::task_group& g) {
//     g.spawn([&] { fetch(a); });
//     g.spawn([&] { fetch(b); });
//   });                                 // returns when both have finished
//
// Fibers spawned into a group cannot outlive it. join() and the end of
// with_task_group wait for every child to finish, as asyncio's `async with
// TaskGroup()` does. The destructor of a group object that was not joined does not:
// it *cancels* the children still running, then waits for them (as std::jthread
// requests a stop), and it cannot throw, so a deadline scope around it does not
// fire and failures go to the unhandled exception handler. Use with_task_group, or
// call join() before the group goes out of scope. When a child fails
// (ends with an exception other than cancelled_error), its siblings are cancelled,
// the group waits for them, and join() rethrows the failure. If more than one child
// failed, join() throws weft::exception_group holding every failure, first failure
// first: none is dropped. A child that ends by cancellation is not a failure.
//
// Cancellation is sticky: once the group is cancelled (a child failed, the body
// threw, the joiner was cancelled or its deadline scope expired, cancel() was
// called), every child spawned into it afterwards (a sibling spawning from its
// cancellation handler, say) starts cancelled: its first blocking call throws
// cancelled_error. So the wait always ends, and a child that fails later is still
// a failure of the group, kept like the first. The group is cancelled until a join
// has waited for every child; then a new round starts (the object form may be
// spawned into and joined again).
//
// Cancelling the fiber that waits in join() (or a deadline scope expiring around
// it) cancels every child, waits for them all, then throws cancelled_error (or
// timeout_error); child failures that happen meanwhile go to the unhandled
// exception handler. A deadline for the whole group is a deadline scope around it:
// `weft::with_timeout(2s, [&] { weft::with_task_group(...); })` cancels the children
// at the deadline, waits for them and throws timeout_error. Groups nest: a child may open its own group. Children may
// spawn more children into the group they run in. A group belongs to the fiber that
// created it and to that scheduler's thread.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/fiber.hpp>

namespace weft {

// exception_group carries several failures of one group, first failure first.
class exception_group : public std::exception {
 public:
  explicit exception_group(std::vector<std::exception_ptr> errors);
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return errors_; }
  [[noreturn]] void rethrow_first() const { std::rethrow_exception(errors_.front()); }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::vector<std::exception_ptr> errors_;
  std::string what_;
};

namespace detail {
// group_call names a call of weft's built on a task group (gather, wait_any, ...),
// so that its errors and deadlock reports name that call, not task_group::join.
struct group_call {
  const char* name;          // a static string
  std::size_t children = 0;  // how many children it spawns, if known: room is made once
};

// report_unless_cancellation: a failure that no caller will see goes to the
// unhandled exception handler, named after the running fiber (a cancellation is not
// a failure, and is dropped).
void report_unless_cancellation(std::exception_ptr e) noexcept;
}  // namespace detail

class task_group {
 public:
  // Throws errc::not_in_fiber outside a fiber.
  task_group();
  explicit task_group(detail::group_call call);
  // Cancels the children still running and waits for them (without throwing).
  // Failures join() never reported go to the unhandled exception handler. With
  // children still running, it must run in a fiber of the group's scheduler: on any
  // other thread it prints what happened and calls std::terminate.
  ~task_group();
  task_group(const task_group&) = delete;
  task_group& operator=(const task_group&) = delete;

  // spawn starts f(args...) in a child fiber (arguments are copied, as by
  // weft::spawn). Its result is discarded; pass results out through captures, or
  // use weft::gather. Throws what weft::spawn throws.
  //
  // The children run on the group's scheduler: options.on may name it (its index,
  // or on_caller); another scheduler, or on_any in a runtime of several, is
  // weft::error(errc::invalid_argument) (to use other schedulers, spawn a fiber
  // there that opens a group of its own, or gather fibers spawned with .on).
  // Called on another thread than the group's: errc::invalid_argument.
  template <class F, class... Args>
  void spawn(spawn_options options, F&& f, Args&&... args) {
    // The common spawn, onto the group's scheduler from its own thread, is one
    // comparison; the rest is checked out of line.
    if (!options.on.is_caller() || detail::scheduler::current() != sched_) check_spawn_here(options.on);
    const std::size_t slot = claim_slot();
    try {
      children_[slot] = weft::spawn(
          std::move(options),
          [this, slot, fn = std::forward<F>(f), ... captured = std::forward<Args>(args)]() mutable {
            try {
              std::invoke(fn, captured...);
            } catch (const boost::context::detail::forced_unwind&) {
              throw;
            } catch (...) {
              child_failed(std::current_exception());
            }
            child_finished(slot);
          });
    } catch (...) {
      free_slots_.push_back(slot);
      throw;
    }
    ++running_;
    if (cancelled_) [[unlikely]]
      children_[slot].cancel();  // sticky: a child of a cancelled group starts cancelled
  }
  template <class F, class... Args>
    requires(!std::is_same_v<std::decay_t<F>, spawn_options>)
  void spawn(F&& f, Args&&... args) {
    spawn(spawn_options{}, std::forward<F>(f), std::forward<Args>(args)...);
  }

  // join waits for every child, then rethrows the failure (exception_group for
  // several). Throws cancelled_error / timeout_error as described above. A group
  // may be joined again after more spawns. From a fiber of the group's scheduler
  // (errc::invalid_argument otherwise: a group belongs to that thread); one joiner at
  // a time (errc::already_waited). A group destroyed by another fiber while this one
  // joins it wakes it with errc::destroyed_while_waiting (its failures went to the
  // unhandled exception handler).
  void join();
  // join_first is join that rethrows only the first failure; the others go to the
  // unhandled exception handler (gather's rule).
  void join_first();
  // fail_with is how a scope body's exception joins the group: the children are
  // cancelled and awaited, then `e` is rethrown (first of the group's failures).
  [[noreturn]] void fail_with(std::exception_ptr e);

  // cancel cancels every running child (each child's current or next blocking call
  // throws cancelled_error), and every child spawned afterwards, until the next join
  // has waited for all of them. Cancelling again does nothing more: a child is
  // cancelled once. The group stays usable. On the group's thread only (to cancel
  // from elsewhere, cancel the fiber that waits in join()); from another thread it
  // throws weft::error(errc::invalid_argument).
  void cancel();
  // cancelled is true from a cancellation (a failure, cancel(), ...) until the next
  // completed join.
  bool cancelled() const noexcept { return cancelled_; }
  std::size_t running() const noexcept { return running_; }
  const std::vector<std::exception_ptr>& failures() const noexcept { return failures_; }

 private:
  // check_spawn_here / check_thread: the group's state is its thread's alone; a
  // spawn elsewhere or a call from another thread is refused, naming `call`.
  void check_spawn_here(const placement& on) const;
  void check_thread(const char* call) const;
  std::size_t claim_slot();
  void cancel_children() noexcept;  // cancel(), on the group's thread
  void child_failed(std::exception_ptr e) noexcept;
  void child_finished(std::size_t slot) noexcept;
  // wait_all parks until no child runs: all_done, or interrupted by a cancellation
  // or an expired scope (cancellable only), or group_destroyed: another fiber
  // destroyed the group meanwhile, and the caller must not touch it again.
  enum class wait_end { all_done, interrupted, group_destroyed };
  wait_end wait_all(bool cancellable) noexcept;
  // wait_all_after_interrupt: wait_all, shielded; false if the group was destroyed.
  bool wait_all_after_interrupt() noexcept;
  // release_joiner (the destructor): a fiber in join, or woken from it and not yet
  // run, is told on its own stack that the group is gone, and woken.
  void release_joiner() noexcept;
  // is_child: `f` is one of the group's children still running.
  bool is_child(const detail::fiber_record* f) const noexcept;
  // wait_or_unwind is join's wait: on cancellation, cancel and await the children,
  // then throw the cancellation.
  void wait_or_unwind();
  void report_unreported() noexcept;
  // end_round: every child has finished; the next spawn starts a fresh round.
  void end_round() noexcept { cancelled_ = false; }

  detail::scheduler* sched_;
  const char* join_call_ = "weft::task_group::join";  // names join's waits and errors
  std::vector<fiber<void>> children_;  // by slot; a finished child's slot is empty
  std::vector<std::size_t> free_slots_;
  std::size_t running_ = 0;
  bool cancelled_ = false;  // sticky until end_round (see the top of this file)
  detail::park_token waiter_{};
  bool* waiter_saw_destroyed_ = nullptr;  // on the joining fiber's stack, while it waits
  std::vector<std::exception_ptr> failures_;
  // failed_by_[i]: the child that threw failures_[i] (id, name), so that a report of
  // a failure no caller sees names that child, not the fiber that joined.
  std::vector<std::pair<fiber_id, std::string>> failed_by_;
  std::size_t reported_ = 0;  // failures_[0, reported_) reached a caller or the handler
};

// with_task_group(body) runs body(group) and then joins the group; returns body's
// result. If body throws, the children are cancelled and awaited, and body's
// exception is rethrown (with the children's failures, as an exception_group, if
// any failed too).
template <class F>
decltype(auto) with_task_group(F&& body) {
  task_group group;
  using result = std::invoke_result_t<F, task_group&>;
  if constexpr (std::is_void_v<result>) {
    try {
      std::forward<F>(body)(group);
    } catch (...) {
      group.fail_with(std::current_exception());
    }
    group.join();
  } else {
    std::optional<result> value;
    try {
      value.emplace(std::forward<F>(body)(group));
    } catch (...) {
      group.fail_with(std::current_exception());
    }
    group.join();
    return std::move(*value);
  }
}

}  // namespace weft
