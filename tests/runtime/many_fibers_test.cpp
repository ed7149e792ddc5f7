// Many fibers at once: past the guard-page mapping budget, and cleanly torn down.
#include <vector>

#include "../weft_test.hpp"
#include <weft/runtime/detail/sanitizer.hpp>

using namespace weft_test;

// Under ThreadSanitizer every fiber carries a TSan thread state of its own (about
// 770 KiB resident each, plus its history), and TSan allows 8,128 of them at once:
// the TSan build (./run tsan) runs these tests with fewer fibers. The release and
// ASan builds run the full counts, which the mapping-budget test needs.
#if WEFT_TSAN
constexpr int many = 1'000;
#endif

TEST(ManyFibers, MoreFibersThanGuardedMappingsAllow) {
  // 40,000 guarded stacks would need 80,000 mappings (> vm.max_map_count = 65,530):
  // the default policy must switch to slab stacks instead of failing. Under TSan,
  // 1,000 fibers stay within the budget: StackPool.GuardedStacksStopAtBudgetThen...
  // covers the switch to slabs there, without fibers.
#if WEFT_TSAN
  static constexpr int count = many;
#else
  constexpr int count = 40'000;
#endif
  const long sum = run_checked([] {
    std::vector<weft::fiber<int>> fs;
    fs.reserve(count);
    for (int i = 0; i < count; ++i)
      fs.push_back(weft::spawn({.name = "", .stack_size = weft::min_stack_size}, [i] {
        weft::this_fiber::sleep_for(1ms);  // all alive at once
        return i;
      }));
    long s = 0;
    for (auto& f : fs) s += f.join();
    return s;
  });
  EXPECT_EQ(sum, static_cast<long>(count - 1) * count / 2);
}

TEST(ManyFibers, AliveFibersAtExitAreAllCancelled) {
#if WEFT_TSAN
  static constexpr int count = many;
#else
  static constexpr int count = 10'000;
#endif
  int unwound = 0;
  run_checked([&unwound] {
    for (int i = 0; i < count; ++i)
      weft::spawn([&unwound] {
        struct on_exit {
          int& n;
          ~on_exit() { ++n; }
        } guard{unwound};
        weft::this_fiber::sleep_for(std::chrono::hours(1));
      }).detach();
    weft::this_fiber::yield();
  });
  EXPECT_EQ(unwound, count);
}

TEST(ManyFibers, SpawnChainsDeeply) {
  // Each fiber spawns the next and joins it: 5,000 fibers alive in a chain.
#if WEFT_TSAN
  static constexpr int depth = many;
#else
  static constexpr int depth = 5000;
#endif
  struct chain {
    static int down(int n) {
      if (n == 0) return 0;
      return weft::spawn(down, n - 1).join() + 1;
    }
  };
  EXPECT_EQ(run_checked([] { return chain::down(depth); }), depth);
}
