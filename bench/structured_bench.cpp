// Structured concurrency: what a task-group child, a gather and a cancellation cost.
#include <benchmark/benchmark.h>

#include <weft/weft.hpp>

namespace {

// weft/task_group_spawn_join: 1,000 empty children spawned into a group, then the
// group joined; one iteration is one child (compare weft/spawn_join).
void weft_task_group_spawn_join(benchmark::State& state) {
  weft::run([&state] {
    constexpr int children = 1000;
    auto batch = [] {
      weft::task_group group;
      for (int i = 0; i < children; ++i) group.spawn([] {});
      group.join();
    };
    batch();  // warm up: the stack pool holds 1,000 stacks
    while (state.KeepRunningBatch(children)) batch();
  });
}

// weft/gather_10: gather over ten callables that return at once; one iteration is
// one whole gather (ten fibers, results in a tuple).
void weft_gather_10(benchmark::State& state) {
  weft::run([&state] {
    auto f = [] { return 1; };
    for (auto _ : state) {
      auto r = weft::gather(f, f, f, f, f, f, f, f, f, f);
      benchmark::DoNotOptimize(r);
    }
  });
}

// weft/cancel_blocked: a fiber parks in a channel receive, is cancelled, and has
// unwound (joined, cancelled_error caught); one iteration is one such fiber,
// its spawn included.
void weft_cancel_blocked(benchmark::State& state) {
  weft::run([&state] {
    weft::channel<int> never;
    for (auto _ : state) {
      auto f = weft::spawn([&] { never.recv(); });
      weft::this_fiber::yield();  // f runs and parks in recv
      f.cancel();
      try {
        f.join();
      } catch (const weft::cancelled_error&) {
      }
    }
  });
}

}  // namespace

BENCHMARK(weft_task_group_spawn_join)->Name("weft/task_group_spawn_join");
BENCHMARK(weft_gather_10)->Name("weft/gather_10");
BENCHMARK(weft_cancel_blocked)->Name("weft/cancel_blocked");
