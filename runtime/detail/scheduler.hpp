// scheduler.hpp: one thread's fibers, their run queue, timers and reactor.
//
// See runtime/README.md for the walkthrough. In short: fibers switch straight to
// the next runnable fiber; the scheduler's own context (the thread's original stack,
// `loop_`) runs only when nothing is runnable, and then sleeps in epoll until the
// earliest timer, an fd event, or a wake-up from another thread.
//
// Everything here runs on the scheduler's thread, except wake(), cancel() and the
// remote inbox, which any thread may use.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/clock.hpp"
#include "runtime/detail/fiber_record.hpp"
#include "runtime/detail/reactor.hpp"
#include "runtime/detail/remote_inbox.hpp"
#include "runtime/detail/run_queue.hpp"
#include "runtime/detail/stack_pool.hpp"
#include "runtime/detail/timer_wheel.hpp"
#include "runtime/stack_options.hpp"

namespace weft::detail {

struct scheduler_options {
  std::size_t stack_size = 0;  // 0: weft::default_stack_size
  guard_pages guards = guard_pages::within_map_budget;
};

class scheduler {
 public:
  explicit scheduler(const scheduler_options& options);  // binds to this thread
  ~scheduler();
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  // current is the scheduler of the calling thread, or nullptr.
  static scheduler* current() noexcept;
  // in_fiber_scheduler is current() if the caller is a fiber; otherwise it throws
  // weft::error(errc::not_in_fiber) naming `what`.
  static scheduler& require_fiber(const char* what);

  fiber_record* running() const noexcept { return running_; }
  bool in_fiber() const noexcept { return running_ != &loop_; }

  // start gives `rec` a stack and queues it to run. rec->refs_ must already count
  // the references the caller hands out (2 with a handle, 1 detached).
  void start(fiber_record* rec, std::size_t stack_size);
  // start_detached runs fn in a new detached fiber (remote posts use it).
  void start_detached(std::function<void()> fn) noexcept;

  // yield lets every other runnable fiber run once, then returns.
  void yield() noexcept;

  // The suspension primitive, in two steps so that a waiter can publish its token
  // (in a wait queue, an fd_state, a join record) between them:
  //   auto token = s.prepare_park();     // from now on wake(token) is valid
  //   queue.push(token);                 // make it findable (may unlock a mutex)
  //   switch (s.park(token, deadline)) { ... }
  // park() returns when the token is woken, the deadline passes (never before it),
  // or the fiber is cancelled, and says which. A pending cancellation returns
  // `cancelled` without suspending. deadline == no_deadline waits forever;
  // time_point::min() means "already due" without reading the clock.
  park_token prepare_park() noexcept;
  wake_reason park(park_token token, time_point deadline) noexcept;
  wake_reason park_until(time_point deadline) noexcept { return park(prepare_park(), deadline); }

  // wake ends the park named by `token` with `why`; false if it already ended (or
  // the token is stale). Callable from any thread.
  static bool wake(park_token token, wake_reason why) noexcept;
  // cancel asks `f` to stop: its current park (or its next, if it is not parked)
  // returns `cancelled`. Callable from any thread; no effect on a finished fiber.
  static void cancel(fiber_record* f) noexcept;

  // wait_done parks the running fiber until `target` finishes or the deadline
  // passes; true if it finished. Throws cancelled_error and misuse errors.
  bool wait_done(fiber_record* target, time_point deadline);

  // run drives the scheduler until `main` finishes, then cancels and finishes every
  // other fiber and runs what other threads posted before it closed.
  void run(fiber_record* main);
  // deadlocked is true if run() found every fiber parked with nothing able to wake
  // them (no timer, fd, other thread) and cancelled them to end the program.
  bool deadlocked() const noexcept { return deadlocked_; }

  std::size_t alive() const noexcept { return alive_; }
  reactor& io() noexcept { return reactor_; }
  timer_wheel& timers() noexcept { return timers_; }
  stack_pool& stacks() noexcept { return stacks_; }
  const std::shared_ptr<remote_inbox>& inbox() const noexcept { return inbox_; }

 private:
  struct loop_record final : fiber_record {
    void run_body() override {}
  };

  static boost::context::fiber fiber_main(fiber_record* rec, boost::context::fiber&& from);
  boost::context::fiber finish(fiber_record* rec) noexcept;
  void switch_to(fiber_record* next) noexcept;
  void after_switch(boost::context::fiber&& from) noexcept;
  fiber_record* pick_next() noexcept;
  void poll_now() noexcept;
  void take_inbox() noexcept;
  template <class Done>
  void loop_until(Done done);
  void idle() noexcept;
  void cancel_all() noexcept;
  void link_alive(fiber_record* rec) noexcept;
  void unlink_alive(fiber_record* rec) noexcept;

  // Declaration order is construction order: the inbox owns the eventfd the
  // reactor registers.
  std::shared_ptr<remote_inbox> inbox_;
  reactor reactor_;
  timer_wheel timers_;
  stack_pool stacks_;
  std::size_t stack_size_;
  run_queue ready_;
  loop_record loop_;                    // the scheduler's own context
  fiber_record* running_ = &loop_;      // whose stack we are on
  fiber_record* switched_from_ = nullptr;  // who switched to running_, for after_switch
  fiber_record* finished_ = nullptr;    // a fiber that just finished, released after the switch
  fiber_record* alive_head_ = nullptr;  // every started, unfinished fiber
  std::size_t alive_ = 0;
  std::uint32_t switches_ = 0;          // paces the non-blocking poll between switches
  bool shutting_down_ = false;
  bool deadlocked_ = false;
  std::vector<fiber_record*> inbox_wakes_;            // reused buffers for take_inbox
  std::vector<std::function<void()>> inbox_posts_;
};

}  // namespace weft::detail
