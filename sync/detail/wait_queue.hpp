// wait_queue.hpp: the FIFO of fibers waiting on a sync/ primitive.
//
// Every primitive here is some state plus wait queues, all guarded by one
// biased_lock. The protocol, in the words of one waiter W and one waker K:
//
//   W: lock; state says "wait"; fill a waiter (on W's stack) and push it; take a
//      park token; unlock; park.
//   K: lock; pop W (queued = false); complete W's operation *for* it (hand it the
//      value, the permit, the ownership); wake W's token; unlock.
//
// Who was served is decided under the lock, never by the wake-up itself: if W's
// park ends by deadline or cancellation, W locks again and looks at `queued`. Still
// queued: W unlinks itself and reports the timeout or cancellation, and no waker can
// reach it any more. Not queued: a waker already completed W's operation, so W
// reports success (a cancellation that lost this race stays pending for the next
// blocking call). So nothing is done twice, nothing is lost, and a waiter that
// leaves never makes the queue skip the one behind it.
//
// Threads: K wakes W while still holding the lock, so W's record is alive for the
// wake (W cannot get past its re-lock before K unlocks). scheduler::wake() reaches
// a fiber of another scheduler through its inbox, so nothing in the queues assumes
// one thread; only the biased_lock orders their state.
//
// A select (select.hpp) puts one waiter per case in several queues, all sharing one
// park token and one select_group: a waker must first *claim* the group, and only
// the first claim wins; the losers' waiters are dropped from their queues as found.
//
// Destruction with waiters. A primitive destroyed while fibers wait on it does not
// end the program: its destructor calls abandon_waiters, which (lock held) unlinks
// every waiter, marks it *abandoned* and wakes it like a waker would; the woken call
// sees the mark and throws weft::error(errc::destroyed_while_waiting) naming itself
// (throw_abandoned). The wake says `timed_out`, so that only await_served's slow
// path, never the served path, looks for the mark (wait_outcome::abandoned).
//
// A waiter that a *waker* let go may still lock the primitive too: one served (or,
// for a select's case that lost, dropped) while its park had already ended by
// deadline or cancellation re-locks it to look at `queued` (a select, to withdraw
// its cases); and a waiter on another thread cannot be told, when it is served,
// which way it will wake. So the waker counts every waiter it lets go that may
// still lock (all but a fiber of its own thread whose park its wake ended: the
// hand-off's fast path, where a select leaves the winner's channel alone,
// select.hpp) in the queue's `relockers`, and names the queue in the waiter
// (`relock_queue`); the waiter uncounts itself (release) after its last touch. The
// destructor waits for the count as it waits for abandoned waiters (below). Until
// 2026-12-06 it did not: `ch.send(v)` to a select, or a set() to a waiter whose
// deadline had just passed, followed at once by the primitive's destruction, let
// the waiter lock freed memory.
//
// The hard part is the memory: a waiter may still touch the primitive after the
// destructor has unlinked it,
//   - a waiter whose park already ended by deadline or cancellation (on this thread:
//     queued to run; on another: running, or about to) re-locks the primitive to
//     look at `queued` (await_served's slow path);
//   - a select re-locks every channel of its cases to withdraw them, also the case
//     a destroyed channel dropped without claiming it.
// So the destructor does not return while any of them may still do that. The mark
// is the waiter's park token, which no one reads after the unlink: fiber = null,
// generation = the address of an abandon_ack on the destructor's stack, whose
// `pending` counts the marked waiters. Every marked waiter, once past its last
// touch of the primitive (after its re-lock and unlock, if any), decrements
// `pending` (release) as the very last thing it does with the primitive or the ack;
// the destructor first releases the lock (so the re-locks can proceed), then waits
// (acquire) until `pending` is 0, yielding its fiber meanwhile so that waiters of
// its own thread can run (a plain thread just yields the CPU). Only then does it
// return and the memory go. The served path pays nothing.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <thread>
#include <utility>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/always_inline.hpp>
#include <weft/runtime/detail/assert.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>

namespace weft::detail {

struct select_group {
  static constexpr int none = -1;
  std::atomic<int> winner{none};
  bool claim(int index) noexcept {
    int expected = none;
    return winner.compare_exchange_strong(expected, index, std::memory_order_acq_rel,
                                          std::memory_order_acquire);
  }
};

// A waiter lives on its fiber's stack for one wait, and is built on every blocking
// call that waits: only what is read before push_back sets it starts initialised
// (the links and `queued` are push_back's, the token is enqueue_waiter's).
class wait_queue;

struct waiter {
  waiter() noexcept {}     // leaves the links for push_back
  waiter* prev;            // links in one wait_queue, while `queued`
  waiter* next;
  bool queued;             // guarded by the primitive's lock; set by push_back
  park_token token{};
  select_group* group = nullptr;  // set for the cases of a select
  int case_index = 0;
  // Set by the waker that let this waiter go if it counted it in that queue's
  // relockers (see the top of this file); the waiter uncounts itself.
  wait_queue* relock_queue = nullptr;

  // claim is a waker's right to complete this wait: always, for a plain waiter;
  // for a select's case, only if no other case of that select completed first.
  bool claim() noexcept { return group == nullptr || group->claim(case_index); }
};

// abandoned: a waiter served by its primitive's destruction (its own record).
inline bool abandoned(const waiter& w) noexcept { return w.token.fiber == nullptr; }

class wait_queue {
 public:
  wait_queue() = default;
  wait_queue(const wait_queue&) = delete;
  wait_queue& operator=(const wait_queue&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  // size walks the queue (for tests and diagnostics).
  std::size_t size() const noexcept {
    std::size_t n = 0;
    for (const waiter* w = head_; w != nullptr; w = w->next) ++n;
    return n;
  }

  void push_back(waiter* w) noexcept {
    w->next = nullptr;
    w->prev = tail_;
    if (tail_)
      tail_->next = w;
    else
      head_ = w;
    tail_ = w;
    w->queued = true;
  }

  void remove(waiter* w) noexcept {
    WEFT_ASSERT(w->queued && (w->prev ? w->prev->next == w : head_ == w) &&
                (w->next ? w->next->prev == w : tail_ == w));
    if (w->prev)
      w->prev->next = w->next;
    else
      head_ = w->next;
    if (w->next)
      w->next->prev = w->prev;
    else
      tail_ = w->prev;
    w->queued = false;
  }

  // pop_claimed unlinks waiters from the front until one can be claimed, and
  // returns it (nullptr if none); the caller completes its operation and wakes it
  // with wake_served. Waiters of selects completed elsewhere are dropped (and
  // counted: their select re-locks this primitive to withdraw them).
  waiter* pop_claimed() noexcept {
    while (waiter* w = head_) {
      head_ = w->next;
      if (head_)
        head_->prev = nullptr;
      else
        tail_ = nullptr;
      w->queued = false;
      w->relock_queue = this;
      if (w->claim()) [[likely]]
        return w;
      count_relocker();
    }
    return nullptr;
  }

  // Waiters let go that may still lock the primitive (see the top of this file).
  void count_relocker() noexcept { relockers_.fetch_add(1, std::memory_order_relaxed); }
  void uncount_relocker() noexcept { relockers_.fetch_sub(1, std::memory_order_release); }
  bool has_relockers() const noexcept { return relockers_.load(std::memory_order_acquire) != 0; }

  // drain_claimed pops every claimable waiter, front to back, and calls fn on it.
  template <class Fn>
  void drain_claimed(Fn fn) noexcept {
    while (waiter* w = pop_claimed()) fn(w);
  }

  // pop_any unlinks the first waiter, claimable or not (abandon_waiters).
  waiter* pop_any() noexcept {
    waiter* w = head_;
    if (w) remove(w);
    return w;
  }

 private:
  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
  std::atomic<std::uint32_t> relockers_{0};
};

// wake_served wakes a waiter that a waker popped (pop_claimed) and completed (lock
// held); `here` is the waker's scheduler, if it has it at hand. Only a fiber of
// this thread whose park this wake ended is sure not to lock the primitive again
// (a select woken so leaves the winner's channel alone, select.hpp); every other
// is counted (see the top of this file).
WEFT_ALWAYS_INLINE inline void wake_served(waiter* w, scheduler* here) noexcept {
  if (here != nullptr && w->token.fiber->owner_.load(std::memory_order_relaxed) == here) [[likely]] {
    // A fiber of this thread, which has not run since: the wake says whether it
    // ended the park (then the waiter never locks again) or found it over.
    if (scheduler::wake_here(w->token, wake_reason::notified, here)) [[likely]]
      w->relock_queue = nullptr;
    else
      w->relock_queue->count_relocker();
    return;
  }
  // Counted before the wake: elsewhere the waiter may run, uncount and return at once.
  w->relock_queue->count_relocker();
  scheduler::wake(w->token, wake_reason::notified, here);
}
WEFT_ALWAYS_INLINE inline void wake_served(waiter* w) noexcept { wake_served(w, this_thread_scheduler); }

// settle_relock: the waiter's last touch of the primitive is behind it; uncount it
// if its waker counted it.
WEFT_ALWAYS_INLINE inline void settle_relock(waiter& w) noexcept {
  if (w.relock_queue != nullptr) [[unlikely]]
    w.relock_queue->uncount_relocker();
}

enum class wait_outcome {
  served,     // a waker completed the operation
  timed_out,  // the deadline passed first
  cancelled,  // the fiber was cancelled (or its deadline scope expired) first
  abandoned,  // the primitive is being destroyed (see the top of this file)
};

struct no_withdraw {
  void operator()() const noexcept {}
};

// enqueue_waiter takes a park token for the running fiber and queues `w` with it
// (lock held), and returns the token for await_served. Between the two the caller
// may release other locks (a condition variable releases its mutex there): a
// wake-up from now on is kept.
// `waits_on` (a static string) names the user's call for a deadlock report.
// `Parker` is the fiber's scheduler, or a plain thread's thread_parker (the same
// prepare_park and park; thread_parker.hpp), here and in the functions below.
template <class Parker>
WEFT_ALWAYS_INLINE inline park_token enqueue_waiter(Parker& s, wait_queue& q, waiter& w,
                                                        const char* waits_on = nullptr) noexcept {
  const park_token token = s.prepare_park(waits_on);
  w.token = token;
  q.push_back(&w);
  return token;
}

inline void acknowledge_abandon(const waiter& w) noexcept;  // below

// await_served parks until a waker serves `w` (queued with `token`), the deadline
// passes or the fiber is cancelled. Call it with `lock` released. The token comes
// from enqueue_waiter, in registers: reading it back from `w` after the unlock
// would cost loads on the path to the switch. A waiter that leaves unserved unlinks
// itself and calls `withdraw` under the lock (a barrier uncounts its arrival).
// With cancellable == false a cancellation does not end the wait: it stays pending
// and the next blocking call delivers it (a condition variable re-taking its mutex
// must not give up).
template <class Parker, class Lock, class Withdraw = no_withdraw>
WEFT_ALWAYS_INLINE inline wait_outcome await_served(Parker& s, Lock& lock, wait_queue& q, waiter& w,
                                                       park_token token, time_point deadline,
                                                       bool cancellable = true, Withdraw withdraw = {}) noexcept {
  fiber_record* self = token.fiber;
  // A wait that must not give up runs shielded: a cancellation stays pending and
  // deadline scopes do not apply.
  std::optional<shield_guard> shield;
  if (!cancellable) [[unlikely]]
    shield.emplace(self);
  wait_outcome outcome = wait_outcome::served;
  for (;;) {
    const wake_reason why = s.park(token, deadline);
    if (why == wake_reason::notified) [[likely]] {
      settle_relock(w);  // only our waker holds the token
      break;
    }
    lock.lock();
    if (!w.queued) {  // served while our deadline or cancellation fired, or abandoned
      lock.unlock();
      if (abandoned(w)) [[unlikely]] {
        if (why != wake_reason::cancelled) {
          outcome = wait_outcome::abandoned;
          break;
        }
        // Our cancellation ended the wait before the primitive went, so that is what
        // the call reports: the children of a cancelled task group, unwinding past
        // a channel their scope destroys, end cancelled, not failed.
        acknowledge_abandon(w);
        outcome = wait_outcome::cancelled;
        break;
      }
      if (why == wake_reason::cancelled) scheduler::keep_cancel_pending(self);
      settle_relock(w);
      break;
    }
    q.remove(&w);
    withdraw();
    lock.unlock();
    outcome = why == wake_reason::timed_out ? wait_outcome::timed_out : wait_outcome::cancelled;
    break;
  }
  return outcome;
}

// block_on is the whole wait: call it with `lock` held; it returns with it released.
// `waits_on` (a static string) names the user's call ("weft::event::wait"), which a
// deadlock report shows for the fiber.
template <class Parker, class Lock, class Withdraw = no_withdraw>
WEFT_ALWAYS_INLINE inline wait_outcome block_on(Parker& s, Lock& lock, wait_queue& q, waiter& w,
                                                   const char* waits_on, time_point deadline,
                                                   bool cancellable = true, Withdraw withdraw = {}) noexcept {
  const park_token token = enqueue_waiter(s, q, w, waits_on);
  lock.unlock();
  return await_served(s, lock, q, w, token, deadline, cancellable, withdraw);
}
template <class Parker, class Lock, class Withdraw = no_withdraw>
WEFT_ALWAYS_INLINE inline wait_outcome block_on(Parker& s, Lock& lock, wait_queue& q, waiter& w,
                                                   time_point deadline, bool cancellable = true,
                                                   Withdraw withdraw = {}) noexcept {
  return block_on(s, lock, q, w, nullptr, deadline, cancellable, withdraw);
}

// served_or_throw turns a wait's outcome into "served?" for the calls that
// report a deadline as false and a cancellation as cancelled_error.
inline bool served_or_throw(wait_outcome outcome, const char* call) {
  if (outcome == wait_outcome::cancelled) throw_cancelled(call);
  return outcome == wait_outcome::served;  // (abandoned is handled by the overload below)
}

// ---- destruction with waiters (see the top of this file) ----------------------------

// abandon_ack: on the destructor's stack; `pending` counts marked waiters that may
// still touch the primitive.
struct abandon_ack {
  std::atomic<std::size_t> pending{0};
};


// acknowledge_abandon is a marked waiter's last touch of the primitive's world.
inline void acknowledge_abandon(const waiter& w) noexcept {
  reinterpret_cast<abandon_ack*>(static_cast<std::uintptr_t>(w.token.generation))
      ->pending.fetch_sub(1, std::memory_order_release);
}

// throw_abandoned acknowledges and throws errc::destroyed_while_waiting naming the
// call (what() reads "weft::channel::send: destroyed while this fiber waited on it";
// a plain thread's wait, in a channel or a queue, says "this thread").
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_abandoned(const waiter& w, const char* call) {
  acknowledge_abandon(w);
  if (this_fiber_scheduler == nullptr)
    throw error(errc::destroyed_while_waiting, call, "destroyed while this thread waited on it");
  throw error(errc::destroyed_while_waiting, call);
}

// served_or_throw, for a wait that may be abandoned: `call` names it in the error.
WEFT_ALWAYS_INLINE inline bool served_or_throw(wait_outcome outcome, const waiter& w, const char* call) {
  if (outcome == wait_outcome::served) [[likely]]
    return true;
  if (outcome == wait_outcome::abandoned) throw_abandoned(w, call);
  return served_or_throw(outcome, call);
}

// abandon_queue (lock held) unlinks every waiter of `q`, marks it abandoned and
// wakes it if it can still be claimed (a select's case that lost is only marked:
// the select is awake already, and acknowledges when it withdraws its cases).
inline void abandon_queue(wait_queue& q, abandon_ack& ack) noexcept {
  while (waiter* w = q.pop_any()) {
    const park_token token = w->token;
    const bool claimed = w->claim();
    ack.pending.fetch_add(1, std::memory_order_relaxed);
    w->token = park_token{nullptr, static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&ack))};
    // Woken as if by its deadline, not `notified`: the served path then stays free
    // of any check, and the waiter's slow path (which re-locks and looks at its
    // record anyway) finds the mark. A deadline scope may report the wake as its
    // expiry; the slow path's keep_cancel_pending undoes that.
    if (claimed) scheduler::wake(token, wake_reason::timed_out);
  }
}

// await_acknowledgements: the destructor's wait (lock released) until no marked
// waiter, and no waiter a waker let go (`relocking()`), can touch the primitive.
// yield_while_destroying lets the waiters a destructor waits for run: it yields the
// fiber (a plain thread yields the CPU).
inline void yield_while_destroying(const char* what) noexcept {
  if (scheduler* s = this_fiber_scheduler) {
    s->yield();
    return;
  }
  if (this_thread_scheduler != nullptr) {
    // On a scheduler's own context (not in a fiber), the waiters of this thread
    // cannot run while we wait: nothing safe is left to do.
    std::fprintf(stderr, "weft: %s destroyed outside a fiber while fibers wait on it\n", what);
    std::terminate();
  }
  std::this_thread::yield();
}

template <class Relocking>
void await_acknowledgements(abandon_ack& ack, const char* what, Relocking relocking) noexcept {
  const auto busy = [&] { return ack.pending.load(std::memory_order_acquire) != 0 || relocking(); };
  while (busy()) yield_while_destroying(what);
}

// abandon_waiters is the whole destructor step for a primitive with one or more
// queues under `lock`. The look at the queues is made under the lock: a waiter that
// is withdrawing itself (deadline, cancellation) empties the queue before it
// unlocks, and the memory must outlive that unlock.
template <class Lock, class... Queues>
void abandon_waiters(Lock& lock, const char* what, Queues&... queues) noexcept {
  lock.lock();
  if (((queues.empty() && !queues.has_relockers()) && ...)) [[likely]] {
    lock.unlock();
    return;
  }
  abandon_ack ack;
  (abandon_queue(queues, ack), ...);
  lock.unlock();
  await_acknowledgements(ack, what, [&] { return (queues.has_relockers() || ...); });
}

}  // namespace weft::detail
