#include "runtime/detail/timer_wheel.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>

namespace weft::detail {
namespace {

constexpr int bits_per_level = 6;
constexpr std::uint64_t slot_mask = 63;
// Ticks the top level can tell apart; later deadlines are clamped into it and
// re-placed (not fired) when their clamped slot comes up.
constexpr std::uint64_t max_span = std::uint64_t{1} << (bits_per_level * timer_wheel::levels);

constexpr std::uint64_t slot_range(int level) noexcept {
  return std::uint64_t{1} << (bits_per_level * level);
}
constexpr std::uint64_t level_range(int level) noexcept { return slot_range(level + 1); }

// level_for: the highest 6-bit group where `when` differs from `elapsed`.
int level_for(std::uint64_t elapsed, std::uint64_t when) noexcept {
  std::uint64_t masked = (elapsed ^ when) | slot_mask;
  if (masked >= max_span) masked = max_span - 1;
  const int significant = 63 - std::countl_zero(masked);
  return significant / bits_per_level;
}

}  // namespace

std::uint64_t timer_wheel::tick_at_or_after(time_point t) const noexcept {
  if (t <= origin_) return 0;
  const auto d = t - origin_;
  const auto ticks = std::chrono::ceil<tick_duration>(d).count();
  return static_cast<std::uint64_t>(ticks);
}

std::uint64_t timer_wheel::tick_before(time_point t) const noexcept {
  if (t <= origin_) return 0;
  return static_cast<std::uint64_t>(std::chrono::floor<tick_duration>(t - origin_).count());
}

void timer_wheel::push(timer_node** head, timer_node* node) noexcept {
  node->prev = nullptr;
  node->next = *head;
  if (*head) (*head)->prev = node;
  *head = node;
  node->head = head;
  ++size_;
}

void timer_wheel::unlink(timer_node* node) noexcept {
  if (node->prev)
    node->prev->next = node->next;
  else
    *node->head = node->next;
  if (node->next) node->next->prev = node->prev;
  // An emptied wheel slot clears its occupancy bit; the slot's index is recovered
  // from the address of its list head.
  if (*node->head == nullptr && node->head != &due_) {
    const auto index = static_cast<std::size_t>(node->head - &slots_[0][0]);
    occupied_[index / slots] &= ~(std::uint64_t{1} << (index % slots));
  }
  node->head = nullptr;
  node->prev = node->next = nullptr;
  --size_;
}

void timer_wheel::place(timer_node* node) noexcept {
  if (node->when <= elapsed_) {
    push(&due_, node);
    return;
  }
  const std::uint64_t when = std::min(node->when, elapsed_ + max_span - 1);
  const int level = level_for(elapsed_, when);
  const int slot = static_cast<int>((when >> (bits_per_level * level)) & slot_mask);
  push(&slots_[level][slot], node);
  occupied_[level] |= std::uint64_t{1} << slot;
}

void timer_wheel::insert(timer_node* node, time_point deadline, time_point now) noexcept {
  if (deadline <= now) {
    push(&due_, node);
    return;
  }
  node->when = tick_at_or_after(deadline);
  place(node);
}

void timer_wheel::cancel(timer_node* node) noexcept {
  if (node->pending()) unlink(node);
}

void timer_wheel::fire_due() noexcept {
  while (timer_node* node = due_) {
    unlink(node);
    node->fire(node);
  }
}

std::optional<timer_wheel::expiration> timer_wheel::next_expiration() const noexcept {
  for (int level = 0; level < levels; ++level) {
    const std::uint64_t mask = occupied_[level];
    if (mask == 0) continue;
    const std::uint64_t range = slot_range(level);
    const int now_slot = static_cast<int>((elapsed_ / range) & slot_mask);
    // Scan from the current slot onward, wrapping: slots behind it belong to the
    // next turn of this level.
    const int distance = std::countr_zero(std::rotr(mask, now_slot));
    const int slot = (now_slot + distance) & static_cast<int>(slot_mask);
    std::uint64_t deadline = (elapsed_ & ~(level_range(level) - 1)) + slot * range;
    if (slot < now_slot) deadline += level_range(level);
    return expiration{level, slot, deadline};
  }
  return std::nullopt;
}

void timer_wheel::take_slot(int level, int slot) noexcept {
  while (timer_node* node = slots_[level][slot]) {
    unlink(node);
    if (node->when <= elapsed_)
      node->fire(node);
    else
      place(node);  // cascades to a lower level (or re-clamps a far deadline)
  }
}

void timer_wheel::advance(time_point now) noexcept {
  fire_due();
  const std::uint64_t now_tick = tick_before(now);
  while (auto e = next_expiration()) {
    if (e->deadline > now_tick) break;
    elapsed_ = std::max(elapsed_, e->deadline);
    take_slot(e->level, e->slot);
  }
  elapsed_ = std::max(elapsed_, now_tick);
  fire_due();  // anything a fire callback scheduled for "now"
}

int timer_wheel::timeout_ms(time_point now) const noexcept {
  if (due_) return 0;
  const auto e = next_expiration();
  if (!e) return -1;
  const time_point at = origin_ + tick_duration(e->deadline);
  if (at <= now) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(at - now).count();
  return static_cast<int>(std::min<long long>(ms, 1000LL * 60 * 60));  // re-check hourly
}

}  // namespace weft::detail
