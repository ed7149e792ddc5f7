// The timer path: a zero sleep, and many fibers sleeping at once.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

// weft/sleep_zero isolates one trip through the timer queue: sleep_for(0) parks the
// fiber on the due list and the scheduler fires it at the next switch.
void weft_sleep_zero(benchmark::State& state) {
  weft::run([&state] {
    for (auto _ : state) weft::this_fiber::sleep_for(0ms);
  });
}

// weft/timers_100k: 100k fibers each sleep 10 ms; wall time from the first spawn
// until all are joined, per fiber (so it includes spawn, 100k timer inserts and
// fires, and the 10 ms itself spread over 100k fibers).
// weft/timers_100k_64k_stacks: the same with 64 KiB stacks, as a program with very
// many small fibers would ask for (and as the default was before issue 12). The
// two rows tell the timer path's cost from the 1 MiB default stack's: 100k live
// 1 MiB stacks need one page-table page per two fibers, paid by the first wave
// only, since the pool keeps its stacks for the next (bench/NOTES.md).
void timers_100k(benchmark::State& state, std::size_t stack_size) {
  constexpr int fibers = 100'000;
  weft::run({.stack_size = stack_size}, [&state] {
    std::vector<weft::fiber<void>> fs;
    fs.reserve(fibers);
    while (state.KeepRunningBatch(fibers)) {
      for (int i = 0; i < fibers; ++i) fs.push_back(weft::spawn([] { weft::this_fiber::sleep_for(10ms); }));
      for (auto& f : fs) f.join();
      fs.clear();
    }
  });
}
void weft_timers_100k(benchmark::State& state) { timers_100k(state, 0); }
void weft_timers_100k_64k_stacks(benchmark::State& state) { timers_100k(state, 64 * 1024); }

}  // namespace

BENCHMARK(weft_sleep_zero)->Name("weft/sleep_zero");
BENCHMARK(weft_timers_100k)->Name("weft/timers_100k")->UseRealTime()->Unit(benchmark::kNanosecond);
BENCHMARK(weft_timers_100k_64k_stacks)
    ->Name("weft/timers_100k_64k_stacks")
    ->UseRealTime()
    ->Unit(benchmark::kNanosecond);
