// fiber_record.hpp: the control block of one fiber.
//
// The record lives on the heap, not on the fiber's stack: the stack goes back to the
// pool the moment the fiber finishes, while the record (which holds the result) lives
// until both the fiber and its handle have let go of it (`refs_`). So a handle may
// outlive its fiber and even its scheduler.
//
// Who touches what:
//   - "owner thread" fields are read and written only on the thread of the
//     scheduler that runs the fiber (`owner_`); they need no synchronisation.
//   - `attention_`, `refs_` and `done_` may be read or written from any
//     thread. Parking state is owner-thread only: another thread that wants to wake
//     or cancel a fiber hands the request to the owner's inbox (scheduler::wake),
//     so the hot park/wake path has no lock-prefixed instruction.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <boost/context/fiber.hpp>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/assert.hpp>
#include <weft/runtime/detail/eh_state.hpp>
#include <weft/runtime/detail/record_cache.hpp>
#include <weft/runtime/detail/scope_state.hpp>
#include <weft/runtime/detail/stack_pool.hpp>
#include <weft/runtime/detail/timer_wheel.hpp>

namespace weft::detail {

class scheduler;
struct fiber_record;

// wake_reason tells a parked fiber why it runs again. The first of the three to
// happen wins; the others find the fiber no longer parked and do nothing.
enum class wake_reason : std::uint8_t {
  notified,   // someone called wake() with this park's token
  timed_out,  // the park's deadline passed
  cancelled,  // the fiber was cancelled
};

// park_token names one park of one fiber. A waker keeps the token, not just the
// fiber: a token from an earlier park carries an older generation and its wake() is
// ignored, so a stale wake-up can never end a later, unrelated wait.
struct park_token {
  fiber_record* fiber = nullptr;
  std::uint64_t generation = 0;
  explicit operator bool() const noexcept { return fiber != nullptr; }
};

struct fiber_record {
  fiber_record() = default;
  fiber_record(const fiber_record&) = delete;
  fiber_record& operator=(const fiber_record&) = delete;
  virtual ~fiber_record() = default;

  // Records come from a per-thread cache (record_cache.hpp); the virtual destructor
  // makes sized delete receive the full size of the derived task.
  static void* operator new(std::size_t size) { return allocate_record(size); }
  static void operator delete(void* block, std::size_t size) noexcept { free_record(block, size); }

  // run_body runs the user's function and stores its result or exception.
  // Only boost's forced_unwind may escape it.
  virtual void run_body() = 0;

  // ---- switching (owner thread) -------------------------------------------------
  // The suspended continuation; empty while the fiber runs (boost's fiber is one-shot:
  // resuming consumes it, and whoever switches back hands us the new one).
  boost::context::fiber context_;
  // The scheduler that runs the fiber, fixed once it has started. Atomic because
  // of one case: a fiber spawned with on_any waits unstarted in its scheduler's
  // steal_queue, and a thief that takes it from there rewrites owner_ (under that
  // queue's lock; see work_stealing.cpp). Every other write happens before the
  // fiber is published. The owner thread reads it relaxed.
  std::atomic<scheduler*> owner_{nullptr};
  fiber_record* next_ready_ = nullptr;    // link in the owner's run queue
  // Links in the owner's list of live fibers, walked to cancel everything at
  // shutdown; before a stealable fiber starts, its links in the steal_queue instead.
  fiber_record* prev_alive_ = nullptr;
  fiber_record* next_alive_ = nullptr;
  stack stack_{};                         // empty for the scheduler's own context
  void* asan_fake_stack_ = nullptr;       // ASan's fake stack while suspended
  const void* asan_bottom_ = nullptr;     // stack bounds as ASan should see them
  std::size_t asan_size_ = 0;
  void* tsan_fiber_ = nullptr;
  // The C++ runtime's exception state (caught exceptions, uncaught count) of this
  // fiber while it is suspended and that state is not empty; empty otherwise (while
  // it runs, the state is the thread's). See scheduler::hand_over_eh.
  eh_state eh_;

  // ---- parking --------------------------------------------------------------------
  // owner thread: the generation of the park in progress, 0 when not parked. The
  // first waker to find "parked in generation g" resets it to 0; only it sets
  // wake_reason_ and queues the fiber. Generations start at 1, so a token with
  // generation 0 never names a park (remote cancel requests use that).
  std::uint64_t parked_in_ = 0;
  // owner thread: generation of the last park. It also counts the fiber's yields
  // and its finish: every scheduler::poll_interval-th of these switches hands the
  // loop its look at timers and I/O (scheduler::pick_next). start() staggers it,
  // so fibers started together do not all hand the look over in the same round.
  std::uint64_t park_generation_ = 0;
  // owner thread: what the current (or last) park waits in, a static string naming
  // the user's call ("weft::channel::send"); null for a park that did not say. Set
  // by prepare_park; read only to describe a deadlock (scheduler::describe_parked).
  const char* waits_on_ = nullptr;
  // owner thread: the current park's deadline (knows its fiber so firing can wake it)
  struct deadline_timer : timer_node {
    fiber_record* fiber = nullptr;
  } deadline_;
  // attention_ is what a park must look at before it suspends, in one byte, so
  // that a park with nothing to look at (nearly all) tests one load:
  //   cancel_pending: set by cancel() on any thread, consumed (on the owner thread)
  //     when a blocking call reports it: asyncio's one CancelledError per cancel().
  //     Relaxed: a remote cancel also goes through the owner's inbox, whose mutex
  //     orders it.
  //   in_deadline_scope: owner thread; scope_deadline_ is set.
  //   cancel_after_cleanup: owner thread; a cancellation put back by a scope's
  //     expiry during its cleanup (defer_cancel), pending once the cleanup is over.
  // Read-modify-writes, because another thread may set cancel_pending meanwhile;
  // they happen on a cancellation and on entering or leaving the outermost deadline
  // scope, never on a plain park.
  static constexpr std::uint8_t cancel_pending = 1;
  static constexpr std::uint8_t in_deadline_scope = 2;
  static constexpr std::uint8_t cancel_after_cleanup = 4;
  std::atomic<std::uint8_t> attention_{0};
  wake_reason wake_reason_ = wake_reason::notified;  // owner thread: set by the winning waker
  bool cancel_requested() const noexcept { return attention_.load(std::memory_order_relaxed) & cancel_pending; }
  bool cancel_deferred() const noexcept { return attention_.load(std::memory_order_relaxed) & cancel_after_cleanup; }
  void request_cancel() noexcept { attention_.fetch_or(cancel_pending, std::memory_order_relaxed); }
  // take_cancel consumes a pending cancellation: true if there was one.
  bool take_cancel() noexcept {
    return attention_.fetch_and(static_cast<std::uint8_t>(~cancel_pending), std::memory_order_relaxed) &
           cancel_pending;
  }
  // owner thread: deadline scopes and shields (runtime/scope.hpp). scope_deadline_ is
  // the earliest deadline of the scopes the fiber is inside; a park that would wait
  // past it ends at it, as `cancelled` with scope_expired_ set, which the blocking
  // call turns into timeout_error. While shield_depth_ > 0, cancellation stays pending.
  // Written only through set_scope_deadline, which keeps in_deadline_scope with it.
  time_point scope_deadline_ = no_deadline;
  void set_scope_deadline(time_point t) noexcept {
    const bool was = scope_deadline_ != no_deadline;
    const bool is = t != no_deadline;
    scope_deadline_ = t;
    if (is && !was) attention_.fetch_or(in_deadline_scope, std::memory_order_relaxed);
    if (was && !is) attention_.fetch_and(static_cast<std::uint8_t>(~in_deadline_scope), std::memory_order_relaxed);
  }
  std::uint32_t shield_depth_ = 0;
  // A cancellation waits (stays pending) inside a shield and while the fiber unwinds:
  // a blocking call in a destructor run by a throw cannot throw again without
  // std::terminate, so it runs to its end (or its own deadline), and the first
  // blocking call after the unwinding takes the cancellation. The running fiber's
  // exception state is the thread's; a parked one's is in eh_.
  bool takes_cancel_now() const noexcept { return shield_depth_ == 0 && std::uncaught_exceptions() == 0; }
  bool takes_cancel_while_parked() const noexcept { return shield_depth_ == 0 && eh_.uncaught == 0; }
  bool scope_expired_ = false;
  // owner thread: what a delivered timeout or cancellation leaves while its cleanup
  // runs (the masks, a deferred cancellation: scope_state.hpp), made at the first
  // such delivery inside a deadline scope and kept for the fiber's life. Out of
  // the record so that the fibers that never need it (nearly all) stay small: a
  // spawn initialises and a join frees every byte of the record.
  std::unique_ptr<cleanup_state> cleanup_;
  cleanup_state& cleanup() {
    if (!cleanup_) cleanup_ = std::make_unique<cleanup_state>();
    return *cleanup_;
  }
  // has_masks: some delivered timeout or cancellation may still keep scopes quiet.
  bool has_masks() const noexcept { return cleanup_ != nullptr && cleanup_->masks != nullptr; }
  // defer_cancel: see cleanup_state::deferred_cancel_covers.
  // Called while that cancellation's mask lives, so cleanup_ exists.
  void defer_cancel(std::uint64_t covers, const std::weak_ptr<const void>& cancellation) noexcept {
    WEFT_ASSERT(cleanup_ != nullptr);
    cleanup_state& c = *cleanup_;
    if (!cancel_deferred() || covers > c.deferred_cancel_covers) {
      c.deferred_cancel_covers = covers;
      c.deferred_for = cancellation;
    }
    attention_.fetch_or(cancel_after_cleanup, std::memory_order_relaxed);
  }
  // take_deferred_cancel: consumes the deferred cancellation: true if there was one.
  bool take_deferred_cancel() noexcept {
    if (cleanup_) cleanup_->deferred_for.reset();
    return attention_.fetch_and(static_cast<std::uint8_t>(~cancel_after_cleanup), std::memory_order_relaxed) &
           cancel_after_cleanup;
  }
  // cancel_delivered: the pending cancellation taken has been thrown (by a path that
  // does not read cleanup_state::redelivering_cancel itself).
  void cancel_delivered() noexcept {
    if (cleanup_) [[unlikely]]
      cleanup_->redelivering_cancel = false;
  }
  // settle_deferred_cancel: once the cleanup is over, a deferred cancellation
  // becomes a pending one.
  void settle_deferred_cancel() noexcept;
  // owner thread: the scopes themselves, for the rare look past scope_deadline_
  // (scope_state.hpp): the innermost one, the innermost one a shield hides (the walk
  // stops there), how many were opened so far (their numbers), and the masks that
  // keep cleanup after a delivered timeout or cancellation from being interrupted
  // (in cleanup_, above).
  scope_link* innermost_scope_ = nullptr;
  scope_link* shield_boundary_ = nullptr;
  std::uint64_t scopes_opened_ = 0;

  // ---- completion (refs_ and done_: any thread; the rest: owner thread) -------------
  std::atomic<std::uint32_t> refs_{2};    // the running fiber + its handle
  // Written once by the owner when the function has returned (release), after the
  // result; read anywhere (acquire), so a finished fiber can be joined from any thread.
  std::atomic<bool> done_{false};
  bool detached_ = false;
  bool returns_to_loop_ = false;          // run()'s main: hand control straight back
  park_token joiner_{};                   // the fiber waiting in join/wait, if any
  // Fibers of other schedulers waiting in join/wait (scheduler::wait_remote): made
  // on the first such wait. Each entry holds a reference on its waiter's record.
  std::unique_ptr<std::vector<park_token>> remote_joiners_;
  std::exception_ptr error_;              // what escaped the user's function

  std::uint64_t id_ = 0;
  std::string name_;

  // ---- work stealing (a fiber spawned with on_any in a runtime of several schedulers)
  // stealable_: set before the spawn returns, never changed: the fiber went into a
  // steal_queue. queued_: it is still there, unstarted (guarded by that queue's
  // lock). queued_stack_size_: the stack it asked for, for whoever starts it.
  bool stealable_ = false;
  bool queued_ = false;
  std::size_t queued_stack_size_ = 0;
};

// release_record drops one reference; the last one deletes the record.
inline void release_record(fiber_record* r) noexcept {
  if (r->refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete r;
}

}  // namespace weft::detail
