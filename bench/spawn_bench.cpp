// Spawn + join of an empty fiber: creation, first switch in, exit, wake of the
// joiner, switch back, and the stack's return to its pool. One iteration is one fiber.
#include <benchmark/benchmark.h>

#include <boost/fiber/all.hpp>

#include <weft/weft.hpp>

namespace {

// weft/spawn_join isolates the life of one fiber, stack from the pool.
void weft_spawn_join(benchmark::State& state) {
  weft::run([&state] {
    weft::spawn([] {}).join();  // warm up: the pool has a stack
    for (auto _ : state) weft::spawn([] {}).join();
  });
}

// boost_fiber/spawn_join: the same with Boost.Fiber's defaults.
void boost_fiber_spawn_join(benchmark::State& state) {
  boost::fibers::fiber([] {}).join();
  for (auto _ : state) boost::fibers::fiber([] {}).join();
}

}  // namespace

BENCHMARK(weft_spawn_join)->Name("weft/spawn_join");
BENCHMARK(boost_fiber_spawn_join)->Name("boost_fiber/spawn_join");
