#include "runtime/detail/scheduler.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <unordered_set>

#include "runtime/detail/sanitizer.hpp"
#include "runtime/detail/task.hpp"
#include "runtime/error.hpp"
#include "runtime/unhandled_exception.hpp"

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

scheduler::scheduler(const scheduler_options& options)
    : inbox_(std::make_shared<remote_inbox>()),
      reactor_(inbox_->event_fd()),
      timers_(clock::now()),
      stacks_(options.stack_size, options.guards),
      stack_size_(options.stack_size) {
  if (this_thread_scheduler != nullptr)
    throw error(errc::scheduler_running, "weft::run: this thread already runs a scheduler");
  {
    std::lock_guard lock(live_schedulers_mutex);
    live_schedulers.insert(this);
  }
  this_thread_scheduler = this;
  loop_.owner_ = this;
  loop_.tsan_fiber_ = tsan_current_fiber();
  loop_.name_ = "<scheduler>";
}

scheduler::~scheduler() {
  {
    std::lock_guard lock(live_schedulers_mutex);
    live_schedulers.erase(this);
  }
  // Requests that arrived after the last look: every fiber has finished, so only
  // the references they hold are left to drop.
  inbox_->take(inbox_wakes_, inbox_posts_);
  for (const remote_wake& w : inbox_wakes_) release_record(w.token.fiber);
  inbox_->shutdown();
  this_thread_scheduler = nullptr;
}

void scheduler::throw_not_in_fiber(const char* what) {
  throw error(errc::not_in_fiber, std::string(what) + " must be called from a weft fiber");
}

// ---- starting and finishing ---------------------------------------------------------

void scheduler::start(fiber_record* rec, std::size_t stack_size) {
  const stack s = stacks_.acquire(stack_size == 0 ? stack_size_ : stack_size);
  rec->owner_ = this;
  rec->stack_ = s;
  rec->asan_bottom_ = s.bottom;
  rec->asan_size_ = s.size;
  if (next_id_ == last_id_) {
    next_id_ = next_id_block.fetch_add(id_block, std::memory_order_relaxed);
    last_id_ = next_id_ + id_block;
  }
  rec->id_ = next_id_++;
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

// fiber_main is a TSan switch point: a fiber that starts right after another
// finished arrives here still under the finished fiber's TSan identity (after_switch
// switches), and an instrumented fiber_main would record its entry there and its
// exit on this fiber's shadow stack. Its own accesses are owner-thread fields.
boost::context::fiber scheduler::fiber_main(fiber_record* rec, boost::context::fiber&& from) {
  scheduler* self = rec->owner_;
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
  if (rec->detached_) report_unretrieved(*rec);
  fiber_record* next = rec->returns_to_loop_ ? &loop_ : pick_next(++rec->park_generation_);
  // The loop releases this fiber's record, running its captures' destructors: on
  // the loop's own context, where blocking calls must be refused.
  if (next == &loop_) this_fiber_scheduler = nullptr;
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

void scheduler::catch_up() noexcept {
  if (timers_.has_due()) timers_.fire_due();
  poll_now();
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
  if (token.fiber->scope_deadline_ < deadline) return park_scoped(token, deadline);
  return park_plain(token, deadline);
}

wake_reason scheduler::park_scoped(park_token token, time_point deadline) noexcept {
  fiber_record* self = token.fiber;
  const time_point scope = self->scope_deadline_;
  if (scope <= clock::now()) {
    // Expired already: report it without suspending, unless a wake got in first.
    if (end_park(self, token.generation, wake_reason::cancelled)) {
      self->scope_expired_ = true;
      return wake_reason::cancelled;
    }
    return park_plain(token, deadline);
  }
  const wake_reason why = park_plain(token, scope);
  if (why != wake_reason::timed_out) return why;
  self->scope_expired_ = true;  // the scope's deadline, not the call's, ended the park
  return wake_reason::cancelled;
}

void throw_cancelled() {
  scheduler* s = scheduler::current();
  if (s != nullptr && s->running()->scope_expired_) {
    s->running()->scope_expired_ = false;
    throw timeout_error();
  }
  throw cancelled_error();
}

void scheduler::cancel(fiber_record* f) noexcept {
  if (f->done_.load(std::memory_order_acquire)) return;
  f->request_cancel();
  scheduler* owner = f->owner_;
  if (owner != this_thread_scheduler) {
    wake_remote(park_token{f, 0}, wake_reason::cancelled);
    return;
  }
  if (f->parked_in_ && f->shield_depth_ == 0) wake(park_token{f, f->parked_in_}, wake_reason::cancelled);
}

// A request from another thread cannot touch the park state; it goes into the
// owner's inbox. Two lifetimes need care: the record's (the sender takes a
// reference, the owner drops it) and the owner scheduler's (the fiber may finish
// and its scheduler end before the request lands, so the owner is looked up in the
// registry of live schedulers, under the lock its destructor also takes).
bool scheduler::wake_remote(park_token token, wake_reason why) noexcept {
  fiber_record* f = token.fiber;
  f->refs_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(live_schedulers_mutex);
    if (live_schedulers.contains(f->owner_)) {
      f->owner_->inbox_->push_wake(remote_wake{token, why});
      return true;
    }
  }
  release_record(f);  // its scheduler has ended, and so has every park it had
  return true;
}

void scheduler::apply_remote(const remote_wake& w) noexcept {
  fiber_record* f = w.token.fiber;
  const bool cancel_request = w.token.generation == 0;
  if (cancel_request) {
    // Only if still pending: the fiber may have seen the flag at a park already.
    if (f->cancel_requested() && f->parked_in_ && f->shield_depth_ == 0)
      wake(park_token{f, f->parked_in_}, wake_reason::cancelled);
  } else {
    wake(w.token, w.why);
  }
  release_record(f);
}

bool scheduler::wait_done(fiber_record* target, time_point deadline) {
  if (target->done_.load(std::memory_order_acquire)) return true;
  if (target->owner_ != this)
    throw error(errc::not_joinable,
                "waiting for a running fiber of another scheduler's thread is not supported");
  if (target == running_) throw error(errc::would_deadlock, "a fiber cannot join itself");
  if (target->joiner_) throw error(errc::already_waited, "another fiber already waits for this fiber");
  const park_token token = prepare_park();
  target->joiner_ = token;
  const wake_reason why = park(token, deadline);
  if (target->joiner_.fiber == token.fiber) target->joiner_ = {};
  if (why == wake_reason::cancelled) throw_cancelled();
  return target->done_.load(std::memory_order_acquire);
}

// ---- the loop (scheduler context) ------------------------------------------------------

void scheduler::take_inbox() noexcept {
  if (!inbox_->has_items()) return;
  inbox_->take(inbox_wakes_, inbox_posts_);
  for (const remote_wake& w : inbox_wakes_) apply_remote(w);
  for (auto& fn : inbox_posts_) start_detached(std::move(fn));
  inbox_wakes_.clear();
  inbox_posts_.clear();
}

// poll_now: a non-blocking look at everything that can make fibers runnable.
void scheduler::poll_now() noexcept {
  if (reactor_.poll(0)) inbox_->drain_event_fd();
  timers_.advance(clock::now());
  take_inbox();
}

void scheduler::idle() noexcept {
  timers_.advance(clock::now());
  take_inbox();
  if (!ready_.empty()) return;
  const int timeout = timers_.timeout_ms(clock::now());
  // Nothing runnable, no timer, no fd, and nobody outside holds a way in (a
  // scheduler_handle shares the inbox): no fiber can ever run again.
  if (timeout < 0 && reactor_.registered() == 0 && inbox_.use_count() == 1 && alive_ > 0) {
    deadlocked_ = true;
    cancel_all();
    return;
  }
  if (inbox_->begin_sleep()) {
    const bool woken = reactor_.poll(timeout);
    inbox_->end_sleep();
    if (woken) inbox_->drain_event_fd();
  } else {
    reactor_.poll(0);
  }
  timers_.advance(clock::now());
  take_inbox();
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
    idle();
  }
}

void scheduler::cancel_all() noexcept {
  for (fiber_record* f = alive_head_; f; f = f->next_alive_) cancel(f);
}

void scheduler::run(fiber_record* main) {
  main->returns_to_loop_ = true;
  loop_until([&] { return main->done_.load(std::memory_order_relaxed); });
  // Posts accepted before this point still run (a submit()'s future gets its value
  // or its cancellation); later ones are refused.
  for (auto& fn : inbox_->close()) start_detached(std::move(fn));
  shutting_down_ = true;
  cancel_all();
  loop_until([&] { return alive_ == 0; });
}

}  // namespace weft::detail
