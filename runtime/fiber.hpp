// fiber.hpp: spawning fibers and the handle that joins them.
//
//   weft::fiber<int> f = weft::spawn([] { return 42; });
//   int v = f.join();                         // 42, or rethrows what the fiber threw
//
//   auto g = weft::spawn({.name = "worker", .stack_size = 256 * 1024}, work, arg);
//
// Fibers of one scheduler run one at a time on its thread and are never preempted:
// a fiber runs until it blocks (sleep, join, fd wait, channel, ...) or yields.
//
// Lifetimes: like std::thread, spawn copies (decays) the callable and arguments into
// the fiber; pass std::ref to share, and then make sure the referent outlives the
// fiber (join it before leaving the scope). Capturing a parent's locals by reference
// and detaching is the classic fiber crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/always_inline.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scheduler_group.hpp>
#include <weft/runtime/detail/task.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/placement.hpp>
#include <weft/runtime/unhandled_exception.hpp>

namespace weft {

template <class T>
class fiber;

namespace detail {
// throw_empty_handle throws errc::not_joinable naming `call` (out of line: it keeps
// the handle's inlined calls small).
[[noreturn, gnu::cold]] void throw_empty_handle(const char* call);

// fiber_access builds handles for spawn() and run().
struct fiber_access {
  template <class T>
  static fiber<T> adopt(task_state<T>* state) noexcept {
    return fiber<T>(state);
  }
};
}  // namespace detail

// spawn_options are the per-fiber settings of spawn().
// Designated initializers name the members in this order (C++20 requires it):
// spawn({.name = "worker", .stack_size = 256 << 10, .on = 1}, fn).
struct spawn_options {
  std::string name{};          // shown in reports and by this_fiber::name()
  std::size_t stack_size = 0;  // usable bytes; 0: the scheduler's default
  // The scheduler that runs the fiber: on_caller, on_any or an index. A started
  // fiber never moves between threads, so thread_local variables keep their
  // meaning across its blocking calls (errno is the thread's, set by whatever ran
  // meanwhile: read it right after the call that set it); on_caller and an index also fix
  // where it starts (pinned), while an on_any fiber may be taken, before it
  // starts, by whichever scheduler is idle. A fiber that may run on another
  // scheduler's thread touches the caller's data only through weft's primitives
  // (channels, events, mutexes, join) or its own synchronisation.
  placement on = on_caller;
};

// fiber<T> is the handle of a fiber whose function returns T.
//
// Exactly one of join() or detach() ends a handle's interest in its fiber. A handle
// destroyed while still joinable *detaches* (it does not block and does not kill the
// fiber): the fiber runs on, and if it ends with an exception, that exception goes
// to the unhandled exception handler instead of being lost.
//
// Threads: a handle may be used on any thread. cancel(), detach() and destruction
// work from any thread; wait/join from a fiber of any scheduler (the fiber's own or
// another's), and from anywhere once done() is true (also after run() has
// returned). Several fibers of other schedulers may wait for one fiber at once;
// among the fibers of its own scheduler, one at a time (errc::already_waited).
//
// One handle, several threads: like a std:: object, a handle may be used by several
// threads at once only through its const members (cancel, done, id, name, wait,
// wait_for, wait_until). join(), detach(), assignment and destruction change the
// handle and must not overlap any other call on the same handle, on any thread. In
// particular, a cancel() on another thread must have returned before this thread's
// join(): cancel() works on the fiber's record through the handle's reference, and
// join() empties the handle and drops that reference, which can free the record
// (making the handle's pointer atomic would not change that). To cancel from another
// thread while this one waits, wait() here, and join() once the other thread is done
// with the handle (tests/runtime/cancel_test.cpp, RemoteCancelsRacingWithParks...).
template <class T>
class fiber {
 public:
  fiber() noexcept = default;
  fiber(fiber&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  fiber& operator=(fiber&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  ~fiber() { reset(); }

  // joinable() is true until join() or detach().
  bool joinable() const noexcept { return state_ != nullptr; }
  // done() is true once the fiber's function has returned or thrown.
  bool done() const { return checked("weft::fiber::done")->done_.load(std::memory_order_acquire); }
  fiber_id id() const { return checked("weft::fiber::id")->id_; }
  std::string_view name() const { return checked("weft::fiber::name")->name_; }

  // cancel() asks the fiber to stop: the blocking call it is parked in (or the next
  // one it makes) throws weft::cancelled_error. Once per cancel(); no effect on a
  // fiber that has finished. A fiber cancelled before it started still starts, and
  // runs up to its first blocking call (or check_cancelled()), which throws: unlike
  // an asyncio task cancelled before its first step, its body always runs, so the
  // RAII bookkeeping it sets up first (a guard that settles a count, releases a
  // slot) always runs too. A body that must not begin its work checks
  // this_fiber::check_cancelled() first.
  void cancel() const {
    auto* s = checked("weft::fiber::cancel");
    if (!s->done_.load(std::memory_order_acquire)) detail::scheduler::cancel(s);
  }

  // wait() suspends the calling fiber until this fiber finishes.
  // wait_until(t)/wait_for(d) also return at the deadline: true if it finished.
  // Throws cancelled_error if the *caller* is cancelled, errc::not_in_fiber outside a
  // fiber (unless already done), errc::would_deadlock on oneself, errc::already_waited
  // if another fiber is waiting, errc::not_joinable on an empty handle.
  void wait() const { wait_impl(no_deadline, "weft::fiber::wait"); }
  bool wait_until(time_point deadline) const { return wait_impl(deadline, "weft::fiber::wait_until"); }
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> d) const {
    return wait_impl(deadline_after(d), "weft::fiber::wait_for");
  }

  // join() waits for the fiber, then returns its result or rethrows its exception.
  // The handle is empty afterwards; a second join throws errc::not_joinable.
  // Always inlined: in a frame of its own, the record's release is a cleanup between
  // the rethrow and the caller's catch, where the unwinder stops and starts over
  // (bench/NOTES "weft/cancel_blocked and frames on the unwinding path").
  WEFT_ALWAYS_INLINE T join() {
    wait_impl(no_deadline, "weft::fiber::join");
    auto* s = std::exchange(state_, nullptr);
    struct release {
      detail::fiber_record* r;
      ~release() { detail::release_record(r); }
    } guard{s};
    if (s->error_) std::rethrow_exception(s->error_);
    return s->take_result();
  }

  // detach() lets the fiber run on its own; its exception, if any, is reported.
  void detach() {
    checked("weft::fiber::detach");
    reset();
  }

 private:
  friend struct detail::fiber_access;

  explicit fiber(detail::task_state<T>* state) noexcept : state_(state) {}

  // checked is the fiber's state, or errc::not_joinable naming `call` (a static
  // string, the user's call) for an empty handle.
  detail::task_state<T>* checked(const char* call) const {
    if (!state_) [[unlikely]]
      detail::throw_empty_handle(call);
    return state_;
  }
  bool wait_impl(time_point deadline, const char* call) const {
    auto* s = checked(call);
    if (s->done_.load(std::memory_order_acquire)) return true;
    return detail::scheduler::require_fiber(call).wait_done(s, deadline, call);
  }
  void reset() noexcept {
    if (auto* s = std::exchange(state_, nullptr)) detail::scheduler::release_handle(s);
  }

  detail::task_state<T>* state_ = nullptr;
};

// spawn(options, f, args...) starts f(args...) in a new fiber and returns its
// handle. The fiber runs on the calling fiber's scheduler unless options.on names
// another; there it runs once the caller blocks or yields, elsewhere as soon as
// that scheduler's thread gets to it. With on_any it runs where it is first taken:
// here once the caller blocks or yields and nothing else is runnable, or on an idle
// scheduler that steals it before that.
// Throws errc::not_in_fiber outside a fiber, errc::invalid_argument for an `on`
// the runtime does not have, errc::scheduler_stopped if that scheduler is shutting
// down, std::system_error (ENOMEM) if no stack can be had (when it starts later or
// elsewhere: the fiber ends with that error, and join() rethrows it).
template <class F, class... Args>
auto spawn(spawn_options options, F&& f, Args&&... args) {
  auto& sched = detail::scheduler::require_fiber("weft::spawn");
  detail::scheduler& target = options.on.is_caller() ? sched : detail::scheduler_for(sched, options.on);
  auto* t = detail::make_task(std::forward<F>(f), std::forward<Args>(args)...);
  using result = typename std::remove_pointer_t<decltype(t)>::result_type;
  try {
    t->name_ = std::move(options.name);
    if (options.on.is_any())
      sched.start_anywhere(t, options.stack_size);
    else if (&target == &sched)
      sched.start(t, options.stack_size);
    else
      sched.start_on(target, t, options.stack_size);
  } catch (...) {
    delete t;
    throw;
  }
  return detail::fiber_access::adopt<result>(t);
}

// spawn(f, args...) is spawn with default options.
template <class F, class... Args>
  requires(!std::is_same_v<std::decay_t<F>, spawn_options>)
auto spawn(F&& f, Args&&... args) {
  return spawn(spawn_options{}, std::forward<F>(f), std::forward<Args>(args)...);
}

}  // namespace weft
