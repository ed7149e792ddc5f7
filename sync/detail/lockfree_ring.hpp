// lockfree_ring.hpp: a fixed-size ring that senders and receivers of several threads
// use at once without a lock: the buffer of a bounded channel shared between
// schedulers (channel.hpp says when a channel switches to it).
//
// The design is the bounded MPMC queue of Dmitry Vyukov as crossbeam-channel's
// `array` flavour lays it out: every slot has a stamp that says whose turn it is,
// senders reserve a slot by a compare-and-swap on `tail`, receivers on `head`, and
// each side then publishes with one release store of the slot's stamp. The two
// indices sit on their own cache lines, so a steady stream moves a slot's line
// between the two cores about once per few items instead of a lock's line twice per
// item (bench/NOTES.md).
//
// An index is (lap, slot) in one word: the slot in the bits below `mark_bit_`, the
// lap above `one_lap_`, so an index never repeats within 2^64 / one_lap_ laps and a
// capacity need not be a power of two. Slot i's stamp starts at i: a sender may
// fill it when the stamp equals its tail index, a receiver may empty it when the
// stamp is its head index + 1, and emptying it sets the stamp to the index one lap
// on.
//
// close() sets `mark_bit_` in `tail`: a send that reserved its slot before the mark
// completes and is received; every later one sees the mark and fails. A receiver
// reports `closed` only when the ring is empty *and* marked, so a value sent before
// the close is never lost to a receiver that looked after it.
//
// Reserved but not yet published: a receiver that finds the next slot reserved by a
// sender that has not stored its stamp yet (it is between its compare-and-swap and
// its store, a few instructions) waits for that store, spinning, then yielding the
// CPU. T's move constructor runs in that window; it must not block (channel.hpp
// requires it not to throw, and a move that suspends the fiber is not supported).
#pragma once

#include <sched.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <utility>

namespace weft::detail {

// ring_backoff: spin a little, then give the CPU away (the other side is between
// two stores; spin_lock.hpp spins the same way).
class ring_backoff {
 public:
  void wait() noexcept {
    if (spins_++ < 128)
      __builtin_ia32_pause();
    else
      ::sched_yield();
  }

 private:
  unsigned spins_ = 0;
};

enum class ring_result { ok, full, empty, closed };

template <class T>
class lockfree_ring {
 public:
  // A ring of `capacity` slots (capacity > 0); std::bad_alloc if no memory.
  explicit lockfree_ring(std::size_t capacity)
      : capacity_(capacity),
        mark_bit_(std::bit_ceil(capacity + 1)),
        one_lap_(mark_bit_ * 2),
        slots_(std::make_unique<slot[]>(capacity)) {
    for (std::size_t i = 0; i < capacity; ++i) slots_[i].stamp.store(i, std::memory_order_relaxed);
  }
  lockfree_ring(const lockfree_ring&) = delete;
  lockfree_ring& operator=(const lockfree_ring&) = delete;
  ~lockfree_ring() {
    // Nobody else is left: drop what is still buffered.
    std::optional<T> v;
    while (try_pop(v) == ring_result::ok) v.reset();
  }

  std::size_t capacity() const noexcept { return capacity_; }

  // try_push moves v into the ring: ok, full (v untouched) or closed (v untouched).
  ring_result try_push(T& v) noexcept {
    ring_backoff backoff;
    std::size_t tail = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (tail & mark_bit_) return ring_result::closed;
      const std::size_t index = tail & (mark_bit_ - 1);
      slot& s = slots_[index];
      const std::size_t stamp = s.stamp.load(std::memory_order_acquire);
      if (stamp == tail) {
        // This slot is free on this lap: reserve it.
        if (tail_.compare_exchange_weak(tail, next(tail, index), std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          ::new (static_cast<void*>(s.storage)) T(std::move(v));
          s.stamp.store(tail + 1, std::memory_order_release);
          return ring_result::ok;
        }
        // Lost the slot to another sender: `tail` holds the new index.
      } else if (stamp + one_lap_ == tail + 1) {
        // The slot still holds last lap's value: full, unless a receiver moved on.
        // seq_cst: a waiting sender's flag store comes before this load (channel.hpp)
        if (head_.load(std::memory_order_seq_cst) + one_lap_ == tail) return ring_result::full;
        backoff.wait();
        tail = tail_.load(std::memory_order_relaxed);
      } else {
        // Another sender got this slot first; look again.
        backoff.wait();
        tail = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // try_pop moves the oldest value into `out`: ok, empty, or closed (empty and
  // closed: nothing more will come).
  ring_result try_pop(std::optional<T>& out) noexcept {
    ring_backoff backoff;
    std::size_t head = head_.load(std::memory_order_relaxed);
    for (;;) {
      const std::size_t index = head & (mark_bit_ - 1);
      slot& s = slots_[index];
      const std::size_t stamp = s.stamp.load(std::memory_order_acquire);
      if (stamp == head + 1) {
        if (head_.compare_exchange_weak(head, next(head, index), std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          T* value = std::launder(reinterpret_cast<T*>(s.storage));
          out.emplace(std::move(*value));
          value->~T();
          s.stamp.store(head + one_lap_, std::memory_order_release);
          return ring_result::ok;
        }
      } else if (stamp == head) {
        // Nothing published here yet: empty, unless a sender reserved it already.
        // seq_cst: a waiting receiver's flag store comes before this load (channel.hpp)
        const std::size_t tail = tail_.load(std::memory_order_seq_cst);
        if ((tail & ~mark_bit_) == head) return (tail & mark_bit_) ? ring_result::closed : ring_result::empty;
        backoff.wait();  // reserved, being written
        head = head_.load(std::memory_order_relaxed);
      } else {
        backoff.wait();  // another receiver took it
        head = head_.load(std::memory_order_relaxed);
      }
    }
  }

  // close marks the ring: later sends fail, what is in it stays receivable. True if
  // this call marked it.
  bool close() noexcept { return !(tail_.fetch_or(mark_bit_, std::memory_order_seq_cst) & mark_bit_); }
  bool closed() const noexcept { return tail_.load(std::memory_order_seq_cst) & mark_bit_; }

  // size is how many values are in the ring at one moment of the call.
  std::size_t size() const noexcept {
    for (;;) {
      const std::size_t tail = tail_.load(std::memory_order_seq_cst);
      const std::size_t head = head_.load(std::memory_order_seq_cst);
      if (tail_.load(std::memory_order_seq_cst) != tail) continue;  // moved meanwhile
      const std::size_t head_index = head & (mark_bit_ - 1);
      const std::size_t tail_index = tail & (mark_bit_ - 1);
      if (head_index < tail_index) return tail_index - head_index;
      if (head_index > tail_index) return capacity_ - head_index + tail_index;
      return (tail & ~mark_bit_) == head ? 0 : capacity_;
    }
  }

 private:
  struct slot {
    std::atomic<std::size_t> stamp;
    alignas(T) unsigned char storage[sizeof(T)];
  };

  // next is the index after `at` (slot `index`): the next slot, or slot 0 of the
  // next lap.
  std::size_t next(std::size_t at, std::size_t index) const noexcept {
    return index + 1 < capacity_ ? at + 1 : (at & ~(one_lap_ - 1)) + one_lap_;
  }

  // Each index on its own cache line: senders write one, receivers the other.
  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) const std::size_t capacity_;
  const std::size_t mark_bit_;
  const std::size_t one_lap_;
  const std::unique_ptr<slot[]> slots_;
};

}  // namespace weft::detail
