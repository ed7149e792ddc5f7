// select.hpp: wait on several channel operations, run the first that can happen.
//
//   weft::select(
//       weft::on_recv(jobs, [](std::optional<job> j) { ... }),  // nullopt: closed
//       weft::on_send(results, r, [] { ... }),                  // r moved only if sent
//       weft::on_recv(quit));                                    // handler optional
//
// Like Go's select: select() looks at every case; if some can complete now, it picks
// one of those at random (so no ready case starves another) and completes it;
// otherwise it waits until one can, completes exactly that one, and withdraws the
// others. Then it runs the chosen case's handler and returns the case's index (its
// position in the argument list).
//
//   - on_recv(ch, fn): receive; fn(std::optional<T>) gets the value, or nullopt if the
//     channel is closed and drained (a closed channel is always ready, as in Go).
//   - on_send(ch, v, fn): send v; fn() runs after. An lvalue v is moved from only if
//     this case is chosen; an rvalue is held by the case, and a const v copied into
//     it. A send case on a closed channel makes select throw channel_closed_error
//     (like send()).
//   - on_default(fn): if present, select never waits: when no case is ready, fn runs.
//   - on_recv(ch_ptr, fn) / on_send(ch_ptr, v, fn): the same with a pointer; a null
//     pointer is a case that is never ready (Go's nil channel), to switch a case off
//     without writing another select: on_recv(a_open ? &a : nullptr, fn).
//
// A closed channel's receive case is always ready. A loop that selects on it again
// and again never waits, and since weft does not preempt (like asyncio and
// Boost.Fiber, unlike Go) the other fibers of its scheduler do not run meanwhile:
// if the loop waits for one of them (a send case that only they serve), it spins
// for ever. Switch a closed channel's case off (a null pointer, above) once it has
// reported the close. A cancel() of such a loop is delivered only when it waits.
//
// select_until(deadline, cases...) / select_for(d, cases...) return std::nullopt
// instead of waiting past the deadline. A cancelled select throws cancelled_error
// having completed none of its cases; if a case completed in the same instant, that
// case wins (its handler runs) and the cancellation stays pending.
//
// Waiting selects are served like other waiters: in FIFO order per channel. Exactly
// one case completes; the others take and give nothing. If the channel of any case
// is destroyed while select waits, select wakes and throws
// weft::error(errc::destroyed_while_waiting) ("weft::select: ..."), having completed
// none of its cases, as every call waiting on a destroyed primitive does; unless
// another case had completed first: then that case wins as usual.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>
#include <weft/sync/channel.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/wait_queue.hpp>

namespace weft {

namespace detail {
struct no_handler {
  template <class... A>
  void operator()(A&&...) const noexcept {}
};
}  // namespace detail

template <class T, class F>
struct recv_case {
  channel<T>* ch;
  F fn;
};

template <class T, class F>
struct send_case {
  channel<T>* ch;
  T* lvalue;               // the caller's variable, or
  std::optional<T> owned;  // the value handed over as an rvalue
  F fn;
  T& value() noexcept { return lvalue ? *lvalue : *owned; }
};

template <class F>
struct default_case {
  F fn;
};

// on_recv and on_send with a channel pointer are the cases below with a channel;
// a null one makes a case that is never ready (Go's nil channel), whose lvalue v
// is left alone.
template <class T, class F = detail::no_handler>
recv_case<T, F> on_recv(channel<T>* ch, F fn = {}) {
  static_assert(std::is_invocable_v<F&, std::optional<T>&&>,
                "weft::on_recv(ch, fn): fn must take the channel's std::optional<T> (the value, or "
                "std::nullopt once the channel is closed and drained), e.g. [](std::optional<T> v) { ... }");
  return {ch, std::move(fn)};
}
template <class T, class F = detail::no_handler>
send_case<T, F> on_send(channel<T>* ch, T& v, F fn = {}) {
  static_assert(std::is_invocable_v<F&>, "weft::on_send(ch, v, fn): fn takes no argument (it runs once v is sent)");
  return {ch, &v, std::nullopt, std::move(fn)};
}
template <class T, class F = detail::no_handler>
send_case<T, F> on_send(channel<T>* ch, T&& v, F fn = {}) {
  static_assert(std::is_invocable_v<F&>, "weft::on_send(ch, v, fn): fn takes no argument (it runs once v is sent)");
  return {ch, nullptr, std::optional<T>(std::move(v)), std::move(fn)};
}
template <class T, class F = detail::no_handler>
send_case<T, F> on_send(channel<T>* ch, const T& v, F fn = {}) {
  return on_send(ch, T(v), std::move(fn));
}

// on_recv makes a receive case; fn(std::optional<T>) is optional.
template <class T, class F = detail::no_handler>
recv_case<T, F> on_recv(channel<T>& ch, F fn = {}) {
  return on_recv(&ch, std::move(fn));
}

// on_send makes a send case; fn() is optional.
template <class T, class F = detail::no_handler>
send_case<T, F> on_send(channel<T>& ch, T& v, F fn = {}) {
  return on_send(&ch, v, std::move(fn));
}
template <class T, class F = detail::no_handler>
send_case<T, F> on_send(channel<T>& ch, T&& v, F fn = {}) {
  return on_send(&ch, std::move(v), std::move(fn));
}
template <class T, class F = detail::no_handler>
send_case<T, F> on_send(channel<T>& ch, const T& v, F fn = {}) {
  return on_send(&ch, T(v), std::move(fn));
}

// on_default makes the case that runs when no other is ready (select never waits).
template <class F>
default_case<F> on_default(F fn) {
  static_assert(std::is_invocable_v<F&>, "weft::on_default(fn): fn takes no argument");
  return {std::move(fn)};
}

namespace detail {

// select_access reaches into channels for select's ops.
struct select_access {
  template <class T>
  static biased_lock& lock(channel<T>& ch) noexcept { return ch.lock_; }
  template <class T>
  static bool send_now(channel<T>& ch, T& v, channel_status& st) {
    return ch.send_now_any(v, st, scheduler::current());
  }
  template <class T>
  static bool recv_now(channel<T>& ch, std::optional<T>& out, channel_status& st) noexcept {
    return ch.recv_now_any(out, st, scheduler::current());
  }
  template <class T>
  static wait_queue& senders(channel<T>& ch) noexcept { return ch.senders_; }
  template <class T>
  static wait_queue& receivers(channel<T>& ch) noexcept { return ch.receivers_; }
};

// One op per case, living in select's frame. All but run() are called with the
// case's channel locked.
struct select_op {
  virtual biased_lock* lock() noexcept { return nullptr; }
  virtual bool is_default() const noexcept { return false; }
  virtual bool try_now() { return false; }
  virtual void enqueue(select_group*, int, park_token) noexcept {}
  // dequeue withdraws the case's waiter if still queued; true if its channel was
  // destroyed meanwhile (the waiter is marked abandoned, see wait_queue.hpp).
  virtual bool dequeue() noexcept { return false; }
  // served takes the outcome of a waker's completion; false if the waker only woke
  // the select to try again (a channel with a shared ring, channel.hpp), which the
  // select then owes the channel until it is done with it (release_retries).
  virtual bool served() noexcept { return true; }
  virtual void release_retries() noexcept {}
  // acknowledge_if_abandoned: true if the case's waiter was marked abandoned, which
  // it then acknowledges (with every channel lock released).
  virtual bool acknowledge_if_abandoned() noexcept { return false; }
  // settle: after the withdrawal pass, the case's last touch of its channel
  // (settle_relock, wait_queue.hpp); not virtual, every select pays it per case.
  void settle() noexcept {
    if (case_waiter != nullptr) settle_relock(*case_waiter);
  }
  virtual void run() = 0;

  waiter* case_waiter = nullptr;  // the case's waiter in its channel, once enqueued
  // gone: the case has no channel: it was given none (a null pointer: never
  // ready), or its channel was destroyed while the select waited (a select that
  // goes round again, woken to try again, leaves it alone).
  bool gone = false;

 protected:
  ~select_op() = default;
};

template <class C>
struct op_for;

template <class T, class F>
struct op_for<recv_case<T, F>> final : select_op {
  explicit op_for(recv_case<T, F>& chosen) : c(chosen) { gone = c.ch == nullptr; }
  recv_case<T, F>& c;
  channel_waiter<T> w;
  std::optional<T> out;
  channel_status status = channel_status::ok;

  biased_lock* lock() noexcept override { return gone ? nullptr : &select_access::lock(*c.ch); }
  bool try_now() override { return !gone && select_access::recv_now(*c.ch, out, status); }
  void enqueue(select_group* g, int i, park_token t) noexcept override {
    if (gone) return;
    w.group = g;
    w.case_index = i;
    w.token = t;
    w.how = channel_wake::transferred;
    w.relock_queue = nullptr;
    case_waiter = &w;  // here, not at construction: the op is moved into select's tuple
    select_access::receivers(*c.ch).push_back(&w);
  }
  bool dequeue() noexcept override {
    if (gone) return false;
    if (w.queued) select_access::receivers(*c.ch).remove(&w);
    return abandoned(w);
  }
  bool served() noexcept override {
    if (w.how == channel_wake::try_again) {
      ++owed_retries;
      return false;
    }
    status = w.how == channel_wake::closed ? channel_status::closed : channel_status::ok;
    if (status == channel_status::ok) out.emplace(std::move(*w.received));
    return true;
  }
  void release_retries() noexcept override {
    if (owed_retries != 0) channel_access::release_retries(*c.ch, std::exchange(owed_retries, 0));
  }
  std::uint32_t owed_retries = 0;
  bool acknowledge_if_abandoned() noexcept override {
    if (gone || !abandoned(w)) return false;
    release_retries();  // the channel waits for this too, then for the acknowledgement
    gone = true;
    case_waiter = nullptr;
    acknowledge_abandon(w);
    return true;
  }
  void run() override { c.fn(std::move(out)); }
};

template <class T, class F>
struct op_for<send_case<T, F>> final : select_op {
  explicit op_for(send_case<T, F>& chosen) : c(chosen) { gone = c.ch == nullptr; }
  send_case<T, F>& c;
  channel_waiter<T> w;
  channel_status status = channel_status::ok;

  biased_lock* lock() noexcept override { return gone ? nullptr : &select_access::lock(*c.ch); }
  bool try_now() override { return !gone && select_access::send_now(*c.ch, c.value(), status); }
  void enqueue(select_group* g, int i, park_token t) noexcept override {
    if (gone) return;
    w.group = g;
    w.case_index = i;
    w.token = t;
    w.how = channel_wake::transferred;
    w.relock_queue = nullptr;
    w.src = &c.value();
    case_waiter = &w;
    select_access::senders(*c.ch).push_back(&w);
  }
  bool dequeue() noexcept override {
    if (gone) return false;
    if (w.queued) select_access::senders(*c.ch).remove(&w);
    return abandoned(w);
  }
  bool served() noexcept override {
    if (w.how == channel_wake::try_again) {
      ++owed_retries;
      return false;
    }
    status = w.how == channel_wake::closed ? channel_status::closed : channel_status::ok;
    return true;
  }
  void release_retries() noexcept override {
    if (owed_retries != 0) channel_access::release_retries(*c.ch, std::exchange(owed_retries, 0));
  }
  std::uint32_t owed_retries = 0;
  bool acknowledge_if_abandoned() noexcept override {
    if (gone || !abandoned(w)) return false;
    release_retries();  // the channel waits for this too, then for the acknowledgement
    gone = true;
    case_waiter = nullptr;
    acknowledge_abandon(w);
    return true;
  }
  void run() override {
    if (status == channel_status::closed) throw channel_closed_error("weft::select");
    c.fn();
  }
};

template <class F>
struct op_for<default_case<F>> final : select_op {
  explicit op_for(default_case<F>& chosen) : c(chosen) {}
  default_case<F>& c;
  bool is_default() const noexcept override { return true; }
  void run() override { c.fn(); }
};

// select_random is a small per-thread generator for the choice among ready cases.
inline std::uint32_t select_random() noexcept {
  thread_local std::uint64_t state = 0x9e3779b97f4a7c15ull ^ reinterpret_cast<std::uintptr_t>(&state);
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<std::uint32_t>(state >> 32);
}

template <std::size_t N>
class lock_set {
 public:
  explicit lock_set(const std::array<select_op*, N>& ops) noexcept {
    for (select_op* op : ops)
      if (biased_lock* l = op->lock()) locks_[count_++] = l;
    // One order for every select, so two selects over the same channels from two
    // threads cannot deadlock; one lock per channel, however many cases use it.
    // (Insertion sort: a handful of elements, and std::sort's unrolled small-case
    // code trips GCC 12's -Warray-bounds on a fixed-size array.)
    for (std::size_t i = 1; i < count_; ++i)
      for (std::size_t j = i; j > 0 && std::less<>()(locks_[j], locks_[j - 1]); --j) std::swap(locks_[j], locks_[j - 1]);
    count_ = static_cast<std::size_t>(std::unique(locks_.begin(), locks_.begin() + count_) - locks_.begin());
  }
  std::size_t size() const noexcept { return count_; }
  void lock() noexcept {
    for (std::size_t i = 0; i < count_; ++i) locks_[i]->lock();
  }
  void unlock() noexcept {
    for (std::size_t i = count_; i > 0; --i) locks_[i - 1]->unlock();
  }
  // lock_except and unlock_except leave one lock alone (null: none).
  void lock_except(const biased_lock* skip) noexcept {
    for (std::size_t i = 0; i < count_; ++i)
      if (locks_[i] != skip) locks_[i]->lock();
  }
  void unlock_except(const biased_lock* skip) noexcept {
    for (std::size_t i = count_; i > 0; --i)
      if (locks_[i - 1] != skip) locks_[i - 1]->unlock();
  }

 private:
  std::array<biased_lock*, N> locks_{};
  std::size_t count_ = 0;
};

template <std::size_t N>
std::optional<std::size_t> select_ops(const std::array<select_op*, N>& ops, time_point deadline, const char* call) {
  int default_index = -1;
  for (std::size_t i = 0; i < N; ++i)
    if (ops[i]->is_default()) {
      if (default_index >= 0) throw error(errc::invalid_argument, call, "more than one on_default case");
      default_index = static_cast<int>(i);
    }
  scheduler* s = default_index < 0 ? &scheduler::require_fiber(call) : nullptr;

  // Ready cases are tried in a random order (Fisher-Yates), so none starves.
  std::array<std::size_t, N> order;
  for (std::size_t i = 0; i < N; ++i) order[i] = i;
  for (std::size_t i = N; i > 1; --i) std::swap(order[i - 1], order[select_random() % i]);

  lock_set<N> locks(ops);
  // A case woken to try again touches its channel once more; the channel's
  // destructor waits until the select is past its last touch (channel.hpp): before
  // a handler runs (it may destroy the channel), or when the select throws.
  struct release_retries_at_exit {
    const std::array<select_op*, N>& ops;
    bool owed = false;  // set at the first wake to try again: most selects never are
    void operator()() noexcept {
      if (!owed) [[likely]]
        return;
      owed = false;
      for (select_op* op : ops) op->release_retries();
    }
    ~release_retries_at_exit() { (*this)(); }
  } release_retries{ops};
  // One pass per wake-up: a case woken to try again sends the select round again,
  // and is tried first then: the wake was for the value or room it found, and
  // another case taking its turn would leave that for nobody (a waker wakes one).
  std::size_t retried = N;
  for (;;) {
    {
      std::unique_lock guard(locks);
      if (retried < N && ops[retried]->try_now()) {
        guard.unlock();
        release_retries();
        ops[retried]->run();
        return retried;
      }
      for (std::size_t i : order)
        if (i != retried && ops[i]->try_now()) {
          guard.unlock();
          release_retries();
          ops[i]->run();
          return i;
        }
      if (default_index >= 0) {
        guard.unlock();
        release_retries();
        ops[default_index]->run();
        return static_cast<std::size_t>(default_index);
      }
      guard.release();
    }

    // Nothing ready: one waiter per case, one token for all of them.
    select_group group;
    const park_token token = s->prepare_park(call);
    for (std::size_t i = 0; i < N; ++i) ops[i]->enqueue(&group, static_cast<int>(i), token);
    locks.unlock();
    const wake_reason why = s->park(token, deadline);
    // Withdraw every case still queued. After this pass no waker can reach our
    // waiters, and a waker that claimed the group did so (and completed its case)
    // inside a lock we have since taken: `winner` is final and its transfer visible.
    // Woken by the winner's waker (notified), the winner is final already and its
    // channel is left alone: that channel may be destroyed the moment its waker is
    // done, and its waker counted us only if it could not know we were woken so
    // (wait_queue.hpp). Its lock is taken only if another case waits there too.
    bool any_abandoned = false;
    if (why == wake_reason::notified) [[likely]] {
      const int claimed = group.winner.load(std::memory_order_acquire);
      WEFT_ASSERT(claimed >= 0);  // only a waker that claimed the group wakes it `notified`
      const auto winner = static_cast<std::size_t>(claimed);
      const biased_lock* skip = ops[winner]->lock();
      for (std::size_t i = 0; i < N; ++i)
        if (i != winner && ops[i]->lock() == skip) skip = nullptr;  // another case waits there
      locks.lock_except(skip);
      for (std::size_t i = 0; i < N; ++i)
        if (i != winner) any_abandoned |= ops[i]->dequeue();
      locks.unlock_except(skip);
    } else {
      locks.lock();
      for (select_op* op : ops) any_abandoned |= op->dequeue();
      locks.unlock();
    }
    for (select_op* op : ops) op->settle();  // no channel is touched from here on
    const int won = group.winner.load(std::memory_order_acquire);
    if (any_abandoned) [[unlikely]] {
      // A channel destroyed meanwhile waits for its cases' acknowledgement (the pass
      // above re-locked it); from here on no channel of a case is touched.
      bool won_abandoned = false;
      for (std::size_t i = 0; i < N; ++i)
        if (ops[i]->acknowledge_if_abandoned() && static_cast<int>(i) == won) won_abandoned = true;
      if (won_abandoned) {
        // Cancelled before the channel went: the cancellation is what it reports
        // (as await_served does, wait_queue.hpp).
        if (why == wake_reason::cancelled) throw_cancelled(call);
        throw error(errc::destroyed_while_waiting, call);
      }
    }
    if (won >= 0) {
      if (why == wake_reason::cancelled) scheduler::keep_cancel_pending(s->running());
      // Woken to try again (a channel with a shared ring): start over.
      if (!ops[won]->served()) {
        release_retries.owed = true;
        retried = static_cast<std::size_t>(won);
        if (any_abandoned) {
          // Round again without the destroyed channels' cases.
          locks = lock_set<N>(ops);
          if (locks.size() == 0) throw error(errc::destroyed_while_waiting, call);
        }
        continue;
      }
      release_retries();
      ops[won]->run();
      return static_cast<std::size_t>(won);
    }
    if (why == wake_reason::cancelled) throw_cancelled(call);
    return std::nullopt;  // timed out
  }
}

template <class... Cases>
std::optional<std::size_t> select_cases(time_point deadline, const char* call, Cases&... cases) {
  std::tuple<op_for<Cases>...> ops{op_for<Cases>(cases)...};
  std::array<select_op*, sizeof...(Cases)> list =
      std::apply([](auto&... op) { return std::array<select_op*, sizeof...(Cases)>{&op...}; }, ops);
  return select_ops(list, deadline, call);
}

}  // namespace detail

// select waits until one case completes (or runs on_default), runs that case's
// handler and returns its index. Throws cancelled_error, channel_closed_error (a
// send case on a closed channel), and errc::not_in_fiber when it could wait outside
// a fiber.
template <class... Cases>
std::size_t select(Cases&&... cases) {
  static_assert(sizeof...(Cases) > 0, "weft::select needs at least one case");
  return *detail::select_cases(no_deadline, "weft::select", cases...);
}

// select_until is select that gives up at `deadline`: std::nullopt, no case done.
template <class... Cases>
std::optional<std::size_t> select_until(time_point deadline, Cases&&... cases) {
  static_assert(sizeof...(Cases) > 0, "weft::select_until needs at least one case");
  return detail::select_cases(deadline, "weft::select_until", cases...);
}

template <class Rep, class Period, class... Cases>
std::optional<std::size_t> select_for(std::chrono::duration<Rep, Period> d, Cases&&... cases) {
  static_assert(sizeof...(Cases) > 0, "weft::select_for needs at least one case");
  return detail::select_cases(deadline_after(d), "weft::select_for", cases...);
}

}  // namespace weft
