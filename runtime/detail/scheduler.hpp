// scheduler.hpp: one thread's fibers, their run queue, timers and reactor.
//
// See runtime/README.md for the walkthrough. In short: fibers switch straight to
// the next runnable fiber; the scheduler's own context (the thread's original stack,
// `loop_`) runs only when nothing is runnable, and then sleeps in epoll until the
// earliest timer, an fd event, or a wake-up from another thread.
//
// Everything here runs on the scheduler's thread, except wake(), cancel(),
// start_on(), release_handle(), waits for a fiber of another scheduler and the
// remote inbox, which any thread may use: from another thread, each becomes a
// request in the owner's inbox (remote_request), which the owner applies.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/always_inline.hpp>
#include <weft/runtime/detail/assert.hpp>
#include <weft/runtime/detail/fiber_record.hpp>
#include <weft/runtime/detail/quiet_thread.hpp>
#include <weft/runtime/detail/reactor.hpp>
#include <weft/runtime/detail/remote_inbox.hpp>
#include <weft/runtime/detail/run_queue.hpp>
#include <weft/runtime/detail/sanitizer.hpp>
#include <weft/runtime/detail/stack_overflow.hpp>
#include <weft/runtime/detail/stack_pool.hpp>
#include <weft/runtime/detail/steal_queue.hpp>
#include <weft/runtime/detail/timer_wheel.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/stack_options.hpp>

namespace weft::detail {

class scheduler;
class scheduler_group;
// The calling thread's scheduler. initial-exec: one instruction to reach, even from
// the position-independent code of a static library; it is read on every blocking
// call. constinit: no dynamic initialisation, so no TLS wrapper function either.
extern constinit thread_local scheduler* this_thread_scheduler [[gnu::tls_model("initial-exec")]];
// The same scheduler while one of its fibers runs, null on its own context (the
// loop) and outside run(): "am I in a fiber" is then one load, on every blocking
// call. The loop sets it when it hands the thread to a fiber and clears it when
// control comes back (loop_until, finish).
extern constinit thread_local scheduler* this_fiber_scheduler [[gnu::tls_model("initial-exec")]];

struct scheduler_options {
  std::size_t stack_size = 0;  // 0: weft::default_stack_size
  guard_pages guards = guard_pages::within_map_budget;
  std::chrono::milliseconds shutdown_report_after = std::chrono::seconds(5);  // run_options'
  // The program's sanitizers: evaluated where the options are made (weft::run, in
  // the program's code), checked against the library's own by the constructor.
  unsigned program_sanitizers = WEFT_BUILD_SANITIZERS;
};

class scheduler {
 public:
  explicit scheduler(const scheduler_options& options);  // binds to this thread
  ~scheduler();
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;

  // current is the scheduler of the calling thread, or nullptr.
  static scheduler* current() noexcept { return this_thread_scheduler; }
  // require_fiber is current() if the caller is a fiber; otherwise it throws
  // weft::error(errc::not_in_fiber) naming `what`, the user's call
  // ("weft::this_fiber::sleep_for").
  static scheduler& require_fiber(const char* what) {
    scheduler* s = this_fiber_scheduler;
    if (s == nullptr) [[unlikely]]
      throw_not_in_fiber(what);
    return *s;
  }
  // throw_not_in_fiber throws that error; its text says where the caller is (a
  // plain thread, a to_thread function, a function posted to a scheduler) and what
  // to do instead.
  [[noreturn, gnu::cold, gnu::noinline]] static void throw_not_in_fiber(const char* what);

  fiber_record* running() const noexcept { return running_; }

  // start gives `rec` a stack and queues it to run. rec->refs_ must already count
  // the references the caller hands out (2 with a handle, 1 detached).
  void start(fiber_record* rec, std::size_t stack_size);
  // start_detached runs fn in a new detached fiber (remote posts use it).
  void start_detached(std::function<void()> fn) noexcept;
  // start_on starts `rec` on `target`, another scheduler of the calling thread's
  // runtime, from any thread: it gives rec its id and owner here (so its handle can
  // use them at once) and hands it to target's inbox. Throws
  // errc::scheduler_stopped if target has begun to shut down; rec is then untouched
  // and still the caller's.
  void start_on(scheduler& target, fiber_record* rec, std::size_t stack_size);
  // start_anywhere queues `rec` here to start when this scheduler gets to it, unless
  // an idle member of the runtime takes it first (spawn_options::on = on_any;
  // steal_queue.hpp, work_stealing.cpp). Alone, or shutting down, it is start().
  void start_anywhere(fiber_record* rec, std::size_t stack_size);
  // release_handle drops a fiber handle's interest in `rec` (fiber::detach and the
  // handle's destructor): the fiber is detached, its exception (if it ends with one)
  // goes to the unhandled exception handler, and the handle's reference is dropped.
  // From a thread other than rec's scheduler's, it goes through that scheduler's
  // inbox, which owns the record's detached_ flag.
  static void release_handle(fiber_record* rec) noexcept;

  // yield lets every other runnable fiber run once, then returns.
  WEFT_ALWAYS_INLINE void yield() noexcept {
    fiber_record* self = running_;
    fiber_record* next;
    if (!look_due_at(++self->park_generation_)) [[likely]] {
      next = ready_.rotate(self);
    } else {
      ready_.push(self);
      next = hand_loop_the_look();
    }
    if (next != self) switch_to(self, next);
  }

  // The suspension primitive, in two steps so that a waiter can publish its token
  // (in a wait queue, an fd_state, a join record) between them:
  //   auto token = s.prepare_park();     // from now on wake(token) is valid
  //   queue.push(token);                 // make it findable
  //   switch (s.park(token, deadline)) { ... }
  // park() returns when the token is woken, the deadline passes (never before it),
  // or the fiber is cancelled, and says which. A pending cancellation returns
  // `cancelled` without suspending. deadline == no_deadline waits forever;
  // time_point::min() means "already due" without reading the clock.
  //
  // All of it is inline and free of atomics read-modify-writes: the park state
  // belongs to the owner thread, and other threads reach it only through the inbox
  // (wake_remote). Inline also keeps the switch's return-address mismatch out of
  // the caller (see switch_to).
  // `waits_on` names the user's call the fiber blocks in ("weft::event::wait"), a
  // string with static storage: a deadlock report lists it (one store per park).
  WEFT_ALWAYS_INLINE park_token prepare_park(const char* waits_on = nullptr) noexcept {
    fiber_record* self = running_;
    WEFT_ASSERT(self->parked_in_ == 0);  // one park at a time
    const std::uint64_t generation = ++self->park_generation_;
    self->parked_in_ = generation;
    self->waits_on_ = waits_on;
    return park_token{self, generation};
  }

  // Inside a deadline scope whose deadline comes first (or has passed, whatever the
  // call's own deadline), the park ends there, as
  // `cancelled` with the fiber's scope_expired_ set (throw_cancelled turns that into
  // timeout_error). Inside a shield, a cancellation does not end the park.
  // Scopes and cancellation are looked at only when the fiber's attention byte says
  // there is something to see (park_attentive), so a plain park tests one load.
  WEFT_ALWAYS_INLINE wake_reason park(park_token token, time_point deadline) noexcept {
    if (token.fiber->attention_.load(std::memory_order_relaxed) != 0) [[unlikely]]
      return park_attentive(token, deadline);
    return park_core(token, deadline);
  }
  wake_reason park_until(time_point deadline, const char* waits_on = nullptr) noexcept {
    return park(prepare_park(waits_on), deadline);
  }

  // park_plain is park without deadline scopes: a pending cancellation (outside a
  // shield) ends it before it suspends.
  WEFT_ALWAYS_INLINE wake_reason park_plain(park_token token, time_point deadline) noexcept {
    fiber_record* self = token.fiber;
    if (self->cancel_requested() && self->takes_cancel_now()) [[unlikely]] {
      if (end_park(self, token.generation, wake_reason::cancelled)) {
        self->take_cancel();
        return wake_reason::cancelled;
      }
      // Already woken (we are queued to run): suspend normally, the wake stands.
    }
    return park_core(token, deadline);
  }

  // park_core suspends until a wake, the deadline or a cancellation's wake.
  WEFT_ALWAYS_INLINE wake_reason park_core(park_token token, time_point deadline) noexcept {
    fiber_record* self = token.fiber;
    if (deadline != no_deadline) [[unlikely]]
      arm_deadline(self, deadline);
    // A wake from another thread, applied by the loop's look at the inbox, may
    // already have queued us; then we are our own successor and simply go on.
    fiber_record* next = pick_next(token.generation);
    if (next != self) switch_to(self, next);
    // Only this park arms the deadline timer; a park without one (a constant in
    // most callers) has nothing to cancel and skips the load.
    if (deadline != no_deadline && self->deadline_.pending()) [[unlikely]]
      timers_.cancel(&self->deadline_);
    const wake_reason why = self->wake_reason_;
    if (why != wake_reason::notified) [[unlikely]] {
      if (why == wake_reason::cancelled) self->take_cancel();
    }
    return why;
  }

  // keep_cancel_pending: a blocking call that completed although its park reported
  // `cancelled` hands the cancellation on to the next blocking call. A scope's
  // expiry needs no hand-on: the scope's deadline has passed, so the next park
  // reports it again.
  static void keep_cancel_pending(fiber_record* self) noexcept {
    if (self->scope_expired_)
      self->scope_expired_ = false;
    else
      self->request_cancel();
  }

  // wake ends the park named by `token` with `why`. On the owner's thread it returns
  // whether it did (false: the park already ended, or the token is stale). From any
  // other thread it hands the request to the owner, which applies it if the park is
  // still the same, and returns true: the caller cannot know yet, so code that may
  // be woken from elsewhere must not depend on the result (wait queues record who
  // was served under their own lock instead).
  WEFT_ALWAYS_INLINE static bool wake(park_token token, wake_reason why) noexcept {
    return wake(token, why, this_thread_scheduler);
  }
  // The same, for a caller that has this thread's scheduler (`here`, null on a
  // plain thread) at hand. The queue is reached through `here`, not through
  // f->owner_: equal when it matters, but this one does not wait for a load from f.
  WEFT_ALWAYS_INLINE static bool wake(park_token token, wake_reason why, scheduler* here) noexcept {
    if (token.fiber->owner_.load(std::memory_order_relaxed) != here) [[unlikely]]
      return wake_remote(token, why);
    return wake_here(token, why, here);
  }
  // wake_here is wake() for a caller that has just seen the fiber's owner is `here`
  // (wait_queue's wake_served): owner_ is atomic, so the compiler would load and
  // compare it a second time.
  WEFT_ALWAYS_INLINE static bool wake_here(park_token token, wake_reason why, scheduler* here) noexcept {
    WEFT_ASSERT(token.fiber->owner_.load(std::memory_order_relaxed) == here);
    if (!end_park(token.fiber, token.generation, why)) return false;
    here->ready_.push(token.fiber);
    return true;
  }
  // cancel asks `f` to stop: its current park (or its next, if it is not parked)
  // returns `cancelled`. Callable from any thread; no effect on a finished fiber.
  static void cancel(fiber_record* f) noexcept;
  // wait_done parks the running fiber until `target` finishes or the deadline
  // passes; true if it finished. Throws cancelled_error and misuse errors naming
  // `call`, the user's call (a static string: a deadlock report shows it too).
  bool wait_done(fiber_record* target, time_point deadline, const char* call);

  // run drives the scheduler until `main` finishes, then cancels and finishes every
  // other fiber and runs what other threads posted before it closed.
  void run(fiber_record* main);
  // serve drives a scheduler with no main fiber (a worker of a scheduler_group)
  // until its inbox's request_stop(), then shuts down as run() does.
  void serve();

  // The runtime this scheduler belongs to, or null when run() started it alone, and
  // its index there (0 for run()'s own).
  scheduler_group* group() const noexcept { return group_; }
  std::size_t index() const noexcept { return index_; }
  // incarnation tells this scheduler from every other of the process, also from a
  // later one at the same address (run() keeps its scheduler on the caller's
  // stack): state kept beyond a run (a socket's registration, a pooled
  // connection) is tied to it, not to the address.
  std::uint64_t incarnation() const noexcept { return incarnation_; }
  // is_live_incarnation: a scheduler of that incarnation still exists (any thread).
  static bool is_live_incarnation(std::uint64_t incarnation) noexcept;
  void join_group(scheduler_group* group, std::size_t index) noexcept;
  // deadlocked is true if run() found every fiber parked with nothing able to wake
  // them (no timer, no watched fd, no other thread in the process; see idle()) and
  // cancelled them to end the program. deadlock_report() then lists the fibers that
  // were parked and what each waited in, e.g.
  //   fiber 1 (main): weft::fiber::join of fiber 2 "worker"; fiber 2 "worker": weft::event::wait
  bool deadlocked() const noexcept { return deadlocked_; }
  const std::string& deadlock_report() const noexcept { return deadlock_report_; }

  std::size_t alive() const noexcept { return alive_; }

  // teardown_census is what a scheduler still held when it was destroyed: all zero
  // unless weft leaked. Each thread keeps the census of the last scheduler it
  // destroyed; weft's test fixture (tests/weft_test.hpp) checks it after every run.
  struct teardown_census {
    std::size_t fibers_alive = 0;    // started fibers that never finished
    std::size_t timers_pending = 0;  // timer nodes still linked in the wheel
    std::size_t fds_registered = 0;  // reactor registrations never ended
  };
  static teardown_census last_teardown_census() noexcept;
  // carry_into_census adds what the workers of a runtime held (scheduler_group) to
  // the census of the next scheduler this thread destroys: run()'s own.
  static void carry_into_census(const teardown_census& workers) noexcept;

  reactor& io() noexcept { return reactor_; }
  timer_wheel& timers() noexcept { return timers_; }
  stack_pool& stacks() noexcept { return stacks_; }
  const std::shared_ptr<remote_inbox>& inbox() const noexcept { return inbox_; }

 private:
  struct loop_record final : fiber_record {
    void run_body() override {}
  };

  WEFT_TSAN_SWITCH_POINT static boost::context::fiber fiber_main(fiber_record* rec,
                                                                 boost::context::fiber&& from);
  WEFT_TSAN_INSTRUMENTED boost::context::fiber finish(fiber_record* rec) noexcept;

  // The switch path is inline on purpose. boost's jump_fcontext leaves by `jmp`, so
  // the `call` that entered it is never matched by a `ret`: the first `ret` the
  // resumed fiber executes is mispredicted (bench/NOTES.md). Inlined, a fiber that
  // yields in a loop resumes straight into its own code and returns nowhere, like the
  // raw Boost.Context floor. Rare work (timers due, the periodic poll, releasing a
  // finished fiber) stays out of line.

  // switch_to: `prev` (the running fiber, which the caller has at hand) suspends and
  // `next` runs. We come back here when some fiber switches to us again; that fiber
  // is then last_suspended_ and the continuation boost hands back is its suspended
  // context.
  //
  // Each fiber names itself in running_ when it arrives, from its own registers,
  // rather than being named by the fiber that switches to it: `next` usually comes
  // from a wake just before (a wait queue, then the run queue), and a running_
  // written from it would hand that whole chain of loads on to the next fiber's
  // first look at running_.
  WEFT_ALWAYS_INLINE void switch_to(fiber_record* prev, fiber_record* next) noexcept {
    WEFT_ASSERT(prev == running_ && next != prev && next != nullptr);
    hand_over_eh(prev, next);
    boost::context::fiber& target = context_of(next);
    last_suspended_ = prev;
    asan_start_switch(&prev->asan_fake_stack_, next->asan_bottom_, next->asan_size_);
    boost::context::fiber from = resume(std::move(target), next->tsan_fiber_);
    running_ = prev;
    after_switch(std::move(from));
  }

  // resume jumps to `target` and returns the context of whoever jumps back, as
  // boost's resume() does. Under TSan it also makes `tsan_target` TSan's current
  // fiber, inside one switch point (WEFT_TSAN_SWITCH_POINT) that every switch goes
  // through: boost's resume() is inlined at some call sites and not at others, and
  // TSan's shadow stacks stay balanced only if the frames entered on the way out of
  // one fiber are the same ones every fiber leaves on the way back in.
#if WEFT_TSAN
  WEFT_TSAN_SWITCH_POINT static boost::context::fiber resume(boost::context::fiber&& target,
                                                             void* tsan_target) noexcept;
#else
  WEFT_ALWAYS_INLINE static boost::context::fiber resume(boost::context::fiber&& target,
                                                             void*) noexcept {
    return std::move(target).resume();
  }
#endif

  // The context of the fiber that suspended last is kept here, in last_context_,
  // not in its record: the fiber that arrives stores it at an address it knows
  // before any load (this scheduler's), instead of through a pointer it must load
  // first, and a fiber switching back to the one that just suspended (every
  // ping-pong) takes it from here without a load from that fiber's record. Each
  // such load or late store address sits on the path from one switch to the next.
  //
  // context_of: where `next`'s suspended context is. Either the cache, or its record,
  // after the cache's context went back to its own record (so the cache is free for
  // the context this switch hands back).
  WEFT_ALWAYS_INLINE boost::context::fiber& context_of(fiber_record* next) noexcept {
    if (next == last_suspended_) return last_context_;
    // Resuming a record's context empties it, so moving in by construction is
    // safe; a move-assignment would test the old value for a fiber to unwind.
    if (last_suspended_ != nullptr)
      ::new (&last_suspended_->context_) boost::context::fiber(std::move(last_context_));
    return next->context_;
  }

  // after_switch: first thing on arriving on a stack (in switch_to, or at a new
  // fiber's entry). Keeps the context of the fiber that switched to us, so it can
  // be resumed later. Only a finished fiber hands back an empty context (boost's
  // fiber_exit), and its record is then released. Always inline: under TSan an
  // out-of-line copy would be entered under the finished fiber's identity and left
  // under ours (see release_finished and WEFT_TSAN_SWITCH_POINT).
  [[gnu::always_inline]] void after_switch(boost::context::fiber&& from) noexcept {
    const bool from_finished = !from;
#if WEFT_ASAN
    const void* from_bottom = nullptr;
    std::size_t from_size = 0;
    asan_finish_switch(running_->asan_fake_stack_, &from_bottom, &from_size);
    // The thread's own stack is known to ASan only through this report.
    if (from && last_suspended_ == &loop_ && loop_.asan_bottom_ == nullptr) {
      loop_.asan_bottom_ = from_bottom;
      loop_.asan_size_ = from_size;
    }
#endif
    // The cache is empty here (context_of and the resume emptied it).
    ::new (&last_context_) boost::context::fiber(std::move(from));
    // We arrived from a finished fiber, which did not switch TSan (see finish()):
    // release_finished does, in a switch point (no instrumented frame of ours
    // spans the switch), then drops the fiber's record.
    if (from_finished) [[unlikely]]
      release_finished();
  }

  // hand_over_eh: before `prev` suspends, the C++ runtime's per-thread exception
  // state (eh_state.hpp: caught exceptions, uncaught count) becomes `next`'s. The
  // state of a fiber suspended inside a catch block or a destructor during unwinding
  // waits in its record (eh_); every other fiber's, and a new fiber's, is empty. So
  // the common switch, with nothing to move, reads two words of the thread's state
  // (at an address known since the scheduler started) and the count of states kept
  // in records, and branches once; no call, no store.
  WEFT_ALWAYS_INLINE void hand_over_eh(fiber_record* prev, fiber_record* next) noexcept {
    const eh_state* live = eh_live_;
    if ((live->caught != nullptr) | (live->uncaught != 0) | (eh_kept_ != 0)) [[unlikely]]
      move_eh(prev, next);
  }

  // pick_next: the fiber to run after the running one stops, or the loop's context:
  // when nothing is runnable, and when the loop's look at timers and I/O is due.
  //
  // Fibers that hand the CPU straight to each other never pass through the loop,
  // so every fiber counts its own switches (fiber_record::park_generation_, which
  // a park increments anyway) and every poll_interval-th of them hands the loop a
  // look (catch_up) before the queue runs on: a busy run queue cannot starve I/O.
  // The count is the fiber's, not the scheduler's: one counter that two fibers
  // taking turns both update is a chain of read-modify-writes from one to the
  // other, on the hand-off's path. And the look is a switch, not a call: a call
  // here, even a cold one, is inlined into every blocking call and constrains its
  // registers.
  WEFT_ALWAYS_INLINE fiber_record* pick_next(std::uint64_t switch_count) noexcept {
    if (look_due_at(switch_count)) [[unlikely]]
      return hand_loop_the_look();
    fiber_record* next = ready_.pop();
    return next ? next : &loop_;
  }
  static bool look_due_at(std::uint64_t switch_count) noexcept {
    return (switch_count & (poll_interval - 1)) == 0;
  }
  fiber_record* hand_loop_the_look() noexcept {
    look_due_ = true;
    return &loop_;
  }

  static constexpr std::uint32_t poll_interval = 1024;  // a power of two

  // end_park ends f's park if it is parked in `generation` (owner thread; never 0).
  static bool end_park(fiber_record* f, std::uint64_t generation, wake_reason why) noexcept {
    WEFT_ASSERT(generation != 0);
    if (f->parked_in_ != generation) return false;
    f->parked_in_ = 0;
    f->wake_reason_ = why;
    return true;
  }
  [[gnu::noinline]] void arm_deadline(fiber_record* self, time_point deadline) noexcept;
  [[gnu::noinline]] wake_reason park_attentive(park_token token, time_point deadline) noexcept;
  wake_reason park_scoped(park_token token, time_point deadline) noexcept;
  [[gnu::noinline]] static bool wake_remote(park_token token, wake_reason why) noexcept;
  // send hands `r` to the inbox of `owner`, if that scheduler still exists; false
  // if it has ended (its fibers have all finished then) or refused the request.
  static bool send(scheduler* owner, const remote_request& r) noexcept;
 public:
  // unwatch_elsewhere ends a watch of `owner` from another thread (fd_wait.cpp).
  static void unwatch_elsewhere(scheduler* owner, fd_state* st) noexcept;

 private:
  static bool push_to(scheduler* owner, const remote_request& r) noexcept;
  void apply_remote(const remote_request& r) noexcept;
  bool forwarded(const remote_request& r, fiber_record* about) noexcept;
  void apply_start(fiber_record* rec, std::size_t stack_size) noexcept;
  bool wait_remote(fiber_record* target, time_point deadline, const char* call);
  static void wake_remote_joiners(fiber_record* rec) noexcept;
  void shut_down();
  // Work stealing (work_stealing.cpp).
  bool keep_here(fiber_record* rec) noexcept;
  bool start_own_queued() noexcept;
  bool steal_work() noexcept;
  void start_taken(fiber_record** taken, std::size_t n) noexcept;

  [[gnu::cold, gnu::noinline]] void move_eh(fiber_record* prev, fiber_record* next) noexcept;
  void catch_up() noexcept;
  WEFT_TSAN_SWITCH_POINT void release_finished() noexcept;
  WEFT_TSAN_INSTRUMENTED void drop_finished() noexcept;
  void poll_now() noexcept;
  bool take_inbox() noexcept;  // true if the inbox had anything
  void apply_taken() noexcept;
  bool start_posted() noexcept;
  bool posts_started() const noexcept { return next_post_ == inbox_posts_.size(); }
  // Posted functions started at a time (start_posted).
  static constexpr std::size_t posts_per_turn = 64;
  std::uint64_t take_id() noexcept {
    if (next_id_ == last_id_) [[unlikely]]
      take_id_block();
    return next_id_++;
  }
  void take_id_block() noexcept;
  template <class Done>
  void loop_until(Done done);
  void idle() noexcept;
  bool spin_for_inbox(time_point now) const noexcept;
  bool nothing_here_can_wake(int timeout_ms) const noexcept;
  int idle_in_group(int timeout, bool& quiet) noexcept;
  void declare_deadlock(std::string report) noexcept;
  // describe_parked: this scheduler's parked fibers for a deadlock report; a join's
  // target is looked for here, and with `all_members` on every member of the group
  // (their state is still then: idle_in_group). `with_runnable` lists the fibers
  // that are not parked too, as "runnable" (the shutdown report).
  std::string describe_parked(bool all_members = false, bool with_runnable = false) const;
  const fiber_record* join_target(const fiber_record* joiner) const noexcept;
  void cancel_all() noexcept;
  void report_if_shutdown_stuck() noexcept;
  void link_alive(fiber_record* rec) noexcept {
    rec->prev_alive_ = nullptr;
    rec->next_alive_ = alive_head_;
    if (alive_head_) alive_head_->prev_alive_ = rec;
    alive_head_ = rec;
    ++alive_;
  }
  void unlink_alive(fiber_record* rec) noexcept {
    if (rec->prev_alive_)
      rec->prev_alive_->next_alive_ = rec->next_alive_;
    else
      alive_head_ = rec->next_alive_;
    if (rec->next_alive_) rec->next_alive_->prev_alive_ = rec->prev_alive_;
    --alive_;
  }

  // Declaration order is construction order: the inbox owns the eventfd the
  // reactor registers.
  std::shared_ptr<remote_inbox> inbox_;
  reactor reactor_;
  timer_wheel timers_;
  stack_pool stacks_;
  overflow_reporter overflow_;  // names a fiber that overflows into its guard page
  std::size_t stack_size_;
  const std::uint64_t incarnation_;  // see incarnation()
  run_queue ready_;
  steal_queue steal_;  // unstarted on_any fibers, which idle members may take
  loop_record loop_;                    // the scheduler's own context
  fiber_record* running_ = &loop_;      // whose stack we are on (set on arrival)
  fiber_record* last_suspended_ = nullptr;  // whose context last_context_ holds
  boost::context::fiber last_context_;       //   (see context_of)
  eh_state* const eh_live_ = this_thread_eh_state();  // this thread's (see hand_over_eh)
  std::uint32_t eh_kept_ = 0;  // suspended fibers (and loop_) whose eh_ is not empty
  fiber_record* alive_head_ = nullptr;  // every started, unfinished fiber
  std::size_t alive_ = 0;
  bool look_due_ = false;  // a fiber handed the loop its look at timers and I/O (pick_next)
  std::uint64_t next_id_ = 0;           // fiber ids, taken from the process in blocks
  std::uint64_t last_id_ = 0;
  bool shutting_down_ = false;
  // shut_down(): when to report fibers that outlive their cancellation (see
  // run_options::shutdown_report_after), until it has.
  std::chrono::milliseconds shutdown_report_after_{};
  time_point shutdown_began_{};
  time_point shutdown_report_at_ = no_deadline;
  std::size_t alive_at_last_look_ = 0;  // report_if_shutdown_stuck's progress check
  time_point last_end_seen_{};
  bool deadlocked_ = false;
  std::string deadlock_report_;  // describe_parked() at the moment of the deadlock
  // idle(): how long the loop last slept with nothing here able to wake a fiber
  // (ms; 0 when it did not), the back-off of the deadlock check (see idle()).
  int quiet_ms_ = 0;
  scheduler_group* group_ = nullptr;  // see group()
  std::size_t index_ = 0;
  bool deadlock_cancelled_ = false;  // this member has acted on the group's deadlock
  taken_requests inbox_requests_;                   // reused buffers for take_inbox
  std::vector<std::function<void()>> inbox_posts_;  // taken, [next_post_, end) not started yet
  std::size_t next_post_ = 0;
  // So that overflow_ can report on this thread. Last: the hot members above keep
  // their offsets (a row can move with the layout: bench/NOTES.md).
  faults_unblocked faults_unblocked_;
};

// shield_guard: while it lives, `self` is shielded: a cancellation does not end its
// parks (it stays pending) and the deadline scopes around it do not apply (scopes
// opened inside still do). Owner thread only. runtime/scope.hpp's shield_scope is
// the public face; waits that must not give up use it directly.
class shield_guard {
 public:
  explicit shield_guard(fiber_record* self) noexcept
      : self_(self), saved_scope_(self->scope_deadline_), saved_boundary_(self->shield_boundary_) {
    self_->set_scope_deadline(no_deadline);
    self_->shield_boundary_ = self_->innermost_scope_;
    ++self_->shield_depth_;
  }
  ~shield_guard() {
    --self_->shield_depth_;
    self_->shield_boundary_ = saved_boundary_;
    self_->set_scope_deadline(saved_scope_);
  }
  shield_guard(const shield_guard&) = delete;
  shield_guard& operator=(const shield_guard&) = delete;

 private:
  fiber_record* self_;
  time_point saved_scope_;
  scope_link* saved_boundary_;
};

// throw_delivered throws timeout_error (`timeout`) or cancelled_error for `self`,
// naming `call` (the user's call that was waiting, a static string, or null);
// inside a scope, through throw_masked_delivery (scope_state.hpp). Outside every
// scope there is nothing to mask, and the throw stays in the caller's frame: the
// unwinder pays for every frame it crosses, twice (search, then cleanup).
[[noreturn]] WEFT_ALWAYS_INLINE inline void throw_delivered(fiber_record* self, bool timeout, const char* call) {
  if (self->innermost_scope_ != nullptr) throw_masked_delivery(self, timeout, call);
  if (timeout) throw timeout_error(call);
  self->cancel_delivered();
  throw cancelled_error(call);
}

// throw_cancelled throws what a blocking call reports when its park returned
// `cancelled`: timeout_error if a deadline scope expired, cancelled_error otherwise
// (through throw_delivered, which keeps the cleanup after it uninterrupted), naming
// `call`, the user's call that was waiting.
[[noreturn, gnu::cold]] void throw_cancelled(const char* call);

}  // namespace weft::detail
