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
// errc::scheduler_stopped), never lost silently. While a handle exists, run() cannot
// conclude that its fibers are deadlocked, since the handle's owner may still post.
#pragma once

#include <functional>
#include <future>
#include <memory>
#include <type_traits>
#include <utility>

#include <weft/runtime/error.hpp>

namespace weft {

namespace detail {
class remote_inbox;
}

class scheduler_handle {
 public:
  scheduler_handle() = default;

  // post(fn) runs fn in a new detached fiber of the scheduler; false if the
  // scheduler has finished (fn is then destroyed without running). Thread-safe. An
  // exception escaping fn goes to the unhandled exception handler.
  bool post(std::function<void()> fn) const;

  // submit(fn) runs fn in a new fiber of the scheduler and returns a future for its
  // result or exception (cancelled_error if the scheduler cancels it at shutdown,
  // errc::scheduler_stopped if it had already finished). Thread-safe.
  template <class F>
  auto submit(F&& fn) const -> std::future<std::invoke_result_t<std::decay_t<F>>> {
    using result = std::invoke_result_t<std::decay_t<F>>;
    if (!inbox_) throw error(errc::scheduler_stopped, "weft::scheduler_handle::submit", "the handle is empty");
    auto promise = std::make_shared<std::promise<result>>();
    auto future = promise->get_future();
    const bool accepted = post([promise, fn = std::forward<F>(fn)]() mutable {
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
      promise->set_exception(std::make_exception_ptr(error(errc::scheduler_stopped, "weft::scheduler_handle::submit")));
    return future;
  }

  explicit operator bool() const noexcept { return inbox_ != nullptr; }

 private:
  friend scheduler_handle this_scheduler();
  explicit scheduler_handle(std::shared_ptr<detail::remote_inbox> inbox) : inbox_(std::move(inbox)) {}
  std::shared_ptr<detail::remote_inbox> inbox_;
};

// this_scheduler() is a handle to the calling fiber's scheduler.
// Throws errc::not_in_fiber outside a fiber.
scheduler_handle this_scheduler();

}  // namespace weft
