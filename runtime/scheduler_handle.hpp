// scheduler_handle.hpp: handing work to a running scheduler from any thread.
//
//   weft::run([&] {
//     auto sched = weft::this_scheduler();
//     std::thread t([sched] {                          // a plain thread
//       sched.post([] { /* runs in a new fiber */ });
//       std::future<int> f = sched.submit([] { return 7; });
//       int seven = f.get();                           // blocks the plain thread only
//     });
//     ...
//   });
//
// Handles are cheap to copy and safe to keep after the scheduler has finished: posts
// are then refused (post returns false, submit's future holds
// errc::scheduler_stopped), never lost silently. A handle does not keep run() from
// reporting a deadlock: only another thread can post through it, and run() reports
// none while the process has a thread that is not weft's own (a pool thread counts
// while it runs a to_thread call, not while it idles).
//
// fn may be move-only (a lambda that owns a std::unique_ptr or a promise).
//
// Posts run in the order they were posted, each in a fiber of its own that is made
// when the post starts, a batch of a few dozen at a time (the next batch when the
// scheduler has nothing else to run, or at its next look at its inbox while it
// stays busy): a flood of posts costs a queued function each, not a
// fiber and a stack each. Nothing bounds the queue: a thread that posts faster than
// the functions finish grows it without end (wait on submit's futures, or a
// channel, to keep pace).
//
// A runtime of several schedulers (run({.threads = N})) has one handle for all of
// them, weft::this_runtime(): its post and submit place each new fiber on the
// schedulers in turn, and scheduler(i) is a handle to one of them.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <vector>
#include <type_traits>
#include <utility>

#include <weft/runtime/error.hpp>

namespace weft {

namespace detail {
class remote_inbox;
}

class runtime_handle;
runtime_handle this_runtime();

class scheduler_handle {
 public:
  scheduler_handle() = default;

  // post(fn) runs fn in a new detached fiber of the scheduler; false if the
  // scheduler has finished (fn is then destroyed without running). Thread-safe,
  // not async-signal-safe (it locks and allocates: not from a signal handler). An
  // empty handle (default-made, never given a scheduler) throws
  // errc::scheduler_stopped. An exception escaping fn goes to the unhandled
  // exception handler.
  bool post(std::function<void()> fn) const;
  template <class F>
    requires(std::is_invocable_v<std::decay_t<F>&> && !std::is_copy_constructible_v<std::decay_t<F>>)
  bool post(F&& fn) const {
    return post(copyable(std::forward<F>(fn)));
  }

  // submit(fn) runs fn in a new fiber of the scheduler and returns a future for its
  // result or exception (cancelled_error if the scheduler cancels it at shutdown,
  // errc::scheduler_stopped if it had already finished). Thread-safe. The future is
  // a std::future, for plain threads: its get() blocks the whole thread, so a fiber
  // of the same runtime that calls it stops its scheduler (for the scheduler that
  // would run fn, for good). From a fiber, use weft::spawn({.on = i}, fn).join().
  template <class F>
  auto submit(F&& fn) const -> std::future<std::invoke_result_t<std::decay_t<F>>> {
    return submit_as("weft::scheduler_handle::submit", std::forward<F>(fn));
  }

  explicit operator bool() const noexcept { return inbox_ != nullptr; }

 private:
  friend class runtime_handle;
  friend scheduler_handle this_scheduler();
  friend runtime_handle this_runtime();
  explicit scheduler_handle(std::shared_ptr<detail::remote_inbox> inbox) : inbox_(std::move(inbox)) {}

  // copyable: fn as a copyable callable for std::function (a move-only one is kept
  // in a shared slot that the copies share; only the posted one ever runs).
  template <class F>
  static auto copyable(F&& fn) {
    using stored = std::decay_t<F>;
    if constexpr (std::is_copy_constructible_v<stored>) {
      return stored(std::forward<F>(fn));
    } else {
      return [slot = std::make_shared<stored>(std::forward<F>(fn))]() mutable { return (*slot)(); };
    }
  }

  // submit_as is submit; `call` is the name its errors give.
  template <class F>
  auto submit_as(const char* call, F&& fn) const -> std::future<std::invoke_result_t<std::decay_t<F>>> {
    using result = std::invoke_result_t<std::decay_t<F>>;
    if (!inbox_) throw error(errc::scheduler_stopped, call, "the handle is empty");
    auto promise = std::make_shared<std::promise<result>>();
    auto future = promise->get_future();
    const bool accepted = post([promise, fn = copyable(std::forward<F>(fn))]() mutable {
      try {
        if constexpr (std::is_void_v<result>) {
          fn();
          promise->set_value();
        } else {
          promise->set_value(fn());
        }
      } catch (...) {
        promise->set_exception(std::current_exception());
      }
    });
    if (!accepted)
      promise->set_exception(std::make_exception_ptr(error(errc::scheduler_stopped, call)));
    return future;
  }

  std::shared_ptr<detail::remote_inbox> inbox_;
};

// this_scheduler() is a handle to the calling fiber's scheduler.
// Throws errc::not_in_fiber outside a fiber.
scheduler_handle this_scheduler();

// runtime_handle: every scheduler of one runtime, for any thread. Cheap to copy;
// safe to keep after the runtime has finished (posts are then refused, as above).
class runtime_handle {
 public:
  runtime_handle() = default;

  // size() is how many schedulers the runtime has (run_options::threads).
  std::size_t size() const noexcept { return schedulers_.size(); }
  // scheduler(i) is a handle to scheduler i (0 is run()'s own thread); throws
  // errc::invalid_argument for an i the runtime does not have.
  scheduler_handle scheduler(std::size_t i) const;

  // post(fn) and submit(fn) are scheduler_handle's, on the next scheduler in turn.
  bool post(std::function<void()> fn) const { return next("weft::runtime_handle::post").post(std::move(fn)); }
  template <class F>
    requires(std::is_invocable_v<std::decay_t<F>&> && !std::is_copy_constructible_v<std::decay_t<F>>)
  bool post(F&& fn) const {
    return post(scheduler_handle::copyable(std::forward<F>(fn)));
  }
  template <class F>
  auto submit(F&& fn) const {
    return next("weft::runtime_handle::submit").submit_as("weft::runtime_handle::submit", std::forward<F>(fn));
  }

  explicit operator bool() const noexcept { return !schedulers_.empty(); }

 private:
  friend runtime_handle this_runtime();
  const scheduler_handle& next(const char* call) const;
  std::vector<scheduler_handle> schedulers_;
  std::shared_ptr<std::atomic<std::size_t>> turn_;  // shared by the copies of one handle
};

// this_runtime() is a handle to every scheduler of the calling fiber's runtime.
// Throws errc::not_in_fiber outside a fiber.
runtime_handle this_runtime();

}  // namespace weft
