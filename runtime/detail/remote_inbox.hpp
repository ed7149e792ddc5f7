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
#include <functional>
#include <mutex>
#include <vector>

#include <weft/runtime/detail/fiber_record.hpp>

namespace weft::detail {

// remote_wake asks the owner to end a park: the one named by `token` or, with
// generation 0, whatever park the fiber is in if its cancellation is still pending.
// The sender holds a reference on the record (refs_) that the owner drops.
struct remote_wake {
  park_token token;
  wake_reason why;
};

class remote_inbox {
 public:
  remote_inbox();  // throws std::system_error if no eventfd can be made
  ~remote_inbox();
  remote_inbox(const remote_inbox&) = delete;
  remote_inbox& operator=(const remote_inbox&) = delete;

  int event_fd() const noexcept { return event_fd_; }

  // post queues fn to run in a new fiber; false if the scheduler has finished.
  bool post(std::function<void()> fn);
  // push_wake queues a wake-up for the owner to check and apply. Never refused; the
  // owner takes what is left when it is destroyed.
  void push_wake(remote_wake w);

  // take moves everything queued into the arguments (owner thread).
  void take(std::vector<remote_wake>& wakes, std::vector<std::function<void()>>& posts);
  bool has_items() const noexcept { return has_items_.load(std::memory_order_seq_cst); }

  // begin_sleep announces that the owner is about to block in epoll; false (and no
  // announcement) if items are already waiting. end_sleep follows every true.
  bool begin_sleep() noexcept;
  void end_sleep() noexcept;
  // drain_event_fd resets the eventfd after epoll reported it.
  void drain_event_fd() noexcept;

  // close refuses further posts and returns the ones still queued.
  std::vector<std::function<void()>> close();
  // shutdown also releases the eventfd; the owner calls it when it is destroyed.
  void shutdown() noexcept;

 private:
  void notify_locked() noexcept;

  int event_fd_;
  std::atomic<bool> has_items_{false};
  std::atomic<bool> sleeping_{false};
  std::mutex mutex_;  // guards the vectors, closed_ and writes/closing of event_fd_
  bool closed_ = false;
  std::vector<remote_wake> wakes_;
  std::vector<std::function<void()>> posts_;
};

}  // namespace weft::detail
