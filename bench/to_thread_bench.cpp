// weft/to_thread beside std/async_roundtrip: one blocking call handed to another
// thread and its result brought back, per iteration.
#include <benchmark/benchmark.h>

#include <future>

#include <weft/weft.hpp>

namespace {

// weft/to_thread: a fiber calls to_thread on a trivial function: queue to the pool,
// a pool thread runs it, the result comes back through the scheduler's inbox.
void weft_to_thread(benchmark::State& state) {
  weft::run([&state] {
    int n = 0;
    for (auto _ : state) benchmark::DoNotOptimize(n += weft::to_thread([] { return 1; }));
  });
}

// std/async_roundtrip: the same through std::async(std::launch::async), which
// libstdc++ runs on a new thread per call; the reference the issue names.
void std_async_roundtrip(benchmark::State& state) {
  int n = 0;
  for (auto _ : state) benchmark::DoNotOptimize(n += std::async(std::launch::async, [] { return 1; }).get());
}

}  // namespace

BENCHMARK(weft_to_thread)->Name("weft/to_thread")->UseRealTime();
BENCHMARK(std_async_roundtrip)->Name("std/async_roundtrip")->UseRealTime();
