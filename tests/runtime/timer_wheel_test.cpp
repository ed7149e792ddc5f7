// The timer wheel on its own: ordering, cascading, cancel, far deadlines, scale.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include <weft/runtime/detail/timer_wheel.hpp>
#include "../weft_test.hpp"

using weft::detail::timer_node;
using weft::detail::timer_wheel;
using namespace std::chrono_literals;

namespace {

// recording_timer remembers in which order timers fired.
struct recording_timer : timer_node {
  int label = 0;
  std::vector<int>* log = nullptr;
};

void record(timer_node* n) noexcept {
  auto* t = static_cast<recording_timer*>(n);
  t->log->push_back(t->label);
}

struct wheel_fixture : ::testing::Test {
  weft::time_point origin = weft::clock::now();
  timer_wheel wheel{origin};
  std::vector<int> fired;
  std::vector<std::unique_ptr<recording_timer>> timers;

  recording_timer* add(weft::duration after, int label) {
    auto t = std::make_unique<recording_timer>();
    t->label = label;
    t->log = &fired;
    t->fire = &record;
    wheel.insert(t.get(), origin + after, origin);
    timers.push_back(std::move(t));
    return timers.back().get();
  }
};

}  // namespace

TEST_F(wheel_fixture, TimerWheelFiresInDeadlineOrderAcrossLevels) {
  add(5s, 4);
  add(3ms, 1);
  add(70ms, 2);
  add(4100ms, 3);
  add(std::chrono::hours(30), 5);
  for (auto t = origin; fired.size() < 5; t += 1ms) wheel.advance(t);
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3, 4, 5}));
}

// Timers due in the same tick fire in the order they were set, on every level and
// on the due list (asyncio's and Go's order; the newest used to fire first), also
// with a cancelled one in between (unlinking the first, a middle and the last).
TEST_F(wheel_fixture, TimerWheelSameTickFiresInTheOrderSet) {
  for (int i = 0; i < 5; ++i) add(10ms, i);                  // level 0
  for (int i = 10; i < 15; ++i) add(std::chrono::seconds(3), i);  // level 1, cascades
  for (int i = 20; i < 25; ++i) add(-1ms, i);                // already due
  auto* middle = add(10ms, 99);
  add(10ms, 5);
  wheel.cancel(middle);
  wheel.cancel(add(10ms, 98));  // the last of its slot
  auto* first = add(std::chrono::seconds(3), 97);
  wheel.cancel(first);
  add(std::chrono::seconds(3), 15);
  wheel.advance(origin);
  EXPECT_EQ(fired, (std::vector<int>{20, 21, 22, 23, 24}));
  fired.clear();
  for (auto t = origin; fired.size() < 12 && t < origin + 4s; t += 1ms) wheel.advance(t);
  EXPECT_EQ(fired, (std::vector<int>{0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15}));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST_F(wheel_fixture, TimerWheelNeverFiresEarly) {
  add(10ms + 1us, 1);  // rounds up to tick 11
  wheel.advance(origin + 10ms);
  EXPECT_TRUE(fired.empty());
  wheel.advance(origin + 11ms);
  EXPECT_EQ(fired, std::vector<int>{1});
}

TEST_F(wheel_fixture, TimerWheelJumpFiresEverythingDue) {
  for (int i = 0; i < 100; ++i) add(std::chrono::milliseconds(i * 37 + 1), i);
  wheel.advance(origin + 1h);
  ASSERT_EQ(fired.size(), 100u);
  EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST_F(wheel_fixture, TimerWheelCancelledTimerNeverFires) {
  auto* a = add(5ms, 1);
  add(6ms, 2);
  auto* c = add(9000ms, 3);
  wheel.cancel(a);
  wheel.cancel(c);
  wheel.cancel(c);  // a second cancel is harmless
  EXPECT_FALSE(a->pending());
  wheel.advance(origin + 1h);
  EXPECT_EQ(fired, std::vector<int>{2});
}

TEST_F(wheel_fixture, TimerWheelPastDeadlineIsDueAtOnce) {
  recording_timer t;
  t.label = 7;
  t.log = &fired;
  t.fire = &record;
  wheel.insert(&t, origin - 1s, origin);
  EXPECT_TRUE(wheel.has_due());
  EXPECT_EQ(wheel.timeout_ms(origin), 0);
  wheel.fire_due();
  EXPECT_EQ(fired, std::vector<int>{7});
}

TEST_F(wheel_fixture, TimerWheelTimeoutRoundsUpToEarliestTimer) {
  EXPECT_EQ(wheel.timeout_ms(origin), -1);
  add(2500us, 1);  // tick 3
  EXPECT_EQ(wheel.timeout_ms(origin), 3);
  EXPECT_EQ(wheel.timeout_ms(origin + 2900us), 1);
  add(300s, 2);
  EXPECT_EQ(wheel.timeout_ms(origin), 3);
}

TEST_F(wheel_fixture, TimerWheelInsertWhileAdvancedKeepsOrder) {
  wheel.advance(origin + 1000ms);  // elapsed is now tick 1000
  add(1000ms + 64ms, 2);
  add(1000ms + 3ms, 1);
  add(1000ms + 5000ms, 3);
  for (auto t = origin + 1000ms; fired.size() < 3; t += 7ms) wheel.advance(t);
  EXPECT_EQ(fired, (std::vector<int>{1, 2, 3}));
}

TEST_F(wheel_fixture, TimerWheelRandomisedAgainstSortedReference) {
  std::mt19937_64 rng(12345);
  std::vector<std::pair<long, int>> expected;
  std::vector<recording_timer*> live;
  for (int i = 0; i < 20000; ++i) {
    const long ms = static_cast<long>(rng() % 200000);
    live.push_back(add(std::chrono::milliseconds(ms), i));
    expected.emplace_back(ms, i);
  }
  // Cancel a third of them.
  std::vector<bool> cancelled(expected.size());
  for (int i = 0; i < 20000; i += 3) {
    wheel.cancel(live[i]);
    cancelled[i] = true;
  }
  for (auto t = origin; t <= origin + 200s; t += std::chrono::milliseconds(rng() % 500 + 1))
    wheel.advance(t);
  wheel.advance(origin + 201s);
  std::vector<std::pair<long, int>> want;
  for (auto& e : expected)
    if (!cancelled[e.second]) want.push_back(e);
  ASSERT_EQ(fired.size(), want.size());
  // Timers fire in non-decreasing deadline order (ties in any order).
  std::vector<long> deadline_of(expected.size());
  for (auto& e : expected) deadline_of[e.second] = e.first;
  for (size_t i = 1; i < fired.size(); ++i)
    ASSERT_LE(deadline_of[fired[i - 1]], deadline_of[fired[i]]) << "at " << i;
}

TEST_F(wheel_fixture, TimerWheelMillionTimersInsertAndCancel) {
  // Scale, not speed: a million pending timers, all cancelled, leave an empty wheel.
  std::vector<recording_timer> many(1'000'000);
  std::mt19937 rng(7);
  for (size_t i = 0; i < many.size(); ++i) {
    many[i].fire = &record;
    many[i].log = &fired;
    wheel.insert(&many[i], origin + std::chrono::milliseconds(rng() % 3'600'000 + 1), origin);
  }
  EXPECT_EQ(wheel.size(), many.size());
  for (auto& t : many) wheel.cancel(&t);
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.timeout_ms(origin), -1);
  wheel.advance(origin + 2h);
  EXPECT_TRUE(fired.empty());
}

// A timer due exactly where a level's slot or turn begins (64^L ticks, and one tick
// either side) fires at that tick, never a tick early, whether the wheel's clock is
// at the origin or has moved.
TEST_F(wheel_fixture, TimerWheelFiresExactlyAtLevelBoundaries) {
  for (const std::uint64_t start : {std::uint64_t{0}, std::uint64_t{5}, std::uint64_t{4095}}) {
    for (int level = 1; level <= 5; ++level) {
      const std::uint64_t boundary = std::uint64_t{1} << (6 * level);
      for (const std::uint64_t tick : {boundary - 1, boundary, boundary + 1}) {
        if (tick <= start) continue;
        SCOPED_TRACE(testing::Message() << "start " << start << " tick " << tick);
        timer_wheel w(origin);
        w.advance(origin + std::chrono::milliseconds(start));
        std::vector<int> log;
        recording_timer t;
        t.label = 1;
        t.log = &log;
        t.fire = &record;
        w.insert(&t, origin + std::chrono::milliseconds(tick), origin + std::chrono::milliseconds(start));
        // One tick before: nothing (reached in a few jumps, as a sleeping loop would).
        w.advance(origin + std::chrono::milliseconds(tick - 1) + 999us);
        EXPECT_TRUE(log.empty());
        EXPECT_GE(w.timeout_ms(origin + std::chrono::milliseconds(tick - 1)), 1);
        w.advance(origin + std::chrono::milliseconds(tick));
        EXPECT_EQ(log, std::vector<int>{1});
        EXPECT_EQ(w.size(), 0u);
      }
    }
  }
}

// Timers beyond the top level's turn (2^36 ms, ~2.2 years), inserted after the wheel's
// clock has moved, wait on the overflow list: advancing to any time short of them
// fires nothing and terminates (the issue-12 hang re-filed such a timer into the slot
// being drained, forever), cancelling them leaves an empty wheel, and they fire at
// their tick when it comes.
TEST_F(wheel_fixture, TimerWheelFarTimersAfterTheClockMoved) {
  weft_test::hang_guard guard;
  const std::uint64_t span = std::uint64_t{1} << 36;
  wheel.advance(origin + 2ms);
  auto* a = add(std::chrono::hours(24 * 800), 1);  // ~2^36.0 ms: beyond the turn
  auto* b = add(std::chrono::milliseconds(span + 5), 2);
  auto* c = add(std::chrono::milliseconds(3 * span + 17), 3);
  auto* d = add(std::chrono::hours(24 * 365 * 200), 4);  // near time_point::max()
  EXPECT_EQ(wheel.size(), 4u);
  EXPECT_EQ(wheel.timeout_ms(origin + 2ms), 3'600'000);  // capped, no overflow
  wheel.advance(origin + 10ms);
  wheel.advance(origin + std::chrono::hours(24 * 700));
  EXPECT_TRUE(fired.empty());
  wheel.advance(origin + std::chrono::milliseconds(span + 4));
  EXPECT_EQ(fired, std::vector<int>{}) << "b is due at span + 5, not before";
  wheel.advance(origin + std::chrono::milliseconds(span + 5));
  EXPECT_EQ(fired, std::vector<int>{2});
  EXPECT_FALSE(b->pending());
  wheel.cancel(a);
  EXPECT_FALSE(a->pending());
  wheel.advance(origin + std::chrono::milliseconds(3 * span + 16));
  EXPECT_EQ(fired, std::vector<int>{2});
  wheel.advance(origin + std::chrono::milliseconds(3 * span + 17));
  EXPECT_EQ(fired, (std::vector<int>{2, 3}));
  EXPECT_FALSE(c->pending());
  EXPECT_TRUE(d->pending());
  wheel.cancel(d);
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.timeout_ms(origin), -1);
}

// The farthest deadlines a time_point holds (time_point::max() - 1 ns) and the
// nearest (time_point::min(), anything before the origin) are accepted.
TEST_F(wheel_fixture, TimerWheelExtremeDeadlines) {
  recording_timer far, past, min;
  for (auto* t : {&far, &past, &min}) {
    t->log = &fired;
    t->fire = &record;
  }
  far.label = 1;
  past.label = 2;
  min.label = 3;
  wheel.advance(origin + 1s);
  wheel.insert(&far, weft::time_point::max() - 1ns, origin + 1s);
  wheel.insert(&past, origin - 1h, origin + 1s);
  wheel.insert(&min, weft::time_point::min(), origin + 1s);
  EXPECT_EQ(wheel.timeout_ms(origin + 1s), 0);
  wheel.advance(origin + 2s);
  std::sort(fired.begin(), fired.end());
  EXPECT_EQ(fired, (std::vector<int>{2, 3}));
  EXPECT_TRUE(far.pending());
  EXPECT_EQ(wheel.timeout_ms(origin + 2s), 3'600'000);
  wheel.cancel(&far);
  EXPECT_EQ(wheel.size(), 0u);
}
