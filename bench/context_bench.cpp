// The floor: what Boost.Context itself costs, with no scheduler at all.
#include <benchmark/benchmark.h>

#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>

#include <vector>

namespace ctx = boost::context;

namespace {

// floor/context_switch isolates one raw switch: two contexts resuming each other.
void floor_context_switch(benchmark::State& state) {
  bool stop = false;
  ctx::fiber other{[&stop](ctx::fiber&& back) {
    while (!stop) back = std::move(back).resume();
    return std::move(back);
  }};
  other = std::move(other).resume();  // warm up: start it
  while (state.KeepRunningBatch(2)) other = std::move(other).resume();  // there and back
  stop = true;
  other = std::move(other).resume();
}

// A stack pool with nothing else in it: the cheapest possible pooled allocation.
struct free_list_stacks {
  std::vector<ctx::stack_context>* free;
  ctx::stack_context allocate() {
    auto s = free->back();
    free->pop_back();
    return s;
  }
  void deallocate(ctx::stack_context& s) noexcept { free->push_back(s); }
};

// floor/context_create_pooled isolates creating, entering and finishing a raw fiber
// whose stack comes from (and goes back to) a free list.
void floor_context_create_pooled(benchmark::State& state) {
  ctx::fixedsize_stack allocator(64 * 1024);
  std::vector<ctx::stack_context> free;
  for (int i = 0; i < 4; ++i) free.push_back(allocator.allocate());
  for (auto _ : state) {
    ctx::fiber f{std::allocator_arg, free_list_stacks{&free}, [](ctx::fiber&& back) { return std::move(back); }};
    f = std::move(f).resume();
    benchmark::DoNotOptimize(f);
  }
  for (auto& s : free) allocator.deallocate(s);
}

}  // namespace

BENCHMARK(floor_context_switch)->Name("floor/context_switch");
BENCHMARK(floor_context_create_pooled)->Name("floor/context_create_pooled");
