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
  run_queue() = default;
  run_queue(const run_queue&) = delete;  // tail_ may point into the queue itself
  run_queue& operator=(const run_queue&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }

  // tail_ points at the link to fill next (head_ itself when empty), so neither
  // end needs a branch: a queue of one is the common case of two fibers handing
  // the CPU back and forth, and its branches would be taken every time.
  void push(fiber_record* f) noexcept {
    f->next_ready_ = nullptr;
    *tail_ = f;
    tail_ = &f->next_ready_;
  }

  fiber_record* pop() noexcept {
    fiber_record* f = head_;
    if (f) [[likely]] {
      head_ = f->next_ready_;
      tail_ = head_ ? tail_ : &head_;
    }
    return f;
  }

 private:
  fiber_record* head_ = nullptr;
  fiber_record** tail_ = &head_;
};

}  // namespace weft::detail
