// work_stealing.cpp: fibers spawned with on_any, which any scheduler of the runtime
// may start (steal_queue.hpp has the rules).
//
// Go's scheduler is the model: a new goroutine goes on its creator's queue, where
// its own P runs it later unless an idle P steals half of that queue first; a P
// that queues work while others sleep wakes one (wakep). (Go skips that when a P
// is spinning already; weft pokes a sleeper anyway, since counting the spinners
// would put a shared write on every idle spell of every hand-off.) weft moves only
// fibers that have not started.
//
// The one delicate point is a fiber's owner_, which a thief rewrites. Whoever
// needs the fiber to stay put (a join from the spawning scheduler, the requests
// other threads send about it) either finds it still queued here, under the lock,
// and starts it here (keep_here), or finds it gone and reads the new owner_ after
// the lock: from then on it never changes.
#include <array>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scheduler_group.hpp>

namespace weft::detail {
namespace {
// A thief takes at most this many fibers at a time; the rest stay for others.
constexpr std::size_t most_stolen_at_once = 32;
}  // namespace

void scheduler::start_anywhere(fiber_record* rec, std::size_t stack_size) {
  if (group_ == nullptr || shutting_down_) return start(rec, stack_size);
  rec->owner_.store(this, std::memory_order_relaxed);
  rec->id_ = take_id();
  rec->stealable_ = true;
  rec->queued_stack_size_ = stack_size;
  group_->count_queued();
  steal_.push(rec);
  group_->wake_a_sleeper(*this);
}

// keep_here: true if `rec` runs here for good: it was not stealable, or it was still
// in our queue (then it starts now), or it had started here. False if a thief has
// taken it (its owner_ names the thief now).
bool scheduler::keep_here(fiber_record* rec) noexcept {
  if (rec->stealable_ && steal_.remove(rec)) {
    group_->work_taken(1);
    apply_start(rec, rec->queued_stack_size_);
    return true;
  }
  return rec->owner_.load(std::memory_order_acquire) == this;
}

// start_own_queued starts the oldest fiber of our own queue, if there is one.
bool scheduler::start_own_queued() noexcept {
  if (steal_.size() == 0) return false;
  fiber_record* rec = nullptr;
  if (steal_.take(&rec, 1, this) == 0) return false;
  start_taken(&rec, 1);
  return true;
}

// steal_work takes half of the first non-empty queue of another member, starting
// with the next one, and starts what it took. Never while shutting down: a member
// that has drained must not take on fibers, and the others start their own.
bool scheduler::steal_work() noexcept {
  if (group_ == nullptr || shutting_down_ || !group_->has_queued_work()) return false;
  std::array<fiber_record*, most_stolen_at_once> taken;
  const std::size_t members = group_->size();
  for (std::size_t k = 1; k < members; ++k) {
    scheduler& victim = group_->at((index_ + k) % members);
    if (victim.steal_.size() == 0) continue;
    const std::size_t n = victim.steal_.take_half(taken.data(), taken.size(), this);
    if (n == 0) continue;
    start_taken(taken.data(), n);
    return true;
  }
  return false;
}

void scheduler::start_taken(fiber_record** taken, std::size_t n) noexcept {
  group_->work_taken(n);
  for (std::size_t i = 0; i < n; ++i) apply_start(taken[i], taken[i]->queued_stack_size_);
}

}  // namespace weft::detail
