// Fiber stacks: reuse, guard pages, and the mapping budget.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/wait.h>

#include <csignal>

#include <set>
#include <vector>

#include "../weft_test.hpp"
#include "runtime/detail/sanitizer.hpp"
#include "runtime/detail/stack_pool.hpp"

using weft::detail::stack;
using weft::detail::stack_pool;
using namespace weft_test;

TEST(StackPool, ReleasedStackIsReused) {
  stack_pool pool(0, weft::guard_pages::within_map_budget);
  stack a = pool.acquire(0);
  pool.release(a);
  stack b = pool.acquire(0);
  EXPECT_EQ(a.bottom, b.bottom);
  EXPECT_EQ(b.size, weft::default_stack_size);
  pool.release(b);
}

TEST(StackPool, SizesRoundUpToPagesAndMinimum) {
  stack_pool pool(0, weft::guard_pages::never);
  stack s = pool.acquire(1);
  EXPECT_EQ(s.size, weft::min_stack_size);
  stack t = pool.acquire(weft::min_stack_size + 1);
  EXPECT_EQ(t.size % 4096, 0u);
  EXPECT_GT(t.size, weft::min_stack_size);
  pool.release(s);
  pool.release(t);
}

TEST(StackPool, StacksAreDisjointAndWritable) {
  stack_pool pool(0, weft::guard_pages::never);
  std::vector<stack> taken;
  for (int i = 0; i < 600; ++i) {  // more than one slab
    taken.push_back(pool.acquire(0));
    taken.back().top()[-1] = static_cast<char>(i);
    taken.back().bottom[0] = static_cast<char>(i);
  }
  std::set<char*> bottoms;
  for (auto& s : taken) bottoms.insert(s.bottom);
  EXPECT_EQ(bottoms.size(), taken.size());
  for (int i = 0; i < 600; ++i) EXPECT_EQ(taken[i].top()[-1], static_cast<char>(i));
  for (auto& s : taken) pool.release(s);
}

TEST(StackPool, GuardedStacksStopAtBudgetThenCarveSlabs) {
  stack_pool pool(0, weft::guard_pages::within_map_budget);
  const size_t budget = pool.guard_budget();
  ASSERT_GT(budget, 0u);
  std::vector<stack> taken;
  for (size_t i = 0; i < budget + 10; ++i) taken.push_back(pool.acquire(weft::min_stack_size));
  EXPECT_EQ(pool.guarded_count(), budget);
  EXPECT_TRUE(taken.front().guarded);
  EXPECT_FALSE(taken.back().guarded);
  for (auto& s : taken) pool.release(s);
}

TEST(StackPool, NeverPolicyHasNoGuards) {
  stack_pool pool(0, weft::guard_pages::never);
  stack s = pool.acquire(0);
  EXPECT_FALSE(s.guarded);
  EXPECT_EQ(pool.guarded_count(), 0u);
  pool.release(s);
}

// Recursion the optimiser cannot flatten: each frame keeps a live buffer.
[[gnu::noinline]] int deep(int n) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(n);
  if (n == 0) return frame[0];
  return deep(n - 1) + frame[0];
}

TEST(StackPoolDeathTest, OverflowHitsGuardPageAndFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        weft::run({.guards = weft::guard_pages::always}, [] {
          weft::spawn({.name = "overflow", .stack_size = 64 * 1024}, [] { return deep(1 << 20); }).join();
        });
      },
#if WEFT_ASAN
      // ASan (told about the fiber's stack at each switch) names the overflow itself.
      testing::ExitedWithCode(1), "stack-overflow");
#elif WEFT_TSAN
      // So does TSan; it exits with its `exitcode` option (66 unless TSAN_OPTIONS
      // says otherwise), so any failing exit status will do.
      [](int status) { return WIFEXITED(status) && WEXITSTATUS(status) != 0; }, "stack-overflow");
#else
      testing::KilledBySignal(SIGSEGV), "");
#endif
}
