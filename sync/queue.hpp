// queue.hpp: asyncio.Queue for fibers: the job queue of a worker pool, with
// task_done() and join() to wait until every item put has been processed.
//
//   weft::queue<job> jobs(100);                       // at most 100 waiting items
//   for (int i = 0; i < 4; ++i)
//     workers.spawn([&] { for (;;) { job j = jobs.get(); run(j); jobs.task_done(); } });
//   for (job& j : todo) jobs.put(std::move(j));       // waits while 100 are queued
//   jobs.join();                                      // until each got its task_done()
//
// Three orders, as asyncio has: weft::queue<T> (first in, first out),
// weft::lifo_queue<T> (last in, first out) and weft::priority_queue<T, Compare>
// (smallest first by Compare, std::less by default, like heapq: put (priority, item)
// pairs; Compare must not throw or block: it runs under the queue's lock). `maxsize`
// 0 (the default) is a queue without limit; a negative maxsize is
// weft::error(errc::invalid_argument).
//
// Waiting: get waits while the queue is empty, put while it holds maxsize items,
// join until the count of unfinished items is 0. Each wakes when another fiber (or
// thread) puts, gets, or calls task_done respectively. Waiters are served in FIFO
// order: an item put while getters wait goes straight to the longest-waiting getter,
// and the room a get makes goes to the longest-waiting putter. Every waiting call
// has _until/_for forms (a deadline is a false or std::nullopt return, taking and
// leaving nothing) and try_ forms that never wait; a cancelled waiting call throws
// cancelled_error, and the item of a put that did not happen stays with the caller
// (the T&& overloads move from it only on success). If an item reaches a getter in
// the same instant it is cancelled, the get returns it and the cancellation stays
// pending for the fiber's next blocking call: nothing is lost.
//
// task_done: every put (which counts one unfinished item) is matched by one
// task_done() once the item is processed; join() returns when the count reaches 0.
// A task_done() with nothing unfinished is errc::invalid_argument (asyncio's
// ValueError).
//
// Shutting down (asyncio 3.13's Queue.shutdown) ends a worker pool without sentinel
// items: after shutdown(), every put (waiting or not) throws queue_shut_down_error
// with its item untouched, and gets go on until the queue is empty, then throw it
// too; waiting getters are woken with it at once (the queue is empty when they
// wait). The range-for is the worker's loop: it gets until shut down and drained.
//   for (job& j : jobs) { run(j); jobs.task_done(); }   // each worker
//   jobs.join(); jobs.shutdown();                        // the owner, when all is done
// shutdown(true) (asyncio's immediate=True) also discards the queued items and
// counts each as done, so join() returns once the items already taken are done.
// Deadline forms report shut down by the same exception, not by their false or
// std::nullopt, which stays "the deadline passed".
//
// Threads: every call may be made from any fiber of any scheduler and from a plain
// thread (one not running a scheduler), where the waiting forms block that thread
// alone (a plain thread cannot be cancelled). On a scheduler's thread outside its
// fibers the waiting forms throw weft::error(errc::not_in_fiber). A queue does not
// move; destroying it while fibers wait on it wakes them with
// weft::error(errc::destroyed_while_waiting) ("weft::queue::get: destroyed while
// this fiber waited on it"), as the other sync/ primitives do.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/thread_parker.hpp>
#include <weft/runtime/error.hpp>
#include <weft/sync/detail/biased_lock.hpp>
#include <weft/sync/detail/ring.hpp>
#include <weft/sync/detail/wait_queue.hpp>

namespace weft {
namespace detail {

// The three orders. Each keeps items in storage that a pop leaves in place, so
// that after a pop one push needs no allocation (a waiting putter's item moves in
// under the lock, where nothing may throw).
template <class T>
class fifo_items {
 public:
  std::size_t size() const noexcept { return ring_.size(); }
  void push(T&& v) {  // std::bad_alloc: v untouched
    if (ring_.full()) ring_.grow();
    ring_.push_within_capacity(std::move(v));
  }
  void push_after_pop(T&& v) noexcept { ring_.push_within_capacity(std::move(v)); }
  T pop() noexcept { return ring_.pop(); }
  void swap(fifo_items& other) noexcept { ring_.swap(other.ring_); }

 private:
  ring<T> ring_;
};

template <class T>
class lifo_items {
 public:
  std::size_t size() const noexcept { return items_.size(); }
  void push(T&& v) { items_.push_back(std::move(v)); }  // strong guarantee: T moves nothrow
  void push_after_pop(T&& v) noexcept { items_.push_back(std::move(v)); }  // capacity is there
  T pop() noexcept {
    T v(std::move(items_.back()));
    items_.pop_back();
    return v;
  }
  void swap(lifo_items& other) noexcept { items_.swap(other.items_); }

 private:
  std::vector<T> items_;
};

template <class T, class Compare>
class heap_items {
 public:
  std::size_t size() const noexcept { return items_.size(); }
  void push(T&& v) {
    items_.push_back(std::move(v));
    std::push_heap(items_.begin(), items_.end(), later_);
  }
  void push_after_pop(T&& v) noexcept {
    items_.push_back(std::move(v));
    std::push_heap(items_.begin(), items_.end(), later_);
  }
  T pop() noexcept {
    std::pop_heap(items_.begin(), items_.end(), later_);
    T v(std::move(items_.back()));
    items_.pop_back();
    return v;
  }
  void swap(heap_items& other) noexcept { items_.swap(other.items_); }  // both compare as default-made

 private:
  // std::*_heap keep the largest by their comparison in front; "a after b" makes
  // that the smallest by Compare.
  struct after {
    Compare less;
    bool operator()(const T& a, const T& b) const { return less(b, a); }
  };
  std::vector<T> items_;
  after later_{};
};

template <class T>
struct queue_waiter : waiter {
  T* src = nullptr;          // a waiting putter's item: moved from when served
  std::optional<T> received; // a waiting getter's item: filled when served
  bool shut_down = false;    // served by shutdown(), nothing transferred
};

[[noreturn, gnu::cold, gnu::noinline]] void throw_bad_queue_size(const std::string& why);
[[noreturn, gnu::cold, gnu::noinline]] void throw_task_done_too_often();

}  // namespace detail

// queue_shut_down_error: what a put on a shut-down queue throws, and a get once it
// is also empty (asyncio.QueueShutDown). code() is errc::queue_shut_down; what()
// names the call ("weft::queue::get: queue is shut down").
class queue_shut_down_error : public error {
 public:
  explicit queue_shut_down_error(const char* call) : error(errc::queue_shut_down, call) {}
};

// basic_queue is the queue of one order (Items: detail::fifo_items and the others);
// use weft::queue, weft::lifo_queue or weft::priority_queue.
template <class T, class Items>
class basic_queue {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "weft::queue<T> needs a T whose move constructor cannot throw "
                "(items move under the queue's lock); wrap it in std::unique_ptr");

 public:
  using value_type = T;

  // basic_queue(maxsize): at most maxsize items wait in the queue; 0: no limit.
  explicit basic_queue(std::size_t maxsize = 0) : maxsize_(maxsize) {}
  template <std::signed_integral I>
  explicit basic_queue(I maxsize) : maxsize_(checked(maxsize)) {}
  basic_queue(const basic_queue&) = delete;
  basic_queue& operator=(const basic_queue&) = delete;
  ~basic_queue() { detail::abandon_waiters(lock_, "weft::queue", putters_, getters_, joiners_); }

  // put adds v, waiting while the queue is full. Throws cancelled_error if
  // cancelled while waiting, queue_shut_down_error if the queue is or gets shut
  // down (either way v untouched).
  void put(T&& v) { (void)put_wait(v, no_deadline, "weft::queue::put"); }
  void put(const T& v) requires std::is_copy_constructible_v<T> { put(T(v)); }
  // put_until waits at most until `deadline`: false (v untouched) if it passed.
  bool put_until(T&& v, time_point deadline) { return put_wait(v, deadline, "weft::queue::put_until"); }
  bool put_until(const T& v, time_point deadline) requires std::is_copy_constructible_v<T> {
    T copy(v);
    return put_until(std::move(copy), deadline);
  }
  template <class Rep, class Period>
  bool put_for(T&& v, std::chrono::duration<Rep, Period> d) {
    return put_wait(v, deadline_after(d), "weft::queue::put_for");
  }
  template <class Rep, class Period>
  bool put_for(const T& v, std::chrono::duration<Rep, Period> d) requires std::is_copy_constructible_v<T> {
    T copy(v);
    return put_for(std::move(copy), d);
  }
  // try_put adds v only if that needs no waiting (asyncio's put_nowait); false if
  // the queue is full (v untouched). Shut down: queue_shut_down_error. Any thread.
  bool try_put(T&& v) {
    std::unique_lock guard(lock_);
    if (shut_down_) [[unlikely]] {
      guard.unlock();
      throw queue_shut_down_error("weft::queue::try_put");
    }
    return put_now(v);
  }
  bool try_put(const T& v) requires std::is_copy_constructible_v<T> {
    T copy(v);
    return try_put(std::move(copy));
  }

  // get removes and returns the next item, waiting while the queue is empty.
  // Throws cancelled_error if cancelled while waiting (nothing taken), and
  // queue_shut_down_error once the queue is shut down and empty.
  T get() { return std::move(*get_wait(no_deadline, "weft::queue::get")); }
  // get_until waits at most until `deadline`: std::nullopt if it passed.
  std::optional<T> get_until(time_point deadline) { return get_wait(deadline, "weft::queue::get_until"); }
  template <class Rep, class Period>
  std::optional<T> get_for(std::chrono::duration<Rep, Period> d) {
    return get_wait(deadline_after(d), "weft::queue::get_for");
  }
  // try_get takes an item only if one is there (asyncio's get_nowait); std::nullopt
  // if none. Shut down and empty: queue_shut_down_error. Any thread.
  std::optional<T> try_get() {
    std::optional<T> out;
    std::unique_lock guard(lock_);
    if (!get_now(out) && shut_down_) [[unlikely]] {
      guard.unlock();
      throw queue_shut_down_error("weft::queue::try_get");
    }
    return out;
  }

  // shutdown stops the queue (see the top of this file): waiting putters and
  // getters wake with queue_shut_down_error, later puts throw it, gets drain what
  // is queued first. immediate = true also discards the queued items, counting
  // each as done (join() may return). Calling it again does nothing, except that
  // shutdown(true) after shutdown() still discards. Any thread; never waits.
  // The discarded items are destroyed after the lock is released: a destructor may
  // block (and so park), and a fiber never parks holding a primitive's lock.
  void shutdown(bool immediate = false) noexcept {
    Items discarded;  // declared before the guard: destroyed after it
    std::lock_guard guard(lock_);
    if (!shut_down_) {
      shut_down_ = true;
      auto end_wait = [](detail::waiter* w) {
        static_cast<waiter_type*>(w)->shut_down = true;
        detail::wake_served(w);
      };
      putters_.drain_claimed(end_wait);
      getters_.drain_claimed(end_wait);  // the queue is empty while getters wait
    }
    if (immediate) {
      unfinished_ -= items_.size();  // each discarded item counts as done
      items_.swap(discarded);
      if (unfinished_ == 0) joiners_.drain_claimed([](detail::waiter* w) { detail::wake_served(w); });
    }
  }
  // is_shut_down: shutdown() has been called.
  bool is_shut_down() const noexcept {
    std::lock_guard guard(lock_);
    return shut_down_;
  }

  // Range-for gets until the queue is shut down and empty (a worker's loop; each
  // item still wants its task_done()). Cancellation throws out of the loop.
  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(basic_queue* q) : q_(q) { ++*this; }
    T& operator*() const noexcept { return *current_; }
    T* operator->() const noexcept { return &*current_; }
    iterator& operator++() {
      current_.reset();
      try {
        current_ = q_->get_wait(no_deadline, "weft::queue::get");
      } catch (const queue_shut_down_error&) {
        // the end of the loop: shut down and drained
      }
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const noexcept { return !current_.has_value(); }

   private:
    basic_queue* q_ = nullptr;
    mutable std::optional<T> current_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() noexcept { return {}; }

  // task_done marks one item got from the queue as processed; when none is left
  // unfinished, every join() returns. More calls than puts: errc::invalid_argument.
  void task_done() {
    std::lock_guard guard(lock_);
    if (unfinished_ == 0) detail::throw_task_done_too_often();
    if (--unfinished_ == 0) joiners_.drain_claimed([](detail::waiter* w) { detail::wake_served(w); });
  }

  // join waits until every item put so far has had its task_done(). Throws
  // cancelled_error if cancelled while waiting.
  void join() { (void)join_wait(no_deadline, "weft::queue::join"); }
  // join_until waits at most until `deadline`: false if it passed first.
  bool join_until(time_point deadline) { return join_wait(deadline, "weft::queue::join_until"); }
  template <class Rep, class Period>
  bool join_for(std::chrono::duration<Rep, Period> d) {
    return join_wait(deadline_after(d), "weft::queue::join_for");
  }

  // size is the number of items waiting in the queue (asyncio's qsize; a snapshot).
  std::size_t size() const noexcept {
    std::lock_guard guard(lock_);
    return items_.size();
  }
  bool empty() const noexcept { return size() == 0; }
  // full: maxsize items wait (never, without a limit).
  bool full() const noexcept { return maxsize_ != 0 && size() >= maxsize_; }
  std::size_t maxsize() const noexcept { return maxsize_; }
  // unfinished is the number of items put and not yet marked task_done (a snapshot).
  std::size_t unfinished() const noexcept {
    std::lock_guard guard(lock_);
    return unfinished_;
  }

 private:
  using waiter_type = detail::queue_waiter<T>;

  template <std::signed_integral I>
  static std::size_t checked(I maxsize) {
    if (maxsize < 0) detail::throw_bad_queue_size(std::to_string(maxsize) + " is negative");
    return static_cast<std::size_t>(maxsize);
  }

  // put_now and get_now complete an operation that needs no waiting (lock held);
  // false if the caller would have to wait. A getter waits only while the queue
  // is empty and a putter only while it is full, so handing an item straight to a
  // waiter keeps every order.
  bool put_now(T& v) {
    if (detail::waiter* w = getters_.pop_claimed()) {
      static_cast<waiter_type*>(w)->received.emplace(std::move(v));
      ++unfinished_;
      detail::wake_served(w);
      return true;
    }
    if (maxsize_ != 0 && items_.size() >= maxsize_) return false;
    items_.push(std::move(v));  // may throw std::bad_alloc, v untouched
    ++unfinished_;
    return true;
  }
  bool get_now(std::optional<T>& out) noexcept {
    if (items_.size() == 0) return false;
    out.emplace(items_.pop());
    if (detail::waiter* w = putters_.pop_claimed()) {  // the room just made is its
      items_.push_after_pop(std::move(*static_cast<waiter_type*>(w)->src));
      ++unfinished_;
      detail::wake_served(w);
    }
    return true;
  }

  // wait_as runs `wait(parker, lock)` for the calling fiber, or for a plain thread
  // through its parker (thread_parker.hpp).
  template <class Wait>
  static auto wait_as(const char* call, Wait wait) {
    if (detail::scheduler* s = detail::this_fiber_scheduler) return wait(*s, s);
    return wait(detail::thread_parker::for_this_thread(call), static_cast<detail::scheduler*>(nullptr));
  }

  bool put_wait(T& v, time_point deadline, const char* call) {
    return wait_as(call, [&](auto& parker, detail::scheduler* here) {
      auto lock = lock_.as(here);
      lock.lock();
      if (shut_down_) [[unlikely]] {
        lock.unlock();
        throw queue_shut_down_error(call);
      }
      bool done;
      try {
        done = put_now(v);
      } catch (...) {
        lock.unlock();
        throw;
      }
      if (done) {
        lock.unlock();
        return true;
      }
      waiter_type w;
      w.src = &v;
      const bool served = detail::served_or_throw(detail::block_on(parker, lock, putters_, w, call, deadline), w, call);
      if (w.shut_down) throw queue_shut_down_error(call);
      return served;
    });
  }

  std::optional<T> get_wait(time_point deadline, const char* call) {
    return wait_as(call, [&](auto& parker, detail::scheduler* here) {
      std::optional<T> out;
      auto lock = lock_.as(here);
      lock.lock();
      if (get_now(out)) {
        lock.unlock();
        return out;
      }
      if (shut_down_) {
        lock.unlock();
        throw queue_shut_down_error(call);
      }
      waiter_type w;
      if (detail::served_or_throw(detail::block_on(parker, lock, getters_, w, call, deadline), w, call)) {
        if (w.shut_down) throw queue_shut_down_error(call);
        out.emplace(std::move(*w.received));
      }
      return out;
    });
  }

  bool join_wait(time_point deadline, const char* call) {
    return wait_as(call, [&](auto& parker, detail::scheduler* here) {
      auto lock = lock_.as(here);
      lock.lock();
      if (unfinished_ == 0) {
        lock.unlock();
        return true;
      }
      detail::waiter w;
      return detail::served_or_throw(detail::block_on(parker, lock, joiners_, w, call, deadline), w, call);
    });
  }

  mutable detail::biased_lock lock_;  // guards everything below
  const std::size_t maxsize_;
  std::size_t unfinished_ = 0;  // put and not yet task_done
  bool shut_down_ = false;
  Items items_;
  detail::wait_queue putters_;  // only while the queue is full
  detail::wait_queue getters_;  // only while it is empty
  detail::wait_queue joiners_;  // only while unfinished_ > 0
};

// queue<T>: first in, first out (asyncio.Queue).
template <class T>
using queue = basic_queue<T, detail::fifo_items<T>>;
// lifo_queue<T>: last in, first out (asyncio.LifoQueue).
template <class T>
using lifo_queue = basic_queue<T, detail::lifo_items<T>>;
// priority_queue<T, Compare>: smallest by Compare first (asyncio.PriorityQueue);
// items that compare equal come out in no promised order.
template <class T, class Compare = std::less<T>>
using priority_queue = basic_queue<T, detail::heap_items<T, Compare>>;

}  // namespace weft
