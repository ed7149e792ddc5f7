// remote_inbox.hpp: how other threads hand work to a scheduler.
//
// Other threads push here (fibers to make runnable, functions to run in new fibers)
// and write the scheduler's eventfd, but only when the scheduler says it is asleep
// in epoll_wait: otherwise it will see the items at its next look anyway, and every
// cross-thread post would cost a system call.
//
// The lost-wake-up argument: a poster sets `has_items_` then reads `sleeping_`; the
// scheduler sets `sleeping_` then reads `has_items_` (all seq_cst). At least one of
// them sees the other's store, so either the poster writes the eventfd or the
// scheduler does not go to sleep.
//
// The inbox is shared (std::shared_ptr) with every scheduler_handle and owns the
// eventfd. The eventfd is written only under the mutex, and shutdown() closes it
// under the same mutex, so a handle that outlives its scheduler finds the inbox
// closed instead of writing to a closed (or reused) descriptor, and holds no fd.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include <weft/runtime/detail/fiber_record.hpp>
#include <weft/runtime/detail/spin_lock.hpp>

namespace weft::detail {

struct fd_state;

// remote_request is what another thread asks of a scheduler about one of its
// fibers. Each kind says which references (fiber_record::refs_) travel with it; the
// owner drops them once it has applied the request.
struct remote_request {
  enum class kind : std::uint8_t {
    wake,    // end the park `token` names with `why`; holds a reference on token.fiber
    cancel,  // end token.fiber's park if its cancellation is still pending; same reference
    start,   // start `target` (spawned on another thread for this scheduler) with a
             // stack of `stack_size` (0: the default); the record's own references
    join,    // wake `token` (a fiber of another scheduler) when `target` finishes;
             // holds a reference on token.fiber (kept while it waits) and on target
    unjoin,  // that waiter stopped waiting (deadline, cancellation); a reference on target
    detach,  // the handle of `target` was dropped on another thread; the handle's reference
    unwatch, // an fd_watch of this scheduler was destroyed on another thread: remove
             // `watch` from the reactor and free it (the watch's reference)
  };
  kind what = kind::wake;
  wake_reason why = wake_reason::notified;
  park_token token{};
  fiber_record* target = nullptr;
  std::size_t stack_size = 0;
  fd_state* watch = nullptr;
};

// taken_requests is what the owner takes from its inbox: the requests in the
// order they were pushed, `first` (if has_first) before `rest`.
struct taken_requests {
  remote_request first;
  bool has_first = false;
  std::vector<remote_request> rest;

  template <class F>
  void for_each(F&& f) const {
    if (has_first) f(first);
    for (const remote_request& r : rest) f(r);
  }
  void clear() noexcept {
    has_first = false;
    rest.clear();
  }
};

// Cache-line aligned, with what a push and the owner's look touch on the first line:
// the lock, the flags and one request slot. A steady cross-thread hand-off (one wake
// at a time) then moves that one line per push and per take; a request in the
// vector's storage would move a second line both ways. The vector holds the
// requests pushed while the slot is taken.
class alignas(64) remote_inbox {
 public:
  remote_inbox();  // throws std::system_error if no eventfd can be made
  ~remote_inbox();
  remote_inbox(const remote_inbox&) = delete;
  remote_inbox& operator=(const remote_inbox&) = delete;

  int event_fd() const noexcept { return event_fd_; }

  // post queues fn to run in a new fiber; false if the scheduler has finished.
  bool post(std::function<void()> fn);
  // push queues a request for the owner to check and apply; false only once the
  // scheduler is gone (shutdown()), or for a start once it has closed (close()).
  // The owner takes what is left when it is destroyed.
  bool push(const remote_request& r);

  // take moves the queued requests, and the queued posts unless `posts` is null,
  // into the arguments (owner thread); `requests` and `*posts` must be empty
  // (clear() them after applying). Posts left here keep has_items() true.
  void take(taken_requests& requests, std::vector<std::function<void()>>* posts);
  bool has_items() const noexcept { return has_items_.load(std::memory_order_seq_cst); }
  bool has_posts() noexcept;  // posts queued here, not yet taken
  // The same for a polling loop; take() orders what it finds (the mutex).
  bool has_items_relaxed() const noexcept { return has_items_.load(std::memory_order_relaxed); }

  // begin_sleep announces that the owner is about to block in epoll; false (and no
  // announcement) if items are already waiting. end_sleep follows every true.
  bool begin_sleep() noexcept;
  void end_sleep() noexcept;
  // sleeping: the owner is (about to be) asleep in epoll; seq_cst, for the group's
  // decision to wake it (scheduler_group::work_queued).
  bool sleeping() const noexcept { return sleeping_.load(std::memory_order_seq_cst); }
  // Deadlock detection in a runtime of several schedulers (scheduler_group): the
  // owner says it is quiet (nothing runnable, no timer, no fd) with enter_quiet,
  // which fails if items are waiting; every push, post or poke ends the quiet
  // spell before it returns, so a sender can never be quiet while its request is
  // still unseen. `count` is the group's count of quiet members.
  void attach_quiet_count(std::atomic<std::size_t>* count) noexcept;
  bool enter_quiet() noexcept;
  void leave_quiet() noexcept;

  // drain_event_fd resets the eventfd after epoll reported it.
  void drain_event_fd() noexcept;

  // refuse_posts makes post() return false from now on (any thread): a stop that
  // the owner will see later must not wait behind posts that keep coming
  // (background_runtime::stop). Everything else goes on until close().
  void refuse_posts() noexcept;

  // close refuses further posts and starts, and takes what is queued as take()
  // does: the owner applies those requests now, and takes the posts left (if
  // `posts` is null) with a later take().
  void close(taken_requests& requests, std::vector<std::function<void()>>* posts);

  // request_stop asks the owner's serve() loop to return (scheduler_group's
  // shutdown); stop_requested is read by the owner.
  void request_stop() noexcept;
  // poke makes the owner look at its loop's condition again (it may be asleep).
  void poke() noexcept;
  bool stop_requested() const noexcept { return stop_.load(std::memory_order_acquire); }
  // shutdown also releases the eventfd; the owner calls it when it is destroyed.
  void shutdown() noexcept;

 private:
  void notify_locked() noexcept;
  void end_quiet_locked() noexcept;
  void take_locked(taken_requests& requests, std::vector<std::function<void()>>* posts) noexcept;

  // The first line. Invariant: while first_queued_ is false, requests_ is empty, so
  // first_ is always the oldest request.
  spin_lock mutex_;  // guards all but the atomics, and writes/closing of event_fd_
  std::atomic<bool> has_items_{false};
  std::atomic<bool> sleeping_{false};
  bool first_queued_ = false;  // first_ holds a request
  bool closed_ = false;        // no more posts or starts
  bool posts_refused_ = false;  // no more posts (refuse_posts)
  bool shut_down_ = false;     // no more requests at all
  bool quiet_ = false;         // counted in *quiet_count_
  int event_fd_;
  remote_request first_;  // at byte 16: the line's end
  static_assert(sizeof(remote_request) <= 48, "first_ must end within the first cache line");

  std::atomic<bool> stop_{false};
  std::atomic<std::size_t>* quiet_count_ = nullptr;
  std::vector<remote_request> requests_;
  std::vector<std::function<void()>> posts_;
};

}  // namespace weft::detail
