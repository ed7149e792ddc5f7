// Yield ping-pong: two fibers of one scheduler handing the CPU back and forth.
// One iteration is one switch (each loop turn is two: there and back).
#include <benchmark/benchmark.h>

#include <boost/fiber/all.hpp>

#include <weft/weft.hpp>

namespace {

// weft/yield_pingpong isolates yield(): run-queue push/pop plus the switch.
void weft_yield_pingpong(benchmark::State& state) {
  weft::run([&state] {
    bool done = false;
    auto other = weft::spawn([&done] {
      while (!done) weft::this_fiber::yield();
    });
    weft::this_fiber::yield();  // warm up: let the partner start
    while (state.KeepRunningBatch(2)) weft::this_fiber::yield();
    done = true;
    other.join();
  });
}

// boost_fiber/yield_pingpong: the same with Boost.Fiber's default round_robin.
void boost_fiber_yield_pingpong(benchmark::State& state) {
  bool done = false;
  boost::fibers::fiber other([&done] {
    while (!done) boost::this_fiber::yield();
  });
  boost::this_fiber::yield();
  while (state.KeepRunningBatch(2)) boost::this_fiber::yield();
  done = true;
  other.join();
}

}  // namespace

BENCHMARK(weft_yield_pingpong)->Name("weft/yield_pingpong");
BENCHMARK(boost_fiber_yield_pingpong)->Name("boost_fiber/yield_pingpong");
