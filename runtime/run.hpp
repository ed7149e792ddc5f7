// run.hpp: weft::run, the entry point (asyncio.run for fibers).
#pragma once

#include <cstddef>
#include <utility>

#include "runtime/detail/scheduler.hpp"
#include "runtime/fiber.hpp"
#include "runtime/stack_options.hpp"

namespace weft {

// run_options configure the scheduler that run() starts.
struct run_options {
  std::size_t stack_size = 0;  // default usable stack per fiber; 0: default_stack_size
  guard_pages guards = guard_pages::within_map_budget;
};

// run(main) starts a scheduler on the calling thread, runs main() as its first
// fiber (named "main") and returns main's result, or rethrows its exception.
//
// When main returns, every fiber still alive is cancelled (its blocking call throws
// cancelled_error) and run() waits for all of them to finish: nothing outlives run().
// Functions other threads posted before then still run; later posts are refused.
//
// If every fiber ends up parked with nothing able to wake it (no timer, no watched
// fd, no scheduler_handle held elsewhere), run() cancels them all and throws
// weft::error(errc::would_deadlock) instead of hanging.
//
// Throws errc::scheduler_running if this thread already runs a scheduler.
template <class F>
auto run(const run_options& options, F&& main) {
  detail::scheduler sched(detail::scheduler_options{options.stack_size, options.guards});
  auto* t = detail::make_task(std::forward<F>(main));
  using result = typename std::remove_pointer_t<decltype(t)>::result_type;
  t->name_ = "main";
  try {
    sched.start(t, 0);
  } catch (...) {
    delete t;
    throw;
  }
  auto handle = detail::fiber_access::adopt<result>(t);
  sched.run(t);
  if (sched.deadlocked())
    throw error(errc::would_deadlock, "weft::run: every fiber is blocked and nothing can wake them");
  return handle.join();
}

template <class F>
auto run(F&& main) {
  return run(run_options{}, std::forward<F>(main));
}

}  // namespace weft
