// scheduler_group.hpp: the schedulers of one weft::run({.threads = N}).
//
// Member 0 is run()'s own scheduler, on the calling thread; members 1..N-1 each
// run on a worker thread weft starts (signals blocked, quiet_thread.hpp) and serve
// until run()'s main fiber returns. Each member keeps its own run queue, timers,
// reactor and stacks; they meet only through their inboxes (remote_inbox.hpp):
// a fiber is started on another member, woken, cancelled or waited for there by a
// request in that member's inbox.
//
// Shutdown (scheduler::shut_down): when main returns, every member cancels its
// fibers and waits for them, and then goes on applying requests until every member
// has no fiber left, so that a wait for a fiber of another member never misses its
// wake-up. Then the workers end and run() joins them.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <weft/runtime/detail/scheduler.hpp>

namespace weft {
class placement;
}

namespace weft::detail {

class scheduler_group {
 public:
  // Starts threads - 1 workers; `first` becomes member 0. Throws what a worker's
  // scheduler threw while it was made (the workers already started are stopped).
  scheduler_group(scheduler& first, std::size_t threads, const scheduler_options& options);
  ~scheduler_group();  // stops the workers (if run() did not) and joins them
  scheduler_group(const scheduler_group&) = delete;
  scheduler_group& operator=(const scheduler_group&) = delete;

  std::size_t size() const noexcept { return members_.size(); }
  const std::vector<std::shared_ptr<remote_inbox>>& inboxes() const noexcept { return inboxes_; }
  scheduler& at(std::size_t i) const noexcept { return *members_[i]; }
  // is_member: `s` is one of this runtime's schedulers (a scan: N is the thread
  // count, and the array is read-only, so it stays in every member's cache).
  bool is_member(const scheduler* s) const noexcept {
    for (const scheduler* m : members_)
      if (m == s) return true;
    return false;
  }
  // next_in_turn is the next member in turn (round robin): where a plain thread's
  // post or submit goes (runtime_handle).
  scheduler& next_in_turn() noexcept {
    return at(next_.fetch_add(1, std::memory_order_relaxed) % members_.size());
  }

  // Work stealing (steal_queue.hpp, work_stealing.cpp). The group counts the fibers
  // waiting in its members' steal queues (a member spinning on its inbox looks at
  // that count too) and the members asleep in epoll.
  //
  // A member that queues work while some sleep wakes one of them, and a member
  // that is about to sleep looks at the count after it has said so: the count and
  // the sleepers are both seq_cst, so one of the two sees the other (Dekker), and
  // queued work never waits for a sleeper that nobody woke. (Its own scheduler runs
  // it eventually anyway; this is about using the idle core.)
  // count_queued comes before the push (so the count never drops below zero when
  // a thief is quick), wake_a_sleeper after it.
  void count_queued() noexcept { queued_.fetch_add(1, std::memory_order_seq_cst); }
  void wake_a_sleeper(scheduler& from) noexcept;
  void work_taken(std::size_t n) noexcept { queued_.fetch_sub(n, std::memory_order_relaxed); }
  bool has_queued_work() const noexcept { return queued_.load(std::memory_order_relaxed) != 0; }
  // before_sleep: true if work is queued, and the member should look instead of
  // sleeping (it is then not counted asleep). after_sleep ends every false one.
  bool before_sleep() noexcept;
  void after_sleep() noexcept { sleepers_.fetch_sub(1, std::memory_order_relaxed); }

  // request_stop makes every worker's serve() return and shut down (member 0 is
  // run()'s and shuts down when main returns). run()'s thread only.
  void request_stop() noexcept;
  // Deadlock detection (scheduler::idle): members count themselves quiet through
  // their inboxes; member 0 declares a deadlock only when all are quiet, some fiber
  // is alive and the process has no thread but the members. Then every member
  // cancels its fibers (deadlock_declared).
  std::atomic<std::size_t>& quiet_count() noexcept { return quiet_; }
  bool all_quiet() const noexcept { return quiet_.load(std::memory_order_acquire) == members_.size(); }
  void declare_deadlock() noexcept;
  bool deadlock_declared() const noexcept { return deadlock_.load(std::memory_order_acquire); }
  // Each other member, once it has cancelled its fibers for the deadlock, says so;
  // member 0 waits for all of them before it cancels its own (main among them): a
  // fiber elsewhere still parked, not yet cancelled, on something main's unwinding
  // destroys would end "destroyed while waiting" instead of cancelled.
  void deadlock_acted() noexcept { deadlock_acted_.fetch_add(1, std::memory_order_acq_rel); }
  void await_others_acting_on_deadlock() const noexcept;

  // at_last_drain: fn runs on member 0's thread at the end of its shutdown, once
  // every member has no fiber left (scheduler::shut_down), for work that needs
  // that thread when member 0 already refuses new fibers (a signal_set made on a
  // worker and destroyed by the shutdown's cancellations releases scheduler 0's
  // mask so). False, and fn dropped, once that moment has passed.
  bool at_last_drain(std::function<void()> fn);
  // run_last_drain_work: member 0's shut_down, after all_drained.
  void run_last_drain_work() noexcept;

  // member_drained: a member has no fiber left; all_drained: every member.
  void member_drained() noexcept;
  bool all_drained() const noexcept {
    return drained_.load(std::memory_order_acquire) == members_.size();
  }

 private:
  void stop_and_join() noexcept;

  // Written only by the constructor, before assembled_ lets the workers serve;
  // read-only from then on.
  std::vector<scheduler*> members_;
  std::promise<void> assembled_;
  // The members' inboxes, kept alive here: a member may be destroyed (on its own
  // thread) while another still pokes it; a shut-down inbox ignores the poke.
  std::vector<std::shared_ptr<remote_inbox>> inboxes_;
  std::vector<std::thread> workers_;
  std::vector<scheduler::teardown_census> censuses_;  // each worker's, written as it ends
  std::atomic<std::size_t> drained_{0};
  std::atomic<std::size_t> quiet_{0};
  std::atomic<bool> deadlock_{false};
  std::atomic<std::size_t> deadlock_acted_{0};  // members other than 0 that cancelled theirs
  std::atomic<std::size_t> next_{0};
  std::atomic<std::size_t> queued_{0};    // fibers in the members' steal queues
  std::atomic<std::size_t> sleepers_{0};  // members between before_sleep and after_sleep
  std::mutex last_drain_mutex_;  // guards the two below
  std::vector<std::function<void()>> last_drain_work_;
  bool last_drain_done_ = false;
  bool first_drained_ = false;  // run()'s thread only
  bool stop_requested_ = false;  // run()'s thread only
};

// scheduler_for is the scheduler that spawn_options::on names, for a spawn on
// `here`: on_caller and on_any: here (on_any then queues the fiber where idle
// members may take it: scheduler::start_anywhere); index i: member i.
// Throws weft::error(errc::invalid_argument) naming weft::spawn for anything else.
scheduler& scheduler_for(scheduler& here, const weft::placement& on);

}  // namespace weft::detail
