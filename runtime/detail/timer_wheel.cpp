#include <weft/runtime/detail/timer_wheel.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <utility>

namespace weft::detail {
namespace {

constexpr int bits_per_level = 6;
constexpr std::uint64_t slot_mask = 63;
// Ticks the wheel's six levels tell apart: one turn of the top level (2^36 ms, ~2.2
// years). A timer whose tick lies outside the top level's current turn waits on the
// overflow list instead (see place()).
constexpr std::uint64_t max_span = std::uint64_t{1} << (bits_per_level * timer_wheel::levels);

constexpr std::uint64_t slot_range(int level) noexcept {
  return std::uint64_t{1} << (bits_per_level * level);
}
constexpr std::uint64_t level_range(int level) noexcept { return slot_range(level + 1); }

// level_for: the highest 6-bit group where `when` differs from `elapsed`; below
// `levels` for every `when` in the top level's current turn (place() sees to it).
int level_for(std::uint64_t elapsed, std::uint64_t when) noexcept {
  const std::uint64_t masked = (elapsed ^ when) | slot_mask;
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

// Lists are FIFO: push appends, and the first node's `prev` is the last node (see
// timer_node), so that timers due in the same tick fire in the order they were set,
// as asyncio's and Go's do (until 2026-12-06 the newest fired first).
void timer_wheel::push(timer_node** head, timer_node* node) noexcept {
  node->next = nullptr;
  if (timer_node* first = *head) {
    timer_node* last = first->prev;
    last->next = node;
    node->prev = last;
    first->prev = node;
  } else {
    node->prev = node;
    *head = node;
  }
  node->head = head;
  ++size_;
}

void timer_wheel::unlink(timer_node* node) noexcept {
  timer_node* first = *node->head;
  if (node == first) {
    *node->head = node->next;
    if (node->next) node->next->prev = node->prev;  // the new first keeps the last
  } else {
    node->prev->next = node->next;
    if (node->next)
      node->next->prev = node->prev;
    else
      first->prev = node->prev;  // the last went: the first points at the new last
  }
  // An emptied wheel slot clears its occupancy bit; the slot's index is recovered
  // from the address of its list head.
  if (*node->head == nullptr && node->head != &due_ && node->head != &overflow_) {
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
  // Beyond the top level's current turn, the tick's top-level slot would be one the
  // wheel has passed or is draining: such a timer waits on the overflow list, which
  // is re-placed when that turn ends (next_expiration), at most once per ~2.2 years.
  if ((node->when ^ elapsed_) >= max_span) {
    push(&overflow_, node);
    return;
  }
  const int level = level_for(elapsed_, node->when);
  const int slot = static_cast<int>((node->when >> (bits_per_level * level)) & slot_mask);
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
    // Every timer of this level is in the current turn of the level above and after
    // `elapsed_`, so its slot is at or after the current one: no slot behind it is
    // occupied (the mask has no bits below now_slot).
    const int slot = std::countr_zero(mask >> now_slot) + now_slot;
    const std::uint64_t deadline = (elapsed_ & ~(level_range(level) - 1)) + slot * range;
    return expiration{level, slot, deadline};
  }
  // Nothing in the wheel: the overflow list is looked at when the top level's turn
  // ends. Every wheel timer is due before that, so it comes last.
  if (overflow_) return expiration{levels, 0, (elapsed_ | (max_span - 1)) + 1};
  return std::nullopt;
}

void timer_wheel::take_slot(int level, int slot) noexcept {
  if (level == levels) {
    // A new turn of the top level: re-place the overflow list. Detach it first, since
    // a timer still beyond this turn goes back onto it.
    timer_node* node = std::exchange(overflow_, nullptr);
    while (node) {
      timer_node* next = node->next;
      node->head = nullptr;
      node->prev = node->next = nullptr;
      --size_;
      place(node);
      node = next;
    }
    return;
  }
  while (timer_node* node = slots_[level][slot]) {
    unlink(node);
    // A slot is taken when time reaches its start; a timer in it is due then or
    // belongs to a lower level (never to this slot again).
    if (node->when <= elapsed_)
      node->fire(node);
    else
      place(node);
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
  // Compared in ticks first: a far expiration (up to ~2^43 ticks) in nanoseconds
  // would overflow a time_point.
  constexpr std::uint64_t max_wait = 1000ULL * 60 * 60;  // re-check hourly
  const std::uint64_t now_tick = tick_before(now);
  if (e->deadline > now_tick + max_wait) return static_cast<int>(max_wait);
  const time_point at = origin_ + tick_duration(e->deadline);
  if (at <= now) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(at - now).count());
}

}  // namespace weft::detail
