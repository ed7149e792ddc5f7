// timer_wheel.hpp: a hierarchical timing wheel, O(1) insert and cancel.
//
// Sleeping fibers and deadlines are timers, and most deadlines are cancelled before
// they fire, so both operations must stay O(1) with a million pending. Six levels of
// 64 slots, 1 ms ticks (the design of tokio's and the Linux kernel's wheels):
//
//   level 0: 64 slots x 1 ms        timers due in the current 64 ms block
//   level 1: 64 slots x 64 ms       ... in the current 4 s block, not level 0's
//   ...
//   level 5: 64 slots x 64^5 ms     ... in the current 2^36 ms (~2.2 year) turn
//   overflow list                    later ones (up to time_point::max(), ~292 years):
//                                    re-placed when the top level starts a new turn
//
// A timer's level is the highest 6-bit group in which its tick differs from the
// wheel's `elapsed_` tick, so every level-L timer is due after every level-(L-1) one.
// When time reaches a slot of level L > 0 its timers cascade down to lower levels.
// Each level keeps a 64-bit occupancy mask, so the next expiry is a few bit scans.
//
// Deadlines round *up* to the next tick: a timer never fires early, and fires at most
// one tick (+ epoll's own slack) late. Deadlines already in the past skip the wheel
// and go to a `due` list that the scheduler drains at its next switch.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include <weft/runtime/clock.hpp>

namespace weft::detail {

// timer_node is embedded in whatever waits (a fiber's park record). It is linked into
// exactly one slot list (or the due list) while pending, and into none otherwise.
struct timer_node {
  timer_node* prev = nullptr;  // the previous node; for a list's first node, its last
  timer_node* next = nullptr;  // null for the last
  timer_node** head = nullptr;  // the list it is linked in; nullptr when not pending
  std::uint64_t when = 0;       // deadline in ticks since the wheel's origin
  void (*fire)(timer_node*) noexcept = nullptr;  // called once when due

  bool pending() const noexcept { return head != nullptr; }
};

class timer_wheel {
 public:
  static constexpr int levels = 6;
  static constexpr int slots = 64;
  using tick_duration = std::chrono::milliseconds;

  explicit timer_wheel(time_point origin) noexcept : origin_(origin) {}

  // insert schedules `node` to fire at `deadline`; `now` is the caller's clock
  // reading (a deadline <= now goes to the due list). The node must not be pending.
  void insert(timer_node* node, time_point deadline, time_point now) noexcept;

  // insert_due schedules `node` to fire at the next drain, without reading the clock.
  void insert_due(timer_node* node) noexcept { push(&due_, node); }

  // cancel unlinks a pending node; a node that is not pending is left alone.
  void cancel(timer_node* node) noexcept;

  bool has_due() const noexcept { return due_ != nullptr; }
  // fire_due fires every timer on the due list.
  void fire_due() noexcept;

  // advance moves the wheel to `now` and fires every timer due by then.
  void advance(time_point now) noexcept;

  // timeout_ms is how long epoll may sleep: -1 (no timer), 0 (a timer is due) or
  // the milliseconds until the earliest timer, rounded up.
  int timeout_ms(time_point now) const noexcept;

  std::size_t size() const noexcept { return size_; }

 private:
  struct expiration {
    int level;  // `levels` for the overflow list
    int slot;
    std::uint64_t deadline;  // tick at which the slot is due
  };
  std::optional<expiration> next_expiration() const noexcept;
  std::uint64_t tick_at_or_after(time_point t) const noexcept;
  std::uint64_t tick_before(time_point t) const noexcept;
  void place(timer_node* node) noexcept;  // into the slot its `when` belongs to
  void push(timer_node** head, timer_node* node) noexcept;
  void unlink(timer_node* node) noexcept;
  void take_slot(int level, int slot) noexcept;

  time_point origin_;
  std::uint64_t elapsed_ = 0;  // every timer due at or before this tick has fired
  std::size_t size_ = 0;
  timer_node* due_ = nullptr;
  timer_node* overflow_ = nullptr;  // timers beyond the top level's current turn
  std::array<std::uint64_t, levels> occupied_{};
  std::array<std::array<timer_node*, slots>, levels> slots_{};
};

}  // namespace weft::detail
