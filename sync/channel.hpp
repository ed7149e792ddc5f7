// channel.hpp: typed FIFO channels between fibers (Go's chan, asyncio's Queue).
//
//   weft::channel<int> ch(16);                 // bounded: up to 16 buffered values
//   weft::spawn([&] { for (int i = 0; i < 100; ++i) ch.send(i); ch.close(); });
//   for (int& v : ch) use(v);                  // receives until closed and drained
//
// Three kinds, by capacity: `channel<T>()` is unbuffered (a rendezvous: send returns
// once a receiver has the value), `channel<T>(n)` buffers up to n values, and
// `channel<T>(weft::unbounded)` never makes a sender wait.
//
// Waiting: a send waits while the buffer is full (unbuffered: until a receiver
// comes), a receive while it is empty. Waiters are served in FIFO order, senders and
// receivers each, and a value goes straight from a waiting sender to a waiting
// receiver. Every blocking form has try_, _for and _until variants; only the calling
// fiber waits.
//
// Closing: close() wakes every waiter. Later sends fail (send throws
// channel_closed_error, the other forms return channel_status::closed); receivers
// first drain what is buffered, then see the end (recv returns std::nullopt).
//
// Nothing is lost: a send that fails (full, timeout, closed, cancelled) leaves the
// caller's value untouched (the T&& overloads move from it only on success), and a
// receive that times out or is cancelled took nothing. A cancelled fiber's waiting
// call throws cancelled_error and leaves the queue without making anyone behind it
// wait longer; if the operation completed in the same instant, it reports success
// and the cancellation stays pending for the fiber's next blocking call.
//
// Threads: every call may be made from any fiber of any scheduler and from any
// plain thread (one not running a scheduler); the channel's lock orders everything,
// with one exception below.
// On a plain thread the blocking forms (send, recv, their deadline forms and the
// range-for) block that thread alone until served, closed or past the deadline; a
// plain thread cannot be cancelled. On a scheduler's thread outside its fibers (a
// destructor the loop runs) they throw weft::error(errc::not_in_fiber). select is
// for fibers only. run() counts other threads as possible wakers: it reports no
// deadlock while one exists (see runtime/README.md).
//
// Shared between threads: a buffered channel (capacity from 1 up to what 1 MiB of
// slots holds) whose lock both sides took often enough to stop favouring one
// thread (biased_lock.hpp) switches, at its next wait, to a lock-free ring
// (detail/lockfree_ring.hpp): from then on a send or receive that finds room or a
// value takes no lock, and the lock only guards the wait queues. What changes: a
// waiter is woken to try again rather than handed a value, so a receiver (or
// sender) that arrives meanwhile may overtake one that waited (values stay in FIFO
// order; waiters are no longer served strictly first come, first served), and a
// waiting sender's value goes through the ring, never straight to a receiver.
// Unbuffered, unbounded and larger channels keep the lock for everything.
//
// A channel does not move (waiters point into it); share it by reference or
// std::shared_ptr. Destroying it while fibers wait in it wakes them: each waiting
// call (send, recv, the range-for, a select) throws
// weft::error(errc::destroyed_while_waiting), "weft::channel::send: destroyed while
// this fiber waited on it", and the destructor returns once none of them can touch
// the channel any more (also waiters of other threads; see wait_queue.hpp).
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/always_inline.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/thread_parker.hpp>
#include <weft/runtime/error.hpp>
#include <weft/sync/detail/lockfree_ring.hpp>
#include <weft/sync/detail/ring.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/wait_queue.hpp>

namespace weft {

// channel_status is the outcome of a channel operation that reports instead of
// throwing: the try_ and deadline forms.
enum class channel_status {
  ok,       // sent, or received a value
  empty,    // try_recv: nothing to receive now
  full,     // try_send: no room and no receiver now
  timeout,  // the deadline passed first
  closed,   // send: the channel is closed; recv: closed and drained
};

// channel_closed_error is what send() throws on a closed channel.
class channel_closed_error : public error {
 public:
  explicit channel_closed_error(const char* call = "weft::channel::send") : error(errc::channel_closed, call) {}
};

// unbounded selects a channel whose send never waits (it grows instead).
struct unbounded_t {
  explicit unbounded_t() = default;
};
inline constexpr unbounded_t unbounded{};

// recv_result is what try_recv and the deadline forms of recv return: a status,
// and the value when the status is ok.
template <class T>
struct recv_result {
  channel_status status = channel_status::empty;
  std::optional<T> value;

  explicit operator bool() const noexcept { return status == channel_status::ok; }
  T& operator*() & noexcept { return *value; }
  T&& operator*() && noexcept { return std::move(*value); }
  T* operator->() noexcept { return &*value; }
};

namespace detail {
struct select_access;
struct channel_access;

[[noreturn, gnu::cold, gnu::noinline]] inline void throw_bad_capacity(const std::string& why) {
  throw error(errc::invalid_argument,
              "weft::channel", "capacity " + why + " (for a channel without limit: weft::unbounded)");
}

// channel_waiter is a fiber waiting in send or recv, on its own stack.
// A waiting receiver's value is constructed in the receiver's own waiter (a slot
// weft owns), then moved into the result once the receiver is awake, so the
// caller's std::optional never escapes to another fiber (bench/NOTES.md has what
// this measured).
// How a waker ended a channel waiter's wait.
enum class channel_wake : std::uint8_t {
  transferred,  // the value went to or from the waiter
  closed,       // close(): nothing transferred
  try_again,    // nothing transferred: the waiter tries its operation again (a
                // channel with a shared ring wakes its waiters so, see the top)
};

template <class T>
struct channel_waiter : waiter {
  T* src = nullptr;            // a waiting sender's value: moved from when served
  std::optional<T> received;   // a waiting receiver's value: filled when served
  channel_wake how = channel_wake::transferred;
};

// shared_ring is a channel's buffer once it is shared between threads: the
// lock-free ring, and one flag per wait queue that says it may hold a waiter
// (read without the lock after every push and pop; see channel::wake_one).
// The busy counts are the calls inside send_shared and recv_shared: a sender's
// last touch (its look at the flag, maybe a wake) comes after its value is
// published, so a receiver may take that value and destroy the channel meanwhile;
// the destructor waits for the counts (each side's on a line of its own).
template <class T>
struct shared_ring {
  explicit shared_ring(std::size_t capacity) : ring(capacity) {}
  lockfree_ring<T> ring;
  alignas(64) std::atomic<bool> receivers_waiting{false};
  std::atomic<bool> senders_waiting{false};
  alignas(64) std::atomic<std::uint32_t> senders_busy{0};
  alignas(64) std::atomic<std::uint32_t> receivers_busy{0};
  bool busy() const noexcept {
    return senders_busy.load(std::memory_order_acquire) != 0 || receivers_busy.load(std::memory_order_acquire) != 0;
  }
};

// busy_while counts one call in a shared_ring's busy count while it lives.
class busy_while {
 public:
  explicit busy_while(std::atomic<std::uint32_t>& count) noexcept : count_(count) {
    count_.fetch_add(1, std::memory_order_relaxed);  // published by the value's stamp or the lock
  }
  busy_while(const busy_while&) = delete;
  busy_while& operator=(const busy_while&) = delete;
  ~busy_while() { count_.fetch_sub(1, std::memory_order_release); }

 private:
  std::atomic<std::uint32_t>& count_;
};
}  // namespace detail

template <class T>
class channel {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "weft::channel<T> needs a T whose move constructor cannot throw "
                "(values move under the channel's lock); wrap it in std::unique_ptr");

 public:
  using value_type = T;

  // channel(capacity) makes a channel buffering up to `capacity` values; 0 (the
  // default) makes an unbuffered one. A negative capacity, or one no memory could
  // hold (more than PTRDIFF_MAX / sizeof(T): a negative number converted to
  // size_t, say), is weft::error(errc::invalid_argument); a channel without limit
  // is channel(weft::unbounded).
  explicit channel(std::size_t capacity = 0) : capacity_(checked_capacity(capacity)) {}
  template <std::signed_integral I>
  explicit channel(I capacity) : channel(checked_capacity(capacity)) {}
  explicit channel(unbounded_t) : capacity_(std::numeric_limits<std::size_t>::max()) {}
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;
  // ~channel wakes any waiter with errc::destroyed_while_waiting (see above).
  ~channel() {
    detail::abandon_waiters(lock_, "weft::channel", senders_, receivers_);
    if (in_use()) [[unlikely]]
      await_retrying();
  }

  // capacity() is the buffer size given at construction (SIZE_MAX: unbounded).
  std::size_t capacity() const noexcept { return capacity_; }
  // size() is how many values are buffered right now.
  std::size_t size() const noexcept {
    std::lock_guard guard(lock_);
    if (const shared_type* shared = shared_.load(std::memory_order_relaxed)) return shared->ring.size();
    return buffer_.size();
  }
  bool closed() const noexcept {
    std::lock_guard guard(lock_);
    return closed_;
  }

  // send delivers v: to a waiting receiver, into the buffer, or (waiting while the
  // channel is full) to the first receiver to come. Throws channel_closed_error if
  // the channel is or gets closed, cancelled_error if the fiber is cancelled while
  // waiting; either way v is left as it was. From a fiber or a plain thread.
  WEFT_ALWAYS_INLINE void send(T&& v) {
    detail::scheduler* s = detail::this_fiber_scheduler;
    channel_status status;
    if (s == nullptr) [[unlikely]]
      status = send_from_thread(v, no_deadline, "weft::channel::send");
    else
      status = send_impl(v, s, no_deadline, "weft::channel::send");
    if (status == channel_status::closed) throw channel_closed_error();
  }
  void send(const T& v) requires std::is_copy_constructible_v<T> { send(T(v)); }

  // try_send sends v only if that needs no waiting: ok, full or closed.
  channel_status try_send(T&& v) { return send_impl(v, no_wait, no_deadline, "weft::channel::try_send"); }
  channel_status try_send(const T& v) requires std::is_copy_constructible_v<T> {
    T copy(v);
    return try_send(std::move(copy));
  }

  // send_until waits at most until `deadline`: ok, timeout or closed. Throws
  // cancelled_error if cancelled while waiting.
  channel_status send_until(T&& v, time_point deadline) {
    return send_waiting(v, deadline, "weft::channel::send_until");
  }
  channel_status send_until(const T& v, time_point deadline) requires std::is_copy_constructible_v<T> {
    T copy(v);
    return send_waiting(copy, deadline, "weft::channel::send_until");
  }
  template <class Rep, class Period>
  channel_status send_for(T&& v, std::chrono::duration<Rep, Period> d) {
    return send_waiting(v, deadline_after(d), "weft::channel::send_for");
  }
  template <class Rep, class Period>
  channel_status send_for(const T& v, std::chrono::duration<Rep, Period> d) requires std::is_copy_constructible_v<T> {
    T copy(v);
    return send_waiting(copy, deadline_after(d), "weft::channel::send_for");
  }

  // recv returns the next value, waiting for one while the channel is empty, or
  // std::nullopt once the channel is closed and drained. Throws cancelled_error if
  // cancelled while waiting. From a fiber or a plain thread.
  WEFT_ALWAYS_INLINE std::optional<T> recv() {
    detail::scheduler* s = detail::this_fiber_scheduler;
    std::optional<T> out;
    if (s == nullptr) [[unlikely]]
      recv_from_thread(out, no_deadline, "weft::channel::recv");
    else
      recv_impl(out, s, no_deadline, "weft::channel::recv");
    return out;
  }

  // try_recv receives only if that needs no waiting: ok (with the value), empty or
  // closed (and drained).
  recv_result<T> try_recv() {
    recv_result<T> r;
    r.status = recv_impl(r.value, no_wait, no_deadline, "weft::channel::try_recv");
    return r;
  }

  // recv_until waits at most until `deadline`: ok (with the value), timeout or
  // closed. Throws cancelled_error if cancelled while waiting.
  recv_result<T> recv_until(time_point deadline) { return recv_waiting(deadline, "weft::channel::recv_until"); }
  template <class Rep, class Period>
  recv_result<T> recv_for(std::chrono::duration<Rep, Period> d) {
    return recv_waiting(deadline_after(d), "weft::channel::recv_for");
  }

  // close ends the channel for senders: waiting senders fail (channel_closed_error or
  // closed, their values untouched), waiting receivers see the end, buffered values
  // stay receivable. True if this call closed it; closing again does nothing.
  bool close() noexcept {
    std::lock_guard guard(lock_);
    if (closed_) return false;
    closed_ = true;
    if (shared_type* shared = shared_.load(std::memory_order_relaxed)) {
      // Waiters try again and find the mark: receivers drain first, senders fail.
      shared->ring.close();
      wake_all_to_try_again();
      return true;
    }
    auto end_wait = [](detail::waiter* w) {
      static_cast<waiter_type*>(w)->how = detail::channel_wake::closed;
      detail::wake_served(w);
    };
    receivers_.drain_claimed(end_wait);
    senders_.drain_claimed(end_wait);
    return true;
  }

  // Range-for receives until the channel is closed and drained:
  //   for (auto& v : ch) ...
  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(channel* ch) : ch_(ch) { ++*this; }
    T& operator*() const noexcept { return *current_; }
    T* operator->() const noexcept { return &*current_; }
    WEFT_ALWAYS_INLINE iterator& operator++() {
      // Received in place, into the iterator's own optional: copying an optional
      // that was just written field by field (value, then flag) as one word
      // stalls store-to-load forwarding (bench/NOTES.md).
      current_.reset();
      detail::scheduler* s = detail::this_fiber_scheduler;
      channel_status status;
      if (s == nullptr) [[unlikely]]
        status = ch_->recv_from_thread(current_, no_deadline, "weft::channel::recv");
      else
        status = ch_->recv_impl(current_, s, no_deadline, "weft::channel::recv");
      if (status != channel_status::ok) current_.reset();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return !current_.has_value(); }

   private:
    channel* ch_ = nullptr;
    mutable std::optional<T> current_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() noexcept { return {}; }

 private:
  friend struct detail::select_access;
  friend struct detail::channel_access;
  using waiter_type = detail::channel_waiter<T>;
  using shared_type = detail::shared_ring<T>;

  static constexpr std::size_t max_capacity = static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(T);
  static std::size_t checked_capacity(std::size_t capacity) {
    if (capacity > max_capacity) [[unlikely]]
      detail::throw_bad_capacity(std::to_string(capacity) + " is more than memory can hold");
    return capacity;
  }
  template <std::signed_integral I>
  static std::size_t checked_capacity(I capacity) {
    if (capacity < 0) [[unlikely]]
      detail::throw_bad_capacity(std::to_string(capacity) + " is negative");
    return checked_capacity(static_cast<std::size_t>(capacity));
  }

  // send_now completes a send that needs no waiting (lock held): true with `status`
  // set (ok or closed), or false if the sender would have to wait. `here` is this
  // thread's scheduler (null on a plain thread), for waking the receiver.
  WEFT_ALWAYS_INLINE bool send_now(T& v, channel_status& status, detail::scheduler* here) {
    if (closed_) {
      status = channel_status::closed;
      return true;
    }
    if (detail::waiter* w = receivers_.pop_claimed()) {
      static_cast<waiter_type*>(w)->received.emplace(std::move(v));
      detail::wake_served(w, here);
      status = channel_status::ok;
      return true;
    }
    if (buffer_.size() < capacity_) {
      if (buffer_.full()) [[unlikely]]
        grow_buffer();
      buffer_.push_within_capacity(std::move(v));
      status = channel_status::ok;
      return true;
    }
    return false;
  }

  // grow_buffer makes room for one more value, or throws std::bad_alloc with
  // nothing changed (the sender's value untouched).
  [[gnu::noinline]] void grow_buffer() { buffer_.grow(); }

  // recv_now is send_now's mirror: ok (out filled) or closed, or false to wait.
  WEFT_ALWAYS_INLINE bool recv_now(std::optional<T>& out, channel_status& status, detail::scheduler* here) noexcept {
    if (!buffer_.empty()) {
      out.emplace(buffer_.pop());
      // The slot just freed goes to the longest-waiting sender.
      if (detail::waiter* w = senders_.pop_claimed()) {
        buffer_.push_within_capacity(std::move(*static_cast<waiter_type*>(w)->src));
        detail::wake_served(w, here);
      }
      status = channel_status::ok;
      return true;
    }
    if (detail::waiter* w = senders_.pop_claimed()) {
      out.emplace(std::move(*static_cast<waiter_type*>(w)->src));
      detail::wake_served(w, here);
      status = channel_status::ok;
      return true;
    }
    if (closed_) {
      status = channel_status::closed;
      return true;
    }
    return false;
  }

  // send_impl and recv_impl: `s` is what waits: the fiber's scheduler, a plain
  // thread's parker, or null for the try_ forms (never wait). The lock
  // is taken and released by hand, not by a guard: a guard's "do I still own it"
  // flag costs a few instructions on every hand-off. Only send_now's buffer growth
  // can throw in between. The blocking forms of a fiber name this thread to the lock
  // by the scheduler they hold already.
  static constexpr detail::scheduler* no_wait = nullptr;
  static detail::scheduler* scheduler_of(detail::scheduler* s) noexcept {
    return s != nullptr ? s : detail::scheduler::current();
  }
  static detail::scheduler* scheduler_of(detail::thread_parker*) noexcept { return nullptr; }

  template <class Parker>
  WEFT_ALWAYS_INLINE channel_status send_impl(T& v, Parker* s, time_point deadline, const char* call) {
    detail::scheduler* here = scheduler_of(s);
    const auto taken = lock_.lock_if_home(here);
    if (taken != detail::biased_lock::home_lock::taken) [[unlikely]]
      return send_elsewhere(v, s, deadline, call, taken);
    return send_locked(v, s, deadline, call, here);
  }

  // send_elsewhere is send_impl when this thread is not the lock's home: the
  // channel may be on its shared ring (no lock), or the lock is taken the remote way.
  template <class Parker>
  [[gnu::noinline]] channel_status send_elsewhere(T& v, Parker* s, time_point deadline, const char* call,
                                                  detail::biased_lock::home_lock taken) {
    detail::scheduler* here = scheduler_of(s);
    if (taken == detail::biased_lock::home_lock::not_home) {
      if (shared_type* shared = shared_.load(std::memory_order_acquire)) return send_shared(*shared, v, s, deadline, call);
      lock_.lock_as(here);
    }
    if (shared_.load(std::memory_order_relaxed) != nullptr) {
      lock_.unlock_as(here);  // shared since we looked: start over
      return send_again(v, s, deadline, call);
    }
    return send_locked(v, s, deadline, call, here);
  }

  // send_locked is the send with the lock held (the buffer is the locked ring).
  template <class Parker>
  WEFT_ALWAYS_INLINE channel_status send_locked(T& v, Parker* s, time_point deadline, const char* call, detail::scheduler* here) {
    auto lock = lock_.as(here);
    channel_status status;
    bool done;
    try {
      done = send_now(v, status, here);
    } catch (...) {
      lock.unlock();
      throw;
    }
    if (done) [[likely]] {
      lock.unlock();
      return status;
    }
    if (s == nullptr) {
      lock.unlock();
      return channel_status::full;
    }
    if (lock_.is_shared() && share_buffer()) [[unlikely]] {
      lock.unlock();
      return send_again(v, s, deadline, call);
    }
    waiter_type w;
    w.src = &v;
    status = finish_wait(detail::block_on(*s, lock, senders_, w, call, deadline), w, call);  // unlocks
    if (status == woken_to_try_again) [[unlikely]]
      return send_again(v, s, deadline, call, 1);
    return status;
  }

  template <class Parker>
  WEFT_ALWAYS_INLINE channel_status recv_impl(std::optional<T>& out, Parker* s, time_point deadline, const char* call) {
    detail::scheduler* here = scheduler_of(s);
    const auto taken = lock_.lock_if_home(here);
    if (taken != detail::biased_lock::home_lock::taken) [[unlikely]]
      return recv_elsewhere(out, s, deadline, call, taken);
    return recv_locked(out, s, deadline, call, here);
  }

  template <class Parker>
  [[gnu::noinline]] channel_status recv_elsewhere(std::optional<T>& out, Parker* s, time_point deadline, const char* call,
                                                  detail::biased_lock::home_lock taken) {
    detail::scheduler* here = scheduler_of(s);
    if (taken == detail::biased_lock::home_lock::not_home) {
      if (shared_type* shared = shared_.load(std::memory_order_acquire))
        return recv_shared(*shared, out, s, deadline, call);
      lock_.lock_as(here);
    }
    if (shared_.load(std::memory_order_relaxed) != nullptr) {
      lock_.unlock_as(here);  // shared since we looked: start over
      return recv_again(out, s, deadline, call);
    }
    return recv_locked(out, s, deadline, call, here);
  }

  template <class Parker>
  WEFT_ALWAYS_INLINE channel_status recv_locked(std::optional<T>& out, Parker* s, time_point deadline, const char* call,
                                                    detail::scheduler* here) {
    auto lock = lock_.as(here);
    channel_status status;
    if (recv_now(out, status, here)) {
      lock.unlock();
      return status;
    }
    if (s == nullptr) {
      lock.unlock();
      return channel_status::empty;
    }
    if (lock_.is_shared() && share_buffer()) [[unlikely]] {
      lock.unlock();
      return recv_again(out, s, deadline, call);
    }
    waiter_type w;
    const channel_status status_after_wait =
        finish_wait(detail::block_on(*s, lock, receivers_, w, call, deadline), w, call);
    if (status_after_wait == channel_status::ok) [[likely]]
      out.emplace(std::move(*w.received));
    else if (status_after_wait == woken_to_try_again)
      return recv_again(out, s, deadline, call, 1);
    return status_after_wait;
  }

  // retry_debt: a waiter woken to try again touches the channel once more, so its
  // waker counted it in retrying_ (the destructor waits for that count); the
  // operation uncounts itself once past its last touch.
  class retry_debt {
   public:
    explicit retry_debt(std::atomic<std::uint32_t>& count, std::uint32_t owed = 0) noexcept
        : count_(count), owed_(owed) {}
    retry_debt(retry_debt&& other) noexcept : count_(other.count_), owed_(std::exchange(other.owed_, 0)) {}
    ~retry_debt() {
      if (owed_ != 0) count_.fetch_sub(owed_, std::memory_order_release);
    }
    void add() noexcept { ++owed_; }

   private:
    std::atomic<std::uint32_t>& count_;
    std::uint32_t owed_;
  };

  // send_again and recv_again start an operation over (out of line: send_impl and
  // recv_impl are inlined into their callers and cannot inline themselves).
  // `owed`: 1 if the call starts over because it was woken to try again.
  template <class Parker>
  [[gnu::cold, gnu::noinline]] channel_status send_again(T& v, Parker* s, time_point deadline, const char* call,
                                                        std::uint32_t owed = 0) {
    retry_debt debt(retrying_, owed);  // paid when this call returns
    return send_impl(v, s, deadline, call);
  }
  template <class Parker>
  [[gnu::cold, gnu::noinline]] channel_status recv_again(std::optional<T>& out, Parker* s, time_point deadline, const char* call,
                                                        std::uint32_t owed = 0) {
    retry_debt debt(retrying_, owed);
    return recv_impl(out, s, deadline, call);
  }

  // await_retrying: the destructor's wait for waiters woken to try again and for
  // calls still inside the shared ring (each may queue itself once more, and is
  // then abandoned like any waiter).
  bool in_use() const noexcept {
    const shared_type* shared = shared_.load(std::memory_order_acquire);
    return retrying_.load(std::memory_order_acquire) != 0 || (shared != nullptr && shared->busy());
  }
  [[gnu::cold, gnu::noinline]] void await_retrying() noexcept {
    while (in_use()) {
      detail::yield_while_destroying("weft::channel");
      detail::abandon_waiters(lock_, "weft::channel", senders_, receivers_);
    }
  }

  // ---- the shared ring (see the top of this file) ---------------------------------
  //
  // No wake-up is lost between the lock-free ring and the locked queues by Dekker's
  // pattern on the ring's indices and the queues' flags, all sequentially
  // consistent: a waiter sets its queue's flag (lock held), then tries the ring once
  // more, and only then waits; a sender's push (a compare-and-swap on the tail) comes
  // before its look at the receivers' flag, and a receiver's pop before its look at
  // the senders' flag. Either the waiter's second try sees the value (or the room),
  // or the other side sees the flag and, taking the lock (so after the waiter
  // queued itself or left), wakes one waiter to try again. A flag may stay set with
  // nobody waiting (a waiter that timed out); that costs a lock, and the next lock
  // holder that wakes from the queue clears it.

  // share_buffer (lock held) switches a channel whose lock is shared to the ring,
  // if its capacity allows: true if it did (or could not allocate: false).
  static constexpr std::size_t max_shared_slots = std::max<std::size_t>(1, (std::size_t{1} << 20) / (sizeof(T) + 8));
  [[gnu::cold, gnu::noinline]] bool share_buffer() noexcept {
    if (capacity_ == 0 || capacity_ > max_shared_slots) return false;
    shared_type* shared;
    try {
      shared = new shared_type(capacity_);
    } catch (...) {
      return false;  // stays on the lock; nothing changed
    }
    while (!buffer_.empty()) {
      T v = buffer_.pop();
      (void)shared->ring.try_push(v);  // room for all: the ring has capacity_ slots
    }
    if (closed_) shared->ring.close();
    shared_owner_.reset(shared);
    shared_.store(shared, std::memory_order_release);
    wake_all_to_try_again();  // waiters of the locked protocol
    return true;
  }

  // wake_all_to_try_again (lock held) ends every wait: each waiter starts over.
  void wake_all_to_try_again() noexcept {
    auto try_again = [this](detail::waiter* w) {
      static_cast<waiter_type*>(w)->how = detail::channel_wake::try_again;
      retrying_.fetch_add(1, std::memory_order_relaxed);  // before the wake: see retry_debt
      detail::wake_served(w);
    };
    receivers_.drain_claimed(try_again);
    senders_.drain_claimed(try_again);
  }

  // wake_one wakes the first waiter of `queue` (a push just gave a receiver
  // something to take, or a pop gave a sender room) to try again, and refreshes the
  // queue's flag. wake_one_locked: the same with the lock held.
  void wake_one_locked(detail::wait_queue& queue, std::atomic<bool>& waiting, detail::scheduler* here) noexcept {
    if (detail::waiter* w = queue.pop_claimed()) {
      static_cast<waiter_type*>(w)->how = detail::channel_wake::try_again;
      retrying_.fetch_add(1, std::memory_order_relaxed);  // before the wake: see retry_debt
      detail::wake_served(w, here);
    }
    waiting.store(!queue.empty(), std::memory_order_relaxed);
  }
  [[gnu::noinline]] void wake_one(detail::wait_queue& queue, std::atomic<bool>& waiting,
                                  detail::scheduler* here) noexcept {
    auto lock = lock_.as(here);
    lock.lock();
    wake_one_locked(queue, waiting, here);
    lock.unlock();
  }

  // send_shared and recv_shared are send_impl and recv_impl on the ring.
  template <class Parker>
  channel_status send_shared(shared_type& shared, T& v, Parker* s, time_point deadline, const char* call) {
    detail::busy_while busy(shared.senders_busy);  // declared first: released last
    detail::scheduler* here = scheduler_of(s);
    retry_debt debt(retrying_);
    for (;;) {
      detail::ring_result pushed = shared.ring.try_push(v);
      if (pushed == detail::ring_result::full && s != nullptr) {
        auto lock = lock_.as(here);
        lock.lock();
        shared.senders_waiting.store(true, std::memory_order_seq_cst);
        pushed = shared.ring.try_push(v);  // after the flag: see above
        if (pushed == detail::ring_result::full) {
          waiter_type w;
          w.src = &v;
          const channel_status status =
              finish_wait(detail::block_on(*s, lock, senders_, w, call, deadline), w, call);  // unlocks
          if (status == woken_to_try_again) {
            debt.add();
            continue;
          }
          return status;
        }
        shared.senders_waiting.store(!senders_.empty(), std::memory_order_relaxed);
        lock.unlock();
      }
      switch (pushed) {
        case detail::ring_result::ok:
          if (shared.receivers_waiting.load(std::memory_order_seq_cst)) [[unlikely]]
            wake_one(receivers_, shared.receivers_waiting, here);
          return channel_status::ok;
        case detail::ring_result::closed: return channel_status::closed;
        default: return channel_status::full;  // try_send
      }
    }
  }

  template <class Parker>
  channel_status recv_shared(shared_type& shared, std::optional<T>& out, Parker* s, time_point deadline, const char* call) {
    detail::busy_while busy(shared.receivers_busy);  // declared first: released last
    detail::scheduler* here = scheduler_of(s);
    retry_debt debt(retrying_);
    for (;;) {
      detail::ring_result popped = shared.ring.try_pop(out);
      if (popped == detail::ring_result::empty && s != nullptr) {
        auto lock = lock_.as(here);
        lock.lock();
        shared.receivers_waiting.store(true, std::memory_order_seq_cst);
        popped = shared.ring.try_pop(out);  // after the flag: see above
        if (popped == detail::ring_result::empty) {
          waiter_type w;
          const channel_status status =
              finish_wait(detail::block_on(*s, lock, receivers_, w, call, deadline), w, call);  // unlocks
          if (status == woken_to_try_again) {
            debt.add();
            continue;
          }
          return status;
        }
        shared.receivers_waiting.store(!receivers_.empty(), std::memory_order_relaxed);
        lock.unlock();
      }
      switch (popped) {
        case detail::ring_result::ok:
          if (shared.senders_waiting.load(std::memory_order_seq_cst)) [[unlikely]]
            wake_one(senders_, shared.senders_waiting, here);
          return channel_status::ok;
        case detail::ring_result::closed: return channel_status::closed;
        default: return channel_status::empty;  // try_recv
      }
    }
  }

  // send_now_any and recv_now_any are send_now and recv_now for select (lock held),
  // on whichever buffer the channel has. On the ring, a case that cannot complete
  // leaves its queue's flag set: select queues its waiter there next.
  // The one-thread case is send_now and recv_now themselves, inline: one frame for
  // both buffers made select's every try save and restore the registers the ring
  // path needs (~40 instructions per case tried, callgrind).
  WEFT_ALWAYS_INLINE bool send_now_any(T& v, channel_status& status, detail::scheduler* here) {
    shared_type* shared = shared_.load(std::memory_order_relaxed);
    if (shared == nullptr) [[likely]]
      return send_now(v, status, here);
    return send_now_shared(*shared, v, status, here);
  }
  WEFT_ALWAYS_INLINE bool recv_now_any(std::optional<T>& out, channel_status& status,
                                           detail::scheduler* here) noexcept {
    shared_type* shared = shared_.load(std::memory_order_relaxed);
    if (shared == nullptr) [[likely]]
      return recv_now(out, status, here);
    return recv_now_shared(*shared, out, status, here);
  }
  [[gnu::noinline]] bool send_now_shared(shared_type& shared, T& v, channel_status& status, detail::scheduler* here) {
    shared.senders_waiting.store(true, std::memory_order_seq_cst);
    switch (shared.ring.try_push(v)) {
      case detail::ring_result::full: return false;
      case detail::ring_result::ok:
        shared.senders_waiting.store(!senders_.empty(), std::memory_order_relaxed);
        if (shared.receivers_waiting.load(std::memory_order_seq_cst))
          wake_one_locked(receivers_, shared.receivers_waiting, here);
        status = channel_status::ok;
        return true;
      default:
        shared.senders_waiting.store(!senders_.empty(), std::memory_order_relaxed);
        status = channel_status::closed;
        return true;
    }
  }
  [[gnu::noinline]] bool recv_now_shared(shared_type& shared, std::optional<T>& out, channel_status& status,
                                         detail::scheduler* here) noexcept {
    shared.receivers_waiting.store(true, std::memory_order_seq_cst);
    switch (shared.ring.try_pop(out)) {
      case detail::ring_result::empty: return false;
      case detail::ring_result::ok:
        shared.receivers_waiting.store(!receivers_.empty(), std::memory_order_relaxed);
        if (shared.senders_waiting.load(std::memory_order_seq_cst))
          wake_one_locked(senders_, shared.senders_waiting, here);
        status = channel_status::ok;
        return true;
      default:
        shared.receivers_waiting.store(!receivers_.empty(), std::memory_order_relaxed);
        status = channel_status::closed;
        return true;
    }
  }

  // send_from_thread and recv_from_thread: the blocking forms outside a fiber, which
  // wait with the thread's parker (thread_parker.hpp). Out of line: the fiber path
  // stays as it was.
  [[gnu::cold, gnu::noinline]] channel_status send_from_thread(T& v, time_point deadline, const char* call) {
    return send_impl(v, &detail::thread_parker::for_this_thread(call), deadline, call);
  }
  [[gnu::cold, gnu::noinline]] channel_status recv_from_thread(std::optional<T>& out, time_point deadline,
                                                               const char* call) {
    return recv_impl(out, &detail::thread_parker::for_this_thread(call), deadline, call);
  }

  // send_waiting and recv_waiting: the forms with a deadline, from a fiber or a
  // plain thread; `call` is the name errors give (the call the user made).
  channel_status send_waiting(T& v, time_point deadline, const char* call) {
    detail::scheduler* s = detail::this_fiber_scheduler;
    if (s == nullptr) return send_from_thread(v, deadline, call);
    return send_impl(v, s, deadline, call);
  }
  recv_result<T> recv_waiting(time_point deadline, const char* call) {
    detail::scheduler* s = detail::this_fiber_scheduler;
    recv_result<T> r;
    if (s == nullptr)
      r.status = recv_from_thread(r.value, deadline, call);
    else
      r.status = recv_impl(r.value, s, deadline, call);
    return r;
  }

  // woken_to_try_again is finish_wait's private status for a waiter woken with
  // channel_wake::try_again; no caller ever sees it.
  static constexpr auto woken_to_try_again = static_cast<channel_status>(0xff);

  static channel_status finish_wait(detail::wait_outcome outcome, const waiter_type& w, const char* call) {
    switch (outcome) {
      case detail::wait_outcome::served:
        if (w.how == detail::channel_wake::transferred) [[likely]]
          return channel_status::ok;
        return w.how == detail::channel_wake::closed ? channel_status::closed : woken_to_try_again;
      case detail::wait_outcome::abandoned: detail::throw_abandoned(w, call);
      case detail::wait_outcome::timed_out: return channel_status::timeout;
      case detail::wait_outcome::cancelled: break;
    }
    detail::throw_cancelled(call);
  }

  mutable detail::biased_lock lock_;  // guards everything below but the shared ring's insides
  const std::size_t capacity_;
  bool closed_ = false;
  // Set once (lock held) when the channel switches to the shared ring; from then on
  // buffer_ stays empty.
  std::atomic<shared_type*> shared_{nullptr};
  detail::ring<T> buffer_;
  detail::wait_queue senders_;    // waiting senders, only while the buffer is full
  detail::wait_queue receivers_;  // waiting receivers, only while it is empty
  std::unique_ptr<shared_type> shared_owner_;
  // Waiters woken to try again that may still touch the channel (retry_debt).
  std::atomic<std::uint32_t> retrying_{0};
};

namespace detail {
// channel_access is for tests: has the channel switched to its shared ring, how
// many receivers wait in it?
struct channel_access {
  template <class T>
  static void release_retries(channel<T>& ch, std::uint32_t n) noexcept {
    ch.retrying_.fetch_sub(n, std::memory_order_release);
  }
  template <class T>
  static std::size_t waiting_receivers(channel<T>& ch) noexcept {
    std::lock_guard guard(ch.lock_);
    return ch.receivers_.size();
  }
  template <class T>
  static bool uses_shared_ring(const channel<T>& ch) noexcept {
    return ch.shared_.load(std::memory_order_acquire) != nullptr;
  }
};
}  // namespace detail

}  // namespace weft
