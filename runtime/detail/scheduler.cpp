#include <weft/runtime/detail/scheduler.hpp>

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <unordered_set>

#include <weft/runtime/detail/blocking_pool.hpp>
#include <weft/runtime/detail/sanitizer.hpp>
#include <weft/runtime/detail/scheduler_group.hpp>
#include <weft/runtime/detail/task.hpp>
#include <weft/runtime/detail/thread_parker.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/unhandled_exception.hpp>

namespace weft::detail {
namespace {

// Fiber ids are unique in the process; each scheduler takes them in blocks so that
// spawning does not touch a shared atomic.
std::atomic<std::uint64_t> next_id_block{1};
constexpr std::uint64_t id_block = 1024;

void on_deadline(timer_node* node) noexcept {
  fiber_record* f = static_cast<fiber_record::deadline_timer*>(node)->fiber;
  if (f->parked_in_) scheduler::wake(park_token{f, f->parked_in_}, wake_reason::timed_out);
}

// Schedulers alive in the process, for requests from other threads (wake_remote).
std::mutex live_schedulers_mutex;
std::unordered_set<scheduler*> live_schedulers;
std::atomic<std::uint64_t> next_incarnation{1};  // scheduler::incarnation()

// The stack "allocator" boost calls when a fiber's function returns: it runs on the
// next fiber's stack (boost's fiber_exit), and puts the stack back in the pool.
struct stack_return {
  stack_pool* pool;
  stack s;
  void deallocate(boost::context::stack_context&) noexcept { pool->release(s); }
};

}  // namespace

constinit thread_local scheduler* this_thread_scheduler = nullptr;
constinit thread_local scheduler* this_fiber_scheduler = nullptr;

namespace {

const char* sanitizer_names(unsigned sanitizers) {
  switch (sanitizers) {
    case 0: return "no sanitizer";
    case 1: return "AddressSanitizer";
    case 2: return "ThreadSanitizer";
    default: return "AddressSanitizer and ThreadSanitizer";
  }
}

const char* library_for(unsigned sanitizers) {
  switch (sanitizers) {
    case 0: return "weft (pkg-config weft, CMake weft::weft)";
    case 1: return "weft-asan (pkg-config weft-asan; a weft build configured with -Db_sanitize=address)";
    case 2: return "weft-tsan (pkg-config weft-tsan; a weft build configured with -Db_sanitize=thread)";
    default: return "a weft built with the same sanitizers";
  }
}

// The fiber switch is inline code, partly in the program and partly in the library;
// each half tells its sanitizer about the switch, or not. Mixed, the sanitizer sees
// half a switch and fails later, far from the cause ("starting fiber switch while
// in fiber switch"): say it here instead.
[[noreturn]] void throw_build_mismatch(unsigned program) {
  throw error(errc::build_mismatch, "weft::run",
              std::string("this program is built with ") + sanitizer_names(program) +
                  " and the weft library it links with " + sanitizer_names(WEFT_BUILD_SANITIZERS) +
                  "; link " + library_for(program) + " instead");
}

}  // namespace

scheduler::scheduler(const scheduler_options& options)
    : inbox_(std::make_shared<remote_inbox>()),
      reactor_(inbox_->event_fd()),
      timers_(clock::now()),
      stacks_(options.stack_size, options.guards),
      stack_size_(options.stack_size),
      incarnation_(next_incarnation.fetch_add(1, std::memory_order_relaxed)) {
  if (this_fiber_scheduler != nullptr)
    throw error(errc::scheduler_running, "weft::run",
                "called from a fiber, whose thread already runs a scheduler: start another fiber with "
                "weft::spawn, or a runtime of its own on another thread (background_runtime)");
  if (this_thread_scheduler != nullptr) throw error(errc::scheduler_running, "weft::run");
  if (options.program_sanitizers != WEFT_BUILD_SANITIZERS) throw_build_mismatch(options.program_sanitizers);
  if (options.shutdown_report_after < std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "weft::run", "run_options::shutdown_report_after is negative");
  {
    std::lock_guard lock(live_schedulers_mutex);
    live_schedulers.insert(this);
  }
  this_thread_scheduler = this;
  loop_.owner_.store(this, std::memory_order_relaxed);
  loop_.tsan_fiber_ = tsan_current_fiber();
  loop_.name_ = "<scheduler>";
  shutdown_report_after_ = options.shutdown_report_after;
}

namespace {
thread_local scheduler::teardown_census this_thread_last_census;
thread_local scheduler::teardown_census this_thread_carried_census;
}  // namespace

scheduler::teardown_census scheduler::last_teardown_census() noexcept { return this_thread_last_census; }

void scheduler::carry_into_census(const teardown_census& workers) noexcept {
  this_thread_carried_census.fibers_alive += workers.fibers_alive;
  this_thread_carried_census.timers_pending += workers.timers_pending;
  this_thread_carried_census.fds_registered += workers.fds_registered;
}

scheduler::~scheduler() {
  const teardown_census carried = std::exchange(this_thread_carried_census, {});
  this_thread_last_census = {alive_ + carried.fibers_alive, timers_.size() + carried.timers_pending,
                             reactor_.registered() + carried.fds_registered};
  {
    std::lock_guard lock(live_schedulers_mutex);
    live_schedulers.erase(this);
  }
  // Requests that arrived after the last look. Every fiber here has finished, so
  // they only drop their references, wake remote waiters of finished fibers and
  // report detached fibers' exceptions.
  inbox_->take(inbox_requests_, &inbox_posts_);  // no posts: shut_down() started them all
  inbox_requests_.for_each([this](const remote_request& r) { apply_remote(r); });
  inbox_->shutdown();
  this_thread_scheduler = nullptr;
}

// The message says where the call was made and what to do instead: "called
// outside a weft fiber" alone leaves a stranger guessing (a new user's finding).
void scheduler::throw_not_in_fiber(const char* what) {
  const char* why =
      on_blocking_pool()
          ? "called outside a weft fiber (in a weft::to_thread function, which runs on a plain pool thread: "
            "do the blocking call after to_thread returns)"
      : this_thread_scheduler != nullptr
          ? "called outside a weft fiber (on a scheduler's thread between its fibers, e.g. in a handler weft "
            "calls: weft::spawn a fiber for the blocking call)"
          : "called outside a weft fiber (start fiber code with weft::run; a plain thread hands work to fibers "
            "with this_runtime().submit()/post() or a channel)";
  throw error(errc::not_in_fiber, what, why);
}

void throw_empty_handle(const char* call) {
  throw error(errc::not_joinable, call, "the handle is empty (already joined, detached or moved from)");
}

// ---- starting and finishing ---------------------------------------------------------

void scheduler::take_id_block() noexcept {
  next_id_ = next_id_block.fetch_add(id_block, std::memory_order_relaxed);
  last_id_ = next_id_ + id_block;
}

void scheduler::start(fiber_record* rec, std::size_t stack_size) {
  const stack s = stacks_.acquire(stack_size == 0 ? stack_size_ : stack_size);
  // A fiber started for another thread (start_on) has its owner and id already,
  // and that thread may be reading them: compare, do not write again.
  if (rec->owner_.load(std::memory_order_relaxed) != this) rec->owner_.store(this, std::memory_order_relaxed);
  rec->stack_ = s;
  rec->asan_bottom_ = s.bottom;
  rec->asan_size_ = s.size;
  if (rec->id_ == 0) rec->id_ = take_id();
  rec->park_generation_ = rec->id_ % poll_interval;
  rec->deadline_.fire = &on_deadline;
  rec->deadline_.fiber = rec;
  boost::context::stack_context sctx;
  sctx.sp = s.top();
  sctx.size = s.size;
  // boost places its own small record at the top of the stack, below `sp`, and
  // jumps onto the new stack and back to set it up: TSan must account that jump to
  // the new fiber, or the creator's shadow stack keeps an entry that never exits.
  rec->tsan_fiber_ = tsan_create_fiber();
  tsan_switch_to_fiber(rec->tsan_fiber_);
  rec->context_ = boost::context::fiber(
      std::allocator_arg, boost::context::preallocated(s.top(), s.size, sctx),
      stack_return{&stacks_, s},
      [rec](boost::context::fiber&& from) { return fiber_main(rec, std::move(from)); });
  tsan_switch_to_fiber(running_->tsan_fiber_);
  if (shutting_down_) rec->request_cancel();
  link_alive(rec);
  ready_.push(rec);
}

void scheduler::start_detached(std::function<void()> fn) noexcept {
  fiber_record* rec = nullptr;
  try {
    rec = new task<void, std::function<void()>>(std::move(fn));
    rec->refs_.store(1, std::memory_order_relaxed);
    rec->detached_ = true;
    rec->name_ = "<posted>";
    start(rec, 0);
  } catch (...) {
    std::fprintf(stderr, "weft: could not start a posted function: %s\n",
                 describe_exception(std::current_exception()).c_str());
    delete rec;
  }
}

void scheduler::start_on(scheduler& target, fiber_record* rec, std::size_t stack_size) {
  rec->owner_.store(&target, std::memory_order_relaxed);
  rec->id_ = take_id();
  remote_request r;
  r.what = remote_request::kind::start;
  r.target = rec;
  r.stack_size = stack_size;
  if (!send(&target, r)) {
    rec->owner_.store(nullptr, std::memory_order_relaxed);
    // The runtime is shutting down. A fiber of its own that asked is cancelled by
    // that shutdown, maybe not yet (its own scheduler may not have applied it when
    // another member already refuses: seen under ASan on a loaded machine): that
    // cancellation is what it reports, the quiet end of a fiber at shutdown, not an
    // error on stderr (a breaker's finding: a signal_set made on a worker during
    // shutdown).
    if (scheduler* here = this_fiber_scheduler) {
      fiber_record* self = here->running();
      if (here->group_ != nullptr && here->group_ == target.group_) self->request_cancel();
      if (self->cancel_requested() && self->takes_cancel_now() && self->take_cancel())
        throw_delivered(self, false, "weft::spawn");
    }
    throw error(errc::scheduler_stopped, "weft::spawn",
                "scheduler " + std::to_string(target.index()) + " of the runtime is shutting down");
  }
}

// apply_start: the owner's half of start_on. A fiber that cannot start (no stack)
// ends at once with that error, which its join rethrows.
void scheduler::apply_start(fiber_record* rec, std::size_t stack_size) noexcept {
  try {
    start(rec, stack_size);
  } catch (...) {
    rec->error_ = std::current_exception();
    rec->done_.store(true, std::memory_order_release);
    if (rec->remote_joiners_) wake_remote_joiners(rec);
    if (rec->detached_) report_unretrieved(*rec);
    release_record(rec);  // the fiber's own reference
  }
}

void scheduler::release_handle(fiber_record* rec) noexcept {
  scheduler* here = this_thread_scheduler;
  if (here != nullptr && here->running_ == rec) {
    // A fiber dropping its own handle (every task-group child, as it ends): it runs
    // here, so it is neither queued nor done, and finish() reports its exception.
    rec->detached_ = true;
    release_record(rec);
    return;
  }
  scheduler* owner = rec->owner_.load(std::memory_order_acquire);
  if (owner != nullptr && owner == this_thread_scheduler && rec->stealable_) {
    // Unstarted in our steal queue: whoever starts it finds the flag (the lock).
    if (owner->steal_.if_queued(rec, [rec] { rec->detached_ = true; })) {
      release_record(rec);
      return;
    }
    owner = rec->owner_.load(std::memory_order_acquire);  // started, here or by a thief
  }
  if (owner != nullptr && owner != this_thread_scheduler) {
    remote_request r;
    r.what = remote_request::kind::detach;
    r.target = rec;
    if (send(owner, r)) return;
    // Its scheduler has ended, after every fiber of it finished: no race left.
  }
  rec->detached_ = true;
  if (rec->done_.load(std::memory_order_acquire)) report_unretrieved(*rec);
  release_record(rec);
}

// fiber_main is a TSan switch point: a fiber that starts right after another
// finished arrives here still under the finished fiber's TSan identity (after_switch
// switches), and an instrumented fiber_main would record its entry there and its
// exit on this fiber's shadow stack. Its own accesses are owner-thread fields.
boost::context::fiber scheduler::fiber_main(fiber_record* rec, boost::context::fiber&& from) {
  scheduler* self = rec->owner_.load(std::memory_order_relaxed);
  self->running_ = rec;
  self->after_switch(std::move(from));
  rec->run_body();  // only boost's forced_unwind escapes, and boost handles it
  return self->finish(rec);
}

// finish runs on the finishing fiber's stack for the last time. It returns the
// context to switch to; boost then frees this stack (stack_return) on top of that
// context, and the next fiber's after_switch drops the fiber's reference.
boost::context::fiber scheduler::finish(fiber_record* rec) noexcept {
  rec->done_.store(true, std::memory_order_release);
  unlink_alive(rec);
  if (rec->joiner_) {
    wake(rec->joiner_, wake_reason::notified);
    rec->joiner_ = {};
  }
  if (rec->remote_joiners_) [[unlikely]]
    wake_remote_joiners(rec);
  if (rec->detached_ && rec->error_) report_unretrieved(*rec);  // (a task group's children end detached)
  fiber_record* next = rec->returns_to_loop_ ? &loop_ : pick_next(++rec->park_generation_);
  // The loop releases this fiber's record, running its captures' destructors: on
  // the loop's own context, where blocking calls must be refused.
  if (next == &loop_) this_fiber_scheduler = nullptr;
  // A returning function has left every catch block, so the finishing fiber's
  // exception state is empty: hand_over_eh only gives next its own.
  hand_over_eh(rec, next);
  boost::context::fiber& target = context_of(next);
  last_suspended_ = rec;  // its context, empty, lands in the cache
  asan_start_switch(nullptr, next->asan_bottom_, next->asan_size_);  // nullptr: dying
  // No TSan switch here: the frames of this fiber still return (into boost) before
  // the jump, and TSan must see those returns on this fiber's shadow stack. The
  // next fiber switches TSan on arrival (after_switch).
  return std::move(target);
}

// ---- the switch point's rare work ----------------------------------------------------

#if WEFT_TSAN
WEFT_TSAN_SWITCH_POINT boost::context::fiber scheduler::resume(boost::context::fiber&& target,
                                                               void* tsan_target) noexcept {
  tsan_switch_to_fiber(tsan_target);
  return std::move(target).resume();
}
#endif

// move_eh: the rare half of hand_over_eh, when prev's state is not empty or some
// suspended fiber keeps one. prev's goes into its record, next's comes out of its
// record (or the thread's becomes empty: a new fiber, the loop, any fiber suspended
// outside exception handling).
void scheduler::move_eh(fiber_record* prev, fiber_record* next) noexcept {
  if (!eh_live_->empty()) {
    prev->eh_ = *eh_live_;
    ++eh_kept_;
  }
  if (!next->eh_.empty()) {
    *eh_live_ = std::exchange(next->eh_, eh_state{});
    --eh_kept_;
  } else {
    *eh_live_ = eh_state{};
  }
}

void scheduler::catch_up() noexcept {
  if (timers_.has_due()) timers_.fire_due();
  poll_now();
  // A busy run queue starves neither on_any fibers nor posts waiting here.
  start_own_queued();
  start_posted();
}

// release_finished runs first thing on arrival from a finished fiber (after_switch).
// TSan still counts us as the finished fiber, which did not switch (see finish());
// this switch point switches, and everything after it is ours.
void scheduler::release_finished() noexcept {
  tsan_switch_to_fiber(running_->tsan_fiber_);
  drop_finished();
}

void scheduler::drop_finished() noexcept {
  // The finished fiber is the one that switched to us. Its record goes, and a new
  // one may reuse its address, so the context cache must not name it any more.
  fiber_record* done = std::exchange(last_suspended_, nullptr);
  tsan_destroy_fiber(done->tsan_fiber_);
  release_record(done);
}

// ---- parking -------------------------------------------------------------------------

void scheduler::arm_deadline(fiber_record* self, time_point deadline) noexcept {
  if (deadline == time_point::min())
    timers_.insert_due(&self->deadline_);
  else
    timers_.insert(&self->deadline_, deadline, clock::now());
  // Already due (a zero timeout): fire it now, without a poll. The wake-up queues
  // this fiber behind those already runnable, so they run first, as after a yield.
  if (timers_.has_due()) timers_.fire_due();
}

wake_reason scheduler::park_attentive(park_token token, time_point deadline) noexcept {
  if (token.fiber->cancel_deferred()) token.fiber->settle_deferred_cancel();
  if (token.fiber->scope_deadline_ != no_deadline) return park_scoped(token, deadline);
  return park_plain(token, deadline);
}

// park_scoped: a park inside a deadline scope. A scope already past expires at
// this park whatever the call's own deadline, also one already past or "due at
// once" (sleep_for(0) in a polling loop: comparing the two deadlines alone let it
// spin on past the scope's end). Otherwise the earlier of the two ends the park.
wake_reason scheduler::park_scoped(park_token token, time_point deadline) noexcept {
  fiber_record* self = token.fiber;
  // Cleanup after a delivered timeout or cancellation, or any unwinding: the scopes
  // it keeps quiet do not count (scope_state.hpp), the others (opened since) still do.
  const time_point scope =
      self->has_masks() || std::uncaught_exceptions() > 0 ? unmasked_scope_deadline(self) : self->scope_deadline_;
  if (scope == no_deadline) return park_plain(token, deadline);
  if (scope <= clock::now()) {
    // Expired already: report it without suspending, unless a wake got in first.
    if (end_park(self, token.generation, wake_reason::cancelled)) {
      self->scope_expired_ = true;
      return wake_reason::cancelled;
    }
    return park_plain(token, deadline);
  }
  if (scope >= deadline) return park_plain(token, deadline);  // the call's own deadline comes first
  const wake_reason why = park_plain(token, scope);
  if (why != wake_reason::timed_out) return why;
  self->scope_expired_ = true;  // the scope's deadline, not the call's, ended the park
  return wake_reason::cancelled;
}

void throw_cancelled(const char* call) {
  scheduler* s = scheduler::current();
  fiber_record* self = s != nullptr ? s->running() : nullptr;
  // A plain cancellation outside every scope first, so that its throw comes first in
  // this function's call-site table, which the unwinder reads linearly up to the
  // throw, twice (bench/NOTES "weft/cancel_blocked and frames on the unwinding path").
  if (self == nullptr || (self->innermost_scope_ == nullptr && !self->scope_expired_)) [[likely]] {
    if (self != nullptr) self->cancel_delivered();
    throw cancelled_error(call);
  }
  throw_delivered(self, std::exchange(self->scope_expired_, false), call);
}

void scheduler::cancel(fiber_record* f) noexcept {
  if (f->done_.load(std::memory_order_acquire)) return;
  f->request_cancel();
  scheduler* owner = f->owner_.load(std::memory_order_acquire);
  if (owner == this_thread_scheduler && f->stealable_) {
    // Unstarted in our steal queue: it starts with the flag set, whoever starts it.
    if (owner->steal_.if_queued(f, [] {})) return;
    owner = f->owner_.load(std::memory_order_acquire);
  }
  if (owner != this_thread_scheduler) {
    remote_request r;
    r.what = remote_request::kind::cancel;
    r.token = park_token{f, 0};
    f->refs_.fetch_add(1, std::memory_order_relaxed);
    if (!send(owner, r)) release_record(f);  // its scheduler has ended, and so has f
    return;
  }
  if (f->parked_in_ && f->takes_cancel_while_parked()) wake(park_token{f, f->parked_in_}, wake_reason::cancelled);
}

// A request from another thread cannot touch the park state; it goes into the
// owner's inbox. Two lifetimes need care: the record's (the sender takes a
// reference, the owner drops it) and the owner scheduler's (the fiber may finish
// and its scheduler end before the request lands, so the owner is looked up in the
// registry of live schedulers, under the lock its destructor also takes).
bool scheduler::wake_remote(park_token token, wake_reason why) noexcept {
  fiber_record* f = token.fiber;
  if (thread_parker::is_parker(f)) {  // a plain thread waits, not a fiber
    static_cast<thread_parker*>(f)->unpark(token.generation, why);
    return true;
  }
  f->refs_.fetch_add(1, std::memory_order_relaxed);
  remote_request r;
  r.what = remote_request::kind::wake;
  r.why = why;
  r.token = token;
  if (!send(f->owner_.load(std::memory_order_relaxed), r)) release_record(f);  // its scheduler has ended, and every park it had
  return true;
}

// A fiber of a runtime of several schedulers that sends to another member skips
// the registry and its global lock: no member is destroyed before every member
// has drained (scheduler_group), and the sender's own fiber is still alive, so the
// owner is too. Everyone else (plain threads, a scheduler's own context, which
// may apply requests after the others drained) looks the owner up.
bool scheduler::send(scheduler* owner, const remote_request& r) noexcept {
  scheduler* here = this_fiber_scheduler;
  if (here != nullptr && here->group_ != nullptr && here->group_->is_member(owner)) return push_to(owner, r);
  std::lock_guard lock(live_schedulers_mutex);
  if (!live_schedulers.contains(owner)) return false;
  return push_to(owner, r);
}

bool scheduler::is_live_incarnation(std::uint64_t incarnation) noexcept {
  std::lock_guard lock(live_schedulers_mutex);
  for (const scheduler* s : live_schedulers)
    if (s->incarnation_ == incarnation) return true;
  return false;
}

void scheduler::unwatch_elsewhere(scheduler* owner, fd_state* st) noexcept {
  remote_request r;
  r.what = remote_request::kind::unwatch;
  r.watch = st;
  if (!send(owner, r)) forget_watch(st);  // its scheduler has ended
}

bool scheduler::push_to(scheduler* owner, const remote_request& r) noexcept {
  try {
    return owner->inbox_->push(r);
  } catch (...) {
    // Out of memory for the inbox's vector: nothing can be queued. Losing a wake-up
    // would hang a fiber for good; stopping with a message is the lesser harm.
    std::fputs("weft: out of memory queueing a request for another scheduler thread\n", stderr);
    std::abort();
  }
}

// apply_remote: the owner's half of every request (see remote_request). Also
// applied by the destructor to what is left, when every fiber here has finished.
void scheduler::apply_remote(const remote_request& r) noexcept {
  using kind = remote_request::kind;
  fiber_record* f = r.token.fiber;
  fiber_record* target = r.target;
  switch (r.what) {
    case kind::wake:
      wake(r.token, r.why);
      release_record(f);
      return;
    case kind::cancel:
      // Unstarted in our steal queue: it starts with the flag set. Taken by a thief
      // since the sender looked: the thief applies it.
      if (f->stealable_ && steal_.if_queued(f, [] {})) {
        release_record(f);
        return;
      }
      if (forwarded(r, f)) return;
      // Only if still pending: the fiber may have seen the flag at a park already.
      if (f->cancel_requested() && f->parked_in_ && f->takes_cancel_while_parked())
        wake(park_token{f, f->parked_in_}, wake_reason::cancelled);
      release_record(f);
      return;
    case kind::start:
      apply_start(target, r.stack_size);
      return;
    case kind::join:
      // A fiber still in our steal queue starts here now, so that it stays here.
      if (!keep_here(target) && forwarded(r, target)) return;
      if (!target->done_.load(std::memory_order_relaxed)) {
        try {
          if (!target->remote_joiners_) target->remote_joiners_ = std::make_unique<std::vector<park_token>>();
          target->remote_joiners_->push_back(r.token);  // keeps the waiter's reference
          release_record(target);
          return;
        } catch (...) {
          // No memory to remember the waiter: wake it now; it finds the fiber
          // unfinished and asks again (wait_remote loops).
        }
      }
      wake(r.token, wake_reason::notified);
      release_record(f);
      release_record(target);
      return;
    case kind::unjoin:
      if (forwarded(r, target)) return;
      if (auto* list = target->remote_joiners_.get()) {
        for (auto it = list->begin(); it != list->end(); ++it) {
          if (it->fiber == f && it->generation == r.token.generation) {
            list->erase(it);
            release_record(f);
            break;
          }
        }
      }
      release_record(target);
      return;
    case kind::detach:
      if (target->stealable_ && steal_.if_queued(target, [target] { target->detached_ = true; })) {
        release_record(target);
        return;
      }
      if (forwarded(r, target)) return;
      target->detached_ = true;
      if (target->done_.load(std::memory_order_relaxed)) report_unretrieved(*target);
      release_record(target);  // the handle's reference
      return;
    case kind::unwatch:
      unwatch(*this, r.watch);
      return;
  }
}

// forwarded: a request about a fiber that a thief took from our steal queue after
// the sender looked goes on to the thief (work_stealing.cpp). False if the fiber is
// ours, or its scheduler has ended (it finished then, and applying here is safe).
bool scheduler::forwarded(const remote_request& r, fiber_record* about) noexcept {
  scheduler* owner = about->owner_.load(std::memory_order_acquire);
  return owner != this && send(owner, r);
}

void scheduler::wake_remote_joiners(fiber_record* rec) noexcept {
  const std::unique_ptr<std::vector<park_token>> list = std::move(rec->remote_joiners_);
  for (const park_token& waiter : *list) {
    wake(waiter, wake_reason::notified);  // another thread's fiber: through its inbox
    release_record(waiter.fiber);
  }
}

bool scheduler::wait_done(fiber_record* target, time_point deadline, const char* call) {
  if (target->done_.load(std::memory_order_acquire)) return true;
  if (target == running_) throw error(errc::would_deadlock, call, "a fiber cannot wait for itself");
  // Ours: it stays ours unless it waits, unstarted, where a thief may take it.
  if (target->owner_.load(std::memory_order_acquire) != this || (target->stealable_ && !keep_here(target)))
    return wait_remote(target, deadline, call);
  if (target->joiner_) throw error(errc::already_waited, call, "another fiber already waits for this fiber");
  const park_token token = prepare_park(call);
  target->joiner_ = token;
  const wake_reason why = park(token, deadline);
  if (target->joiner_.fiber == token.fiber) target->joiner_ = {};
  if (why == wake_reason::cancelled) throw_cancelled(call);
  return target->done_.load(std::memory_order_acquire);
}

// wait_remote: waiting for a fiber of another scheduler. Its owner keeps the
// waiter's token (a join request) and wakes it from finish(); a wait that ends
// otherwise withdraws it (unjoin). Several fibers may wait at once this way.
bool scheduler::wait_remote(fiber_record* target, time_point deadline, const char* call) {
  fiber_record* self = running_;
  using kind = remote_request::kind;
  while (!target->done_.load(std::memory_order_acquire)) {
    const park_token token = prepare_park(call);
    remote_request r;
    r.what = kind::join;
    r.token = token;
    r.target = target;
    self->refs_.fetch_add(1, std::memory_order_relaxed);
    target->refs_.fetch_add(1, std::memory_order_relaxed);
    if (!send(target->owner_.load(std::memory_order_acquire), r)) {
      // Its scheduler has ended, after every fiber of it finished.
      end_park(self, token.generation, wake_reason::notified);
      release_record(self);
      release_record(target);
      break;
    }
    const wake_reason why = park(token, deadline);
    if (why == wake_reason::notified) continue;  // done, or asked again (apply_remote)
    r.what = kind::unjoin;
    target->refs_.fetch_add(1, std::memory_order_relaxed);
    if (!send(target->owner_.load(std::memory_order_acquire), r)) release_record(target);
    if (why == wake_reason::cancelled) throw_cancelled(call);
    break;  // the deadline
  }
  return target->done_.load(std::memory_order_acquire);
}

// ---- the loop (scheduler context) ------------------------------------------------------

bool scheduler::take_inbox() noexcept {
  if (!inbox_->has_items()) return false;
  // New posts only once those taken before have started: they wait in the inbox.
  inbox_->take(inbox_requests_, posts_started() ? &inbox_posts_ : nullptr);
  apply_taken();
  return true;
}

void scheduler::apply_taken() noexcept {
  inbox_requests_.for_each([this](const remote_request& r) { apply_remote(r); });
  inbox_requests_.clear();
}

// start_posted starts the next posts_per_turn posted functions, in the order they
// were posted; false if none was waiting. A posted function becomes a fiber, with
// a stack, only when it starts: started all at once, a flood of posts from another
// thread made a fiber and touched a stack for each (400,000 posts: 3.4 GB and
// 35 s; a breaker's finding). A batch at a time, the next when nothing else here
// is runnable (loop_until) or at each look of a busy loop (catch_up), the fibers
// of short functions have finished and given their stacks back before the next
// batch takes them.
bool scheduler::start_posted() noexcept {
  if (posts_started()) return false;
  const std::size_t end = std::min(inbox_posts_.size(), next_post_ + posts_per_turn);
  for (; next_post_ < end; ++next_post_) start_detached(std::move(inbox_posts_[next_post_]));
  if (next_post_ == inbox_posts_.size()) {
    inbox_posts_.clear();
    next_post_ = 0;
  }
  return true;
}

// poll_now: a non-blocking look at everything that can make fibers runnable.
void scheduler::poll_now() noexcept {
  if (reactor_.poll(0)) inbox_->drain_event_fd();
  timers_.advance(clock::now());
  take_inbox();
}

// ---- idle and deadlock -----------------------------------------------------------------
//
// When nothing here can wake a fiber (no runnable fiber, no timer, no watched fd),
// only another thread still can: any thread may set an event, send on a channel,
// cancel a fiber or post through a scheduler_handle, and weft cannot know which
// objects a thread holds. So a deadlock is certain only when the process has no
// other thread: then every fiber that could act is parked here, for good. The
// to_thread pool's idle threads do not count (threads_that_may_act): they run
// nothing of the program's, and stay for 10 s after their last job.
//
// The loop does not count threads at once (a fiber woken by a thread over and over
// would pay for reading /proc each time): it first sleeps in epoll_wait, where the
// inbox's eventfd wakes it for a wake-up from another thread. Only a sleep that
// ends by its own timeout with nothing woken makes it count the threads in
// /proc/self/task. One thread (this one): deadlock, reported. More: it sleeps
// again, twice as long each time (10 ms, 20 ms, ... up to 1 s): never a busy wait,
// and a deadlock is still reported once the other threads have exited (a thread
// that was to set the event and ended without doing so). Without /proc the count
// is unknown and nothing is reported.

namespace {

constexpr int first_quiet_ms = 10;
constexpr int max_quiet_ms = 1000;

// threads_that_may_act: how many threads /proc/self/task lists, less the to_thread
// pool's idle ones (they run nothing of the program's until a job comes, and only a
// fiber or a thread counted here can submit one); -1 if unknown (then another thread
// may act, and nothing is reported). The pool is read after the count: a job
// submitted by a thread that has exited since is still queued or running then.
int threads_that_may_act() noexcept {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  int threads = 0;
  while (const dirent* entry = ::readdir(dir))
    if (entry->d_name[0] != '.') ++threads;
  ::closedir(dir);
  return threads - static_cast<int>(blocking_pool_idle_threads());
}

// idle_in_group's answer when it has acted on a deadlock instead of sleeping.
constexpr int deadlock_acted = -2;

void append_fiber(std::string& out, const fiber_record* f) {
  out += "fiber ";
  out += std::to_string(f->id_);
  if (f->returns_to_loop_) {
    out += " (main)";
  } else if (!f->name_.empty()) {
    out += " \"";
    out += f->name_;
    out += '"';
  }
}

}  // namespace

// timeout_ms: the timers' epoll timeout, -1 when no timer is pending.
bool scheduler::nothing_here_can_wake(int timeout_ms) const noexcept {
  return alive_ > 0 && ready_.empty() && posts_started() && timeout_ms < 0 && reactor_.registered() == 0;
}

// join_target: the live fiber of this scheduler that `f`'s current park waits for
// (as its joiner, or as one of its joiners from other schedulers).
const fiber_record* scheduler::join_target(const fiber_record* f) const noexcept {
  const auto is_f = [f](const park_token& t) { return t.fiber == f && t.generation == f->parked_in_; };
  for (const fiber_record* t = alive_head_; t; t = t->next_alive_) {
    if (is_f(t->joiner_)) return t;
    if (t->remote_joiners_ && std::any_of(t->remote_joiners_->begin(), t->remote_joiners_->end(), is_f)) return t;
  }
  return nullptr;
}

// describe_parked lists the parked fibers (at most a dozen) and what each waits in.
std::string scheduler::describe_parked(bool all_members, bool with_runnable) const {
  constexpr std::size_t max_listed = 12;
  std::string out;
  std::size_t listed = 0, parked = 0;
  for (const fiber_record* f = alive_head_; f; f = f->next_alive_) {
    if (f->parked_in_ == 0 && !with_runnable) continue;
    if (++parked > max_listed) continue;
    if (listed++ > 0) out += "; ";
    append_fiber(out, f);
    out += ": ";
    if (f->parked_in_ == 0) {
      out += "runnable";
      continue;
    }
    out += f->waits_on_ ? f->waits_on_ : "a blocking call";
    // A join names the fiber it waits for, which may live on another member
    // (a breaker's finding: the report dropped it there).
    const fiber_record* target = join_target(f);
    for (std::size_t i = 0; target == nullptr && all_members && group_ != nullptr && i < group_->size(); ++i)
      if (&group_->at(i) != this) target = group_->at(i).join_target(f);
    if (target != nullptr) {
      out += " of ";
      append_fiber(out, target);
    }
  }
  if (parked > listed)
    out += "; and " + std::to_string(parked - listed) + (with_runnable ? " more fibers" : " more parked fibers");
  return out;
}

void scheduler::idle() noexcept {
  // One clock read serves the whole look: the inbox and a steal in between take
  // nanoseconds, and a timer they make due is seen at the next look.
  const time_point now = clock::now();
  timers_.advance(now);
  // Anything taken from the inbox may have changed what the loop waits for (a
  // poke: a stop request, the group's drain), not only made fibers runnable: the
  // loop looks at its condition before we may sleep.
  if (take_inbox()) {
    quiet_ms_ = 0;  // something arrived: the quiet spell is over
    return;
  }
  if (!ready_.empty() || steal_work()) return;
  int timeout = timers_.timeout_ms(now);
  // In a runtime of several schedulers, the next wake-up most often comes from
  // another member within microseconds (a channel partner on the other thread):
  // look at the inbox for a short while before paying for a sleep and the
  // eventfd write that ends it (Go's schedulers spin likewise before they park).
  // The spin touches no line another thread writes unless it has news for us;
  // counting ourselves quiet (below) waits until we are about to sleep.
  if (group_ != nullptr && timeout != 0 && !group_->deadlock_declared() && spin_for_inbox(now)) {
    take_inbox();
    quiet_ms_ = 0;
    return;
  }
  bool quiet = false;  // counted quiet in the group until we wake
  if (group_ != nullptr) {
    timeout = idle_in_group(timeout, quiet);
    if (timeout == deadlock_acted) return;
  } else if (nothing_here_can_wake(timeout)) {
    // The last sleep ended by its timeout and nothing arrived: count threads.
    if (quiet_ms_ > 0 && threads_that_may_act() == 1) {
      quiet_ms_ = 0;
      // A thread no longer counted may have woken a fiber before it left (or went
      // idle, if it was the pool's): that wake-up is in the inbox.
      take_inbox();
      if (!ready_.empty() || !posts_started()) return;  // (posts start in the loop)
      std::string report;
      try {
        report = describe_parked();
      } catch (...) {
        // out of memory: the code alone must do
      }
      declare_deadlock(std::move(report));
      return;
    }
    quiet_ms_ = quiet_ms_ == 0 ? first_quiet_ms : std::min(2 * quiet_ms_, max_quiet_ms);
    timeout = quiet_ms_;
  } else {
    quiet_ms_ = 0;
  }
  if (shutdown_report_at_ != no_deadline) {
    // Shutting down with fibers left: wake in time for shut_down()'s report on them.
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(shutdown_report_at_ - now).count();
    const int cap = left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 1'000'000));
    timeout = timeout < 0 ? cap : std::min(timeout, cap);
  }
  if (inbox_->begin_sleep()) {
    // A member that has said it sleeps looks at the group's queued work once more
    // (scheduler_group::before_sleep); work queued meanwhile is taken, not slept on.
    const bool stay_awake = group_ != nullptr && timeout != 0 && group_->before_sleep();
    const bool woken = reactor_.poll(stay_awake ? 0 : timeout);
    if (group_ != nullptr && timeout != 0 && !stay_awake) group_->after_sleep();
    inbox_->end_sleep();
    if (woken) inbox_->drain_event_fd();
  } else {
    reactor_.poll(0);
  }
  if (quiet) inbox_->leave_quiet();
  timers_.advance(clock::now());
  take_inbox();
  if (!ready_.empty() || !posts_started()) quiet_ms_ = 0;  // woken: the quiet spell is over
}

// idle_in_group: idle()'s deadlock watch for a member of a scheduler_group; returns
// the epoll timeout to sleep with, or deadlock_acted.
//
// A member with nothing runnable, no timer and no watched fd counts itself quiet
// (through its inbox, so that any request sent to it ends that before the sender
// returns) and sleeps until woken. Member 0 sleeps with the same back-off as a lone
// scheduler and, after a sleep that ended by its timeout, looks: every member
// quiet, some fiber alive, and no thread in the process but the members' means no
// wake-up can come from anywhere. It then reads the other members' parked fibers
// (they are asleep, and their last writes are ordered before their quiet count),
// and every member cancels its fibers.
int scheduler::idle_in_group(int timeout, bool& quiet) noexcept {
  if (group_->deadlock_declared() && !deadlock_cancelled_) {
    deadlock_cancelled_ = true;
    cancel_all();
    group_->deadlock_acted();
    return deadlock_acted;
  }
  if (timeout >= 0 || reactor_.registered() != 0) {
    quiet_ms_ = 0;
    return timeout;
  }
  if (!inbox_->enter_quiet()) return 0;  // something arrived meanwhile: look again
  quiet = true;
  if (index_ != 0) return -1;
  // All quiet, no thread but the members, and still all quiet: a thread that woke a
  // member and exited in between would have ended that member's quiet before the
  // second look. Only then is every member's state still, and safe to read here.
  if (quiet_ms_ > 0 && group_->all_quiet() && threads_that_may_act() == static_cast<int>(group_->size()) &&
      group_->all_quiet()) {
    std::size_t alive = 0;
    for (std::size_t i = 0; i < group_->size(); ++i) alive += group_->at(i).alive();
    if (alive > 0) {
      quiet_ms_ = 0;
      std::string report;
      try {
        for (std::size_t i = 0; i < group_->size(); ++i) {
          std::string part = group_->at(i).describe_parked(/*all_members=*/true);
          if (part.empty()) continue;
          if (!report.empty()) report += "; ";
          report += part;
        }
      } catch (...) {
        report.clear();  // out of memory: the code alone must do
      }
      inbox_->leave_quiet();
      quiet = false;
      deadlock_cancelled_ = true;
      group_->declare_deadlock();
      group_->await_others_acting_on_deadlock();  // theirs first: see deadlock_acted()
      declare_deadlock(std::move(report));
      return deadlock_acted;
    }
  }
  quiet_ms_ = quiet_ms_ == 0 ? first_quiet_ms : std::min(2 * quiet_ms_, max_quiet_ms);
  return quiet_ms_;
}

// declare_deadlock records the report (the first one stands: fibers that shield
// themselves from the cancellation below may be found stuck again) and cancels
// every fiber here.
void scheduler::declare_deadlock(std::string report) noexcept {
  if (!std::exchange(deadlocked_, true)) deadlock_report_ = std::move(report);
  cancel_all();
}

void scheduler::join_group(scheduler_group* group, std::size_t index) noexcept {
  group_ = group;
  index_ = index;
  inbox_->attach_quiet_count(group ? &group->quiet_count() : nullptr);
}

// spin_for_inbox: true as soon as the inbox has items, false after spin_limit.
// Queued work in any member's steal queue ends the spin too (the caller then
// returns to the loop, whose next idle() steals it).
bool scheduler::spin_for_inbox(time_point now) const noexcept {
  constexpr auto spin_limit = std::chrono::microseconds(50);
  const time_point until = now + spin_limit;
  bool found = false;
  while (!found) {
    for (int i = 0; i < 512; ++i) {  // a clock read every 512 pauses: 5 to 25 us, by CPU
      if (inbox_->has_items_relaxed() || (group_->has_queued_work() && !shutting_down_)) {
        found = true;
        break;
      }
      __builtin_ia32_pause();
    }
    if (!found && clock::now() >= until) break;
  }
  return found;
}

template <class Done>
void scheduler::loop_until(Done done) {
  while (!done()) {
    if (std::exchange(look_due_, false)) catch_up();  // a fiber's pick_next handed us the look
    if (fiber_record* next = ready_.pop()) {
      this_fiber_scheduler = this;
      switch_to(&loop_, next);
      this_fiber_scheduler = nullptr;
      continue;
    }
    if (start_own_queued() || start_posted()) continue;
    idle();
  }
}

void scheduler::cancel_all() noexcept {
  for (fiber_record* f = alive_head_; f; f = f->next_alive_) cancel(f);
}

// report_if_shutdown_stuck: shut_down() has waited run_options::shutdown_report_after
// for fibers that outlive their cancellation; run() would look hung without a word
// (asyncio.run and Go say nothing either). Says so once, and the waiting goes on.
// Due only once nothing here is runnable (a cancelled fiber may be on its way
// out), or once no fiber has ended for 100 ms while some stay runnable (a yield
// loop that never blocks; fibers that keep ending are a busy shutdown). Lists this
// scheduler's fibers alone: the other members are still running theirs.
void scheduler::report_if_shutdown_stuck() noexcept {
  // Posts still waiting to start keep the shutdown busy, not stuck (a breaker's
  // finding: "0 fibers have not ended" while a thousand waited).
  if (alive_ == 0 || !posts_started()) return;
  const time_point now = clock::now();
  if (now < shutdown_report_at_) return;
  if (!ready_.empty()) {
    // Fibers still ending (posts starting and running at shutdown): busy, not stuck.
    if (alive_ != alive_at_last_look_) {
      alive_at_last_look_ = alive_;
      last_end_seen_ = now;
      return;
    }
    if (now - last_end_seen_ < std::chrono::milliseconds(100)) return;
  }
  shutdown_report_at_ = no_deadline;
  try {
    const bool one = alive_ == 1;
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - shutdown_began_).count();
    std::string out = "weft::run: the shutdown began ";
    out += waited < 10'000 ? std::to_string(waited) + " ms" : std::to_string(waited / 1000) + " s";
    out += " ago (main returned, or background_runtime::stop()), and ";
    out += one ? "1 fiber" : std::to_string(alive_) + " fibers";
    if (group_ != nullptr) out += " of scheduler " + std::to_string(index_);
    out += one ? " has not ended since the shutdown cancelled it" : " have not ended since the shutdown cancelled them";
    out += " (a fiber that catches weft::cancelled_error and goes on, or waits long inside a shield, keeps "
           "run() from returning; run() waits for ";
    out += one ? "it): " : "them): ";
    out += describe_parked(/*all_members=*/false, /*with_runnable=*/true);
    out += '\n';
    std::fputs(out.c_str(), stderr);
  } catch (...) {
    std::fputs("weft::run: main returned, and fibers have not ended since the shutdown cancelled them\n", stderr);
  }
}

void scheduler::run(fiber_record* main) {
  main->returns_to_loop_ = true;
  loop_until([&] { return main->done_.load(std::memory_order_relaxed); });
  if (group_) group_->request_stop();  // every scheduler of the runtime shuts down now
  shut_down();
}

void scheduler::serve() {
  loop_until([&] { return inbox_->stop_requested(); });
  shut_down();
}

// shut_down: cancel every fiber and wait for all of them. Posts and starts accepted
// before this point still run (a submit()'s future gets its value or its
// cancellation); later ones are refused.
//
// In a runtime of several schedulers, a fiber here may still be waited for, woken
// or detached by fibers of the others after our last fiber finished; so each
// scheduler goes on applying requests until every scheduler has no fiber left.
// None can start a fiber then (starts are refused), so that moment is final.
void scheduler::shut_down() {
  inbox_->close(inbox_requests_, posts_started() ? &inbox_posts_ : nullptr);
  apply_taken();
  shutting_down_ = true;
  shutdown_began_ = clock::now();
  shutdown_report_at_ = deadline_after(shutdown_began_, shutdown_report_after_);
  cancel_all();
  while (start_own_queued()) {
    // on_any fibers nobody took start now, cancelled (start() sees shutting_down_)
  }
  loop_until([&] {
    // Posts still waiting start (cancelled, at their first blocking call) first.
    if (alive_ == 0 && posts_started() && !inbox_->has_posts()) return true;
    if (shutdown_report_at_ != no_deadline) report_if_shutdown_stuck();
    return false;
  });
  if (group_) {
    group_->member_drained();
    loop_until([&] { return group_->all_drained(); });
    if (index_ == 0) group_->run_last_drain_work();  // no fiber of the runtime is left to add any
  }
}

}  // namespace weft::detail
