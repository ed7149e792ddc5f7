#include <weft/runtime/detail/steal_queue.hpp>

#include <algorithm>

namespace weft::detail {

void steal_queue::push(fiber_record* rec) noexcept {
  std::lock_guard lock(mutex_);
  rec->queued_ = true;
  rec->next_alive_ = nullptr;
  rec->prev_alive_ = tail_;
  if (tail_)
    tail_->next_alive_ = rec;
  else
    head_ = rec;
  tail_ = rec;
  size_.fetch_add(1, std::memory_order_relaxed);
}

void steal_queue::unlink_locked(fiber_record* rec) noexcept {
  if (rec->prev_alive_)
    rec->prev_alive_->next_alive_ = rec->next_alive_;
  else
    head_ = rec->next_alive_;
  if (rec->next_alive_)
    rec->next_alive_->prev_alive_ = rec->prev_alive_;
  else
    tail_ = rec->prev_alive_;
  rec->prev_alive_ = rec->next_alive_ = nullptr;
  rec->queued_ = false;
  size_.fetch_sub(1, std::memory_order_relaxed);
}

std::size_t steal_queue::take(fiber_record** out, std::size_t most, scheduler* new_owner) noexcept {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  while (n < most && head_ != nullptr) {
    fiber_record* rec = head_;
    unlink_locked(rec);
    rec->owner_.store(new_owner, std::memory_order_relaxed);  // the unlock publishes it
    out[n++] = rec;
  }
  return n;
}

std::size_t steal_queue::take_half(fiber_record** out, std::size_t most, scheduler* new_owner) noexcept {
  const std::size_t half = (size() + 1) / 2;
  return take(out, std::min(most, std::max<std::size_t>(half, 1)), new_owner);
}

bool steal_queue::remove(fiber_record* rec) noexcept {
  std::lock_guard lock(mutex_);
  if (!rec->queued_) return false;
  unlink_locked(rec);
  return true;
}

}  // namespace weft::detail
