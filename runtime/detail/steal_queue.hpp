// steal_queue.hpp: fibers a scheduler of a group has been given but not started,
// which any member of the group may take (work stealing).
//
// A fiber spawned with on_any in a runtime of several schedulers waits here, on
// the spawning fiber's scheduler. That scheduler starts them one at a time when it
// has nothing else to run (and one at each look at timers and I/O, so a busy run
// queue cannot starve them); a member with nothing to do takes half of them and
// starts them itself. Only fibers that have never run move: a started fiber stays
// on its scheduler for good, so thread_local variables and errno keep their meaning
// across its blocking calls.
//
// A fiber leaves the queue exactly once, under the lock: by take() (its owner or a
// thief; a thief rewrites owner_ before it unlocks) or by remove() (its owner,
// which starts it at once because something needs it settled: a join from its own
// scheduler). Every queued record is linked through its alive links (it is not in
// the alive list before it starts) and is kept alive by its own reference: an
// unstarted fiber cannot finish.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>

#include <weft/runtime/detail/fiber_record.hpp>

namespace weft::detail {

class steal_queue {
 public:
  steal_queue() = default;
  steal_queue(const steal_queue&) = delete;
  steal_queue& operator=(const steal_queue&) = delete;

  // push appends `rec`, whose owner_ is this queue's scheduler (its owner thread).
  void push(fiber_record* rec) noexcept;

  // take removes up to `most` records from the front into `out` and returns how
  // many. A thief passes itself as `new_owner`, which each record's owner_ becomes
  // before the lock is released; the owner passes itself.
  std::size_t take(fiber_record** out, std::size_t most, scheduler* new_owner) noexcept;
  // take_half is take of half the queue (rounded up), at most `most`.
  std::size_t take_half(fiber_record** out, std::size_t most, scheduler* new_owner) noexcept;

  // remove takes `rec` out if it is still queued here: true if it was.
  bool remove(fiber_record* rec) noexcept;

  // if_queued runs fn() under the lock if `rec` is still queued here, and says
  // whether it did: for what may touch a queued fiber without starting it (the
  // detached flag of a dropped handle).
  template <class Fn>
  bool if_queued(fiber_record* rec, Fn fn) noexcept {
    std::lock_guard lock(mutex_);
    if (!rec->queued_) return false;
    fn();
    return true;
  }

  // size is how many wait; exact only under the lock, so a hint for a thief
  // deciding whether to look.
  std::size_t size() const noexcept { return size_.load(std::memory_order_relaxed); }

 private:
  void unlink_locked(fiber_record* rec) noexcept;

  std::mutex mutex_;
  fiber_record* head_ = nullptr;
  fiber_record* tail_ = nullptr;
  std::atomic<std::size_t> size_{0};
};

}  // namespace weft::detail
