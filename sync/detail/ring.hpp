// ring.hpp: the buffer of a channel, a FIFO ring that grows up to a limit.
//
// Storage grows by doubling, so a channel of capacity 1,000,000 that holds ten
// items holds memory for ten-ish, and an unbounded channel is the same ring with no
// limit. Elements move in and out; T's move constructor must not throw (channel.hpp
// checks), so growing can only fail in the allocation, before anything moved.
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace weft::detail {

template <class T>
class ring {
 public:
  ring() = default;
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;
  ~ring() {
    while (size_ > 0) (void)pop();  // the popped value dies at the end of the statement
    std::allocator<T>().deallocate(slots_, capacity_);
  }

  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

  // swap exchanges the contents (storage included) with `other`.
  void swap(ring& other) noexcept {
    std::swap(slots_, other.slots_);
    std::swap(capacity_, other.capacity_);
    std::swap(head_, other.head_);
    std::swap(size_, other.size_);
  }

  bool full() const noexcept { return size_ == capacity_; }

  // push appends v; it may allocate (std::bad_alloc, v untouched).
  void push(T&& v) {
    if (full()) grow();
    push_within_capacity(std::move(v));
  }

  // push_within_capacity appends v to a ring that is not full().
  void push_within_capacity(T&& v) noexcept {
    std::size_t tail = head_ + size_;
    if (tail >= capacity_) tail -= capacity_;
    ::new (static_cast<void*>(slots_ + tail)) T(std::move(v));
    ++size_;
  }

  // pop removes the front element and returns it.
  T pop() noexcept {
    T* front = slots_ + head_;
    T v(std::move(*front));
    front->~T();
    if (++head_ == capacity_) head_ = 0;
    --size_;
    return v;
  }

  // grow doubles the storage (std::bad_alloc: nothing changed).
  void grow() {
    const std::size_t bigger = capacity_ == 0 ? 8 : capacity_ * 2;
    T* fresh = std::allocator<T>().allocate(bigger);
    for (std::size_t i = 0; i < size_; ++i) {
      T* from = slots_ + (head_ + i) % capacity_;
      ::new (static_cast<void*>(fresh + i)) T(std::move(*from));
      from->~T();
    }
    std::allocator<T>().deallocate(slots_, capacity_);
    slots_ = fresh;
    capacity_ = bigger;
    head_ = 0;
  }

 private:
  T* slots_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace weft::detail
