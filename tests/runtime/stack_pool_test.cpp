// Fiber stacks: reuse, guard pages, and the mapping budget.
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/wait.h>

#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <regex>
#include <string>

#include <set>
#include <vector>

#include "../weft_test.hpp"
#include <weft/runtime/detail/sanitizer.hpp>
#include <weft/runtime/detail/stack_pool.hpp>

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

// The map budget is the process's: a second scheduler's pool finds it spent by the
// first, whose guarded stacks are kept (not unmapped) when their fibers end.
TEST(StackPool, GuardBudgetIsSharedByEveryPoolOfTheProcess) {
  stack_pool first(weft::min_stack_size, weft::guard_pages::within_map_budget);
  const size_t budget = first.guard_budget();
  std::vector<stack> taken;
  for (size_t i = 0; i < budget; ++i) taken.push_back(first.acquire(0));
  EXPECT_TRUE(taken.back().guarded);
  for (auto& s : taken) first.release(s);
  EXPECT_EQ(first.guarded_count(), budget);  // kept for reuse
  {
    stack_pool second(weft::min_stack_size, weft::guard_pages::within_map_budget);
    stack s = second.acquire(0);
    EXPECT_FALSE(s.guarded);  // from a slab: the process has no guards to spare
    second.release(s);
  }
  // Reuse: the first pool hands its kept guarded stacks out again, mapping nothing.
  stack again = first.acquire(0);
  EXPECT_TRUE(again.guarded);
  EXPECT_EQ(first.guarded_count(), budget);
  first.release(again);
}

// A pool that dies gives its share of the budget back.
TEST(StackPool, DeadPoolGivesItsGuardsBack) {
  size_t budget = 0;
  {
    stack_pool first(weft::min_stack_size, weft::guard_pages::within_map_budget);
    budget = first.guard_budget();
    std::vector<stack> taken;
    for (size_t i = 0; i < budget; ++i) taken.push_back(first.acquire(0));
    for (auto& s : taken) first.release(s);
  }
  stack_pool second(weft::min_stack_size, weft::guard_pages::within_map_budget);
  stack s = second.acquire(0);
  EXPECT_TRUE(s.guarded);
  second.release(s);
}

// A dying pool unmaps its guarded stacks in runs of neighbours (one munmap each):
// every stack it made is gone, and a mapping of someone else's that the kernel put
// between two of them is untouched.
TEST(StackPool, DeadPoolUnmapsEveryStackItMadeAndNothingElse) {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  const auto mapped = [page](const void* at) {
    unsigned char resident;
    void* page_start = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(at) & ~(page - 1));
    return ::mincore(page_start, page, &resident) == 0;  // ENOMEM: not mapped
  };
  std::vector<stack> made;
  std::vector<char*> foreign;
  {
    stack_pool pool(weft::min_stack_size, weft::guard_pages::always);
    for (int i = 0; i < 24; ++i) {
      made.push_back(pool.acquire(0));
      if (i % 8 == 3) {  // someone else's page, most likely right below the last stack
        void* p = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        ASSERT_NE(p, MAP_FAILED);
        std::memset(p, 0x5a, page);
        foreign.push_back(static_cast<char*>(p));
      }
    }
    for (const stack& s : made) {
      ASSERT_TRUE(s.guarded);
      std::memset(s.top() - 64, 1, 64);  // touched, as a fiber would
    }
    for (const stack& s : made) pool.release(s);
  }
  for (const stack& s : made) {
    EXPECT_FALSE(mapped(s.bottom - page)) << "guard page left mapped";
    EXPECT_FALSE(mapped(s.bottom));
    EXPECT_FALSE(mapped(s.top() - 1));
  }
  for (char* p : foreign) {
    ASSERT_TRUE(mapped(p)) << "a dying pool unmapped a mapping that was not its own";
    EXPECT_EQ(p[0], 0x5a);
    EXPECT_EQ(p[page - 1], 0x5a);
    ::munmap(p, page);
  }
}

#if WEFT_ASAN
// Under ASan a dying pool leaves no redzones behind in the shadow of what it
// unmapped: a fiber's unreturned frames poison its stack, and the next mapping at
// those addresses (a program's own buffer) read as poisoned (a breaker's finding).
TEST(StackPool, DeadPoolLeavesNoPoisonWhereItsStacksWere) {
  std::vector<char*> frames;
  {
    stack_pool pool(weft::min_stack_size, weft::guard_pages::within_map_budget);
    stack guarded = pool.acquire(0);
    stack other = pool.acquire(3 * weft::min_stack_size);  // another size: its own list
    for (const stack& s : {guarded, other}) {
      char* frame = s.top() - 256;
      ASAN_POISON_MEMORY_REGION(frame, 64);  // a redzone of a frame that never returned
      ASSERT_TRUE(__asan_address_is_poisoned(frame));
      frames.push_back(frame);
    }
    pool.release(guarded);
    pool.release(other);
  }
  for (char* frame : frames) EXPECT_FALSE(__asan_address_is_poisoned(frame));
}
#endif

// After a burst past the guard budget, free guarded stacks go out before slab ones:
// a later fiber gets the guard page that reports its overflow.
TEST(StackPool, FreeGuardedStacksGoOutBeforeSlabStacks) {
  stack_pool pool(weft::min_stack_size, weft::guard_pages::within_map_budget);
  const size_t budget = pool.guard_budget();
  std::vector<stack> taken;
  for (size_t i = 0; i < budget + 10; ++i) taken.push_back(pool.acquire(0));
  ASSERT_FALSE(taken.back().guarded);
  for (auto& s : taken) pool.release(s);  // slab stacks released last
  stack s = pool.acquire(0);
  EXPECT_TRUE(s.guarded);
  pool.release(s);
}

// Stacks of sizes other than the default are kept up to a cap per size, so a
// program that varies its stack sizes does not keep every wave's stacks.
TEST(StackPool, OtherSizesKeepAtMostTheCap) {
  stack_pool pool(0, weft::guard_pages::within_map_budget);
  const size_t other = 64 * 1024;
  const size_t n = stack_pool::max_kept_other + 100;
  std::vector<stack> taken;
  for (size_t i = 0; i < n; ++i) taken.push_back(pool.acquire(other));
  ASSERT_TRUE(taken.front().guarded);
  const size_t guarded_before = pool.guarded_count();
  for (auto& s : taken) pool.release(s);
  EXPECT_EQ(pool.guarded_count(), guarded_before - 100);  // the surplus is unmapped
}

// A stack size no memory can hold is refused, not wrapped around.
TEST(StackPool, HugeStackSizeIsInvalidArgument) {
  stack_pool pool(0, weft::guard_pages::within_map_budget);
  for (size_t huge : {size_t(-1), size_t(0x100000000001000), weft::max_stack_size + 1}) {
    try {
      (void)pool.acquire(huge);
      ADD_FAILURE() << huge << " was accepted";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("stack_size"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(stack_pool(size_t(-1), weft::guard_pages::never), weft::error);
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

// An overflow into a guard page names the fiber, its id and its stack size, then
// aborts, instead of a bare "Segmentation fault".
TEST(StackPoolDeathTest, OverflowInNamedFiberIsReportedWithNameAndAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        weft::run([] {  // default options: the first stacks are guarded
          weft::spawn({.name = "deep recursion"}, [] { return deep(1 << 30); }).join();
        });
      },
#if WEFT_ASAN
      // ASan (told about the fiber's stack at each switch) names the overflow itself.
      testing::ExitedWithCode(1), "stack-overflow");
#else
      testing::KilledBySignal(SIGABRT),
      "weft: stack overflow in fiber [0-9]+ \"deep recursion\" \\(stack of [0-9]+ bytes\\)");
#endif
}

// The same on a worker scheduler's thread: weft's threads block the asynchronous
// signals, never SIGSEGV (blocked, the fault killed the process unreported).
TEST(StackPoolDeathTest, OverflowOnAnotherSchedulerIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        weft::run({.threads = 2}, [] {
          weft::spawn({.name = "deep on 1", .on = 1}, [] { return deep(1 << 30); }).join();
        });
      },
#if WEFT_ASAN
      testing::ExitedWithCode(1), "stack-overflow");
#else
      testing::KilledBySignal(SIGABRT), "weft: stack overflow in fiber [0-9]+ \"deep on 1\"");
#endif
}

// A legacy program blocks every signal before it starts its threads (so that
// signals reach one thread only), and one of them runs weft: the fault signals are
// unblocked while run() runs, or the overflow killed the process unreported.
TEST(StackPoolDeathTest, OverflowOnAThreadThatBlocksEverySignalIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        weft::run([] { weft::spawn({.name = "parser"}, [] { return deep(1 << 30); }).join(); });
      },
#if WEFT_ASAN
      testing::ExitedWithCode(1), "stack-overflow");
#else
      testing::KilledBySignal(SIGABRT), "weft: stack overflow in fiber [0-9]+ \"parser\"");
#endif
}

// ... and after run() the thread's mask is as it was: what the program blocked
// stays blocked.
TEST(StackPool, RunLeavesTheThreadsFaultSignalsAsItFoundThem) {
  std::thread([] {
    sigset_t segv, now;
    sigemptyset(&segv);
    sigaddset(&segv, SIGSEGV);
    pthread_sigmask(SIG_BLOCK, &segv, nullptr);
    weft::run([] {
      sigset_t inside;
      pthread_sigmask(SIG_BLOCK, nullptr, &inside);
      EXPECT_EQ(sigismember(&inside, SIGSEGV), 0);  // open while weft runs
    });
    pthread_sigmask(SIG_BLOCK, nullptr, &now);
    EXPECT_EQ(sigismember(&now, SIGSEGV), 1);
  }).join();
}

// run() keeps its scheduler off the calling thread's stack: a thread a C library
// made with the smallest stack may run weft (fibers have stacks of their own).
TEST(StackPool, RunWorksOnAThreadWithTheSmallestStack) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
#if WEFT_ASAN || WEFT_TSAN
  GTEST_SKIP() << "sanitizers make every frame larger";
#endif
  ASSERT_EQ(pthread_attr_setstacksize(&attr, 24 * 1024), 0);  // the scheduler alone is 16 KiB
  pthread_t thread;
  static int result = 0;
  ASSERT_EQ(pthread_create(
                &thread, &attr,
                [](void*) -> void* {
                  result = weft::run([] { return weft::spawn([] { return 42; }).join(); });
                  return nullptr;
                },
                nullptr),
            0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  EXPECT_EQ(result, 42);
}

TEST(StackPoolDeathTest, OverflowOfAlwaysGuardedSmallStackIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        weft::run({.guards = weft::guard_pages::always}, [] {
          weft::spawn({.name = "overflow", .stack_size = 64 * 1024}, [] { return deep(1 << 20); }).join();
        });
      },
#if WEFT_ASAN
      testing::ExitedWithCode(1), "stack-overflow");
#else
      testing::KilledBySignal(SIGABRT), "stack overflow in fiber [0-9]+ \"overflow\" \\(stack of 65536 bytes\\)");
#endif
}

#if !WEFT_ASAN
// Any other SIGSEGV keeps its default meaning: the process dies of SIGSEGV.
TEST(StackPoolDeathTest, OtherSegfaultInFiberKeepsDefaultDisposition) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        weft::run([] {
          weft::spawn([] {
            volatile int* null = nullptr;
            *null = 1;
          }).join();
        });
      },
#if WEFT_TSAN
      // TSan's own SIGSEGV handler is what weft passes the fault to here: it reports
      // the fault and exits with its `exitcode` (66), which is that default meaning.
      testing::ExitedWithCode(66), "SEGV on unknown address");
#else
      testing::KilledBySignal(SIGSEGV), "");
#endif
}

// A handler installed before weft's is called for a SIGSEGV that is not an overflow.
TEST(StackPoolDeathTest, OtherSegfaultIsPassedToPreviousHandler) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        struct sigaction user {};
        user.sa_handler = [](int) {
          const char text[] = "user handler\n";
          [[maybe_unused]] auto n = ::write(2, text, sizeof text - 1);
          ::_exit(3);
        };
        sigemptyset(&user.sa_mask);
        ::sigaction(SIGSEGV, &user, nullptr);
        weft::run([] {
          weft::spawn([] {
            volatile int* null = nullptr;
            *null = 1;
          }).join();
        });
      },
      testing::ExitedWithCode(3), "user handler");
}

// run() puts back exactly what it changed: the SIGSEGV action and the thread's
// (absent) alternate signal stack.
TEST(StackPool, RunRestoresSignalActionAndAltStack) {
  struct sigaction before {}, after {};
  stack_t alt_before{}, alt_during{}, alt_after{};
  ::sigaction(SIGSEGV, nullptr, &before);
  ::sigaltstack(nullptr, &alt_before);
  weft::run([&] { ::sigaltstack(nullptr, &alt_during); });
  ::sigaction(SIGSEGV, nullptr, &after);
  ::sigaltstack(nullptr, &alt_after);
  EXPECT_EQ(reinterpret_cast<void*>(after.sa_handler), reinterpret_cast<void*>(before.sa_handler));
  constexpr int sa_restorer = 0x04000000;  // set by glibc on every sigaction() call
  EXPECT_EQ(after.sa_flags & ~sa_restorer, before.sa_flags & ~sa_restorer);
  if (alt_before.ss_flags & SS_DISABLE) {
    EXPECT_FALSE(alt_during.ss_flags & SS_DISABLE) << "no alternate stack while a scheduler runs";
  }
  EXPECT_EQ(alt_after.ss_flags, alt_before.ss_flags);
  EXPECT_EQ(alt_after.ss_sp, alt_before.ss_sp);
}
#endif

// /work/shared/cases/regex_in_fiber.cpp: ordinary library code (libstdc++'s
// recursive regex on a 1,000-character line, ~740 KiB deep) fits the default stack.
TEST(StackPool, RegexOnThousandCharactersFitsDefaultStack) {
  const std::string line(1000, 'a');
  const bool matched = run_checked([&line] {
    return weft::spawn({.name = "parser"}, [&line] { return std::regex_match(line, std::regex("(a|b)*")); }).join();
  });
  EXPECT_TRUE(matched);
}

namespace {
// resident_pages counts the stack's pages mincore reports in core. The release
// check's read of an untouched page maps the kernel's shared zero page there, which
// mincore counts (RSS does not): allow one page for it.
std::size_t resident_pages(const stack& s) {
  const std::size_t page = 4096;
  std::vector<unsigned char> in_core(s.size / page);
  if (::mincore(s.bottom, s.size, in_core.data()) != 0) return SIZE_MAX;
  std::size_t n = 0;
  for (unsigned char c : in_core) n += c & 1;
  return n;
}
}  // namespace

// A stack that comes back deep-touched keeps only its top keep_resident bytes.
TEST(StackPool, DeepTouchedStackGivesPagesBackOnRelease) {
  stack_pool pool(0, weft::guard_pages::within_map_budget);
  stack s = pool.acquire(0);
  ASSERT_GE(s.size, 1024u * 1024);
  std::memset(s.bottom + s.size / 4, 1, s.size * 3 / 4);  // 3/4 of it, from the top down
  EXPECT_GE(resident_pages(s), s.size * 3 / 4 / 4096);
  pool.release(s);
  EXPECT_LE(resident_pages(s), stack_pool::keep_resident / 4096 + 1);
  // Reused shallowly, it keeps its top pages; nothing below them comes back.
  stack t = pool.acquire(0);
  EXPECT_EQ(t.bottom, s.bottom);
  std::memset(t.top() - 8192, 1, 8192);
  pool.release(t);
  EXPECT_LE(resident_pages(t), stack_pool::keep_resident / 4096 + 1);
  // Deep again: trimmed again.
  stack u = pool.acquire(0);
  std::memset(u.top() - 256 * 1024, 1, 256 * 1024);
  pool.release(u);
  EXPECT_LE(resident_pages(u), stack_pool::keep_resident / 4096 + 1);
}

// An idle fiber on the default (1 MiB) stack costs at most 5 KiB resident: the
// stack's top page and its record, not its reservation.
TEST(StackPool, IdleFiberOnDefaultStackCostsAtMostFiveKiB) {
#if WEFT_TSAN
  constexpr int count = 1'000;  // TSan keeps ~770 KiB of state per fiber (README)
#else
  constexpr int count = 20'000;
#endif
  const auto resident_bytes = [] {
    std::ifstream statm("/proc/self/statm");
    long size = 0, resident = 0;
    statm >> size >> resident;
    return resident * 4096L;
  };
  double per_fiber = 0;
  run_checked([&] {
    std::vector<weft::fiber<void>> fs;
    fs.reserve(count);
    const long before = resident_bytes();
    for (int i = 0; i < count; ++i)
      fs.push_back(weft::spawn([] { weft::this_fiber::sleep_for(std::chrono::hours(1)); }));
    weft::this_fiber::yield();  // every fiber runs until it parks in its sleep
    per_fiber = double(resident_bytes() - before) / count;
    for (auto& f : fs) f.cancel();
    for (auto& f : fs) EXPECT_THROW(f.join(), weft::cancelled_error);
  });
#if !WEFT_ASAN && !WEFT_TSAN  // the sanitizers' own per-fiber state counts in RSS
  EXPECT_LE(per_fiber, 5 * 1024.0);
#endif
  EXPECT_GT(per_fiber, 0.0);
}
