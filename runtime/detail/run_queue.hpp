// run_queue.hpp: the FIFO of runnable fibers of one scheduler (owner thread only).
//
// Intrusive through fiber_record::next_ready_, so making a fiber runnable never
// allocates. A fiber is in the queue at most once: only the waker that ends its
// park, or yield() for the running fiber itself, pushes it.
//
// The queue is a front slot followed by a linked list. Most hand-offs (a channel
// or mutex passed between two fibers) find the queue empty, push one fiber and
// pop it again at the next switch; the slot serves them with one store and one
// load on the scheduler, and no store into the woken fiber's record nor a load
// from it on the way to the switch. The slot is filled only when the list is
// empty too, so it always holds the oldest fiber and the order stays FIFO.
#pragma once

#include <weft/runtime/detail/always_inline.hpp>
#include <weft/runtime/detail/assert.hpp>
#include <weft/runtime/detail/fiber_record.hpp>

namespace weft::detail {

class run_queue {
 public:
  bool empty() const noexcept { return front_ == nullptr && head_ == nullptr; }

  WEFT_ALWAYS_INLINE void push(fiber_record* f) noexcept {
    // Runnable means not parked; and a fiber is queued once (the cheap part of
    // that: not the newest or the oldest entry already).
    WEFT_ASSERT(f->parked_in_ == 0 && f != front_ && f != tail_);
    if (front_ == nullptr && head_ == nullptr) [[likely]] {
      front_ = f;
      return;
    }
    push_back(f);
  }

  WEFT_ALWAYS_INLINE fiber_record* pop() noexcept {
    if (fiber_record* f = front_) [[likely]] {
      front_ = nullptr;
      return f;
    }
    return pop_front();
  }

  // rotate is push(f) then pop(), for a fiber that yields: with one other fiber
  // runnable (two fibers taking turns), the two trade places in the slot.
  WEFT_ALWAYS_INLINE fiber_record* rotate(fiber_record* f) noexcept {
    WEFT_ASSERT(f->parked_in_ == 0 && f != front_ && f != tail_);
    if (head_ == nullptr) [[likely]] {
      fiber_record* next = front_;
      if (next == nullptr) return f;
      front_ = f;
      return next;
    }
    push_back(f);
    return pop();
  }

 private:
  // The list behind the slot. Branches, not a pointer to the last link: a store
  // through a loaded pointer resolves its address late, and the pop that follows
  // (the next switch) waits for it.
  void push_back(fiber_record* f) noexcept {
    f->next_ready_ = nullptr;
    if (tail_)
      tail_->next_ready_ = f;
    else
      head_ = f;
    tail_ = f;
  }

  fiber_record* pop_front() noexcept {
    fiber_record* f = head_;
    if (f) {
      head_ = f->next_ready_;
      if (!head_) tail_ = nullptr;
    }
    return f;
  }

  fiber_record* front_ = nullptr;  // the oldest runnable fiber, or empty
  fiber_record* head_ = nullptr;   // the rest, oldest first
  fiber_record* tail_ = nullptr;
};

}  // namespace weft::detail
