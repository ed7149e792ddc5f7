// run.hpp: weft::run, the entry point (asyncio.run for fibers).
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scheduler_group.hpp>
#include <weft/runtime/fiber.hpp>
#include <weft/runtime/stack_options.hpp>

namespace weft {

// run_options configure the schedulers that run() starts.
struct run_options {
  std::size_t stack_size = 0;  // default usable stack per fiber; 0: default_stack_size
  guard_pages guards = guard_pages::within_map_budget;
  // How many scheduler threads: 1 (the default) runs every fiber on the calling
  // thread; N > 1 adds N - 1 worker threads, each with its own run queue, timers
  // and reactor; 0 means one per CPU the process may run on. See spawn_options::on
  // for where fibers go.
  std::size_t threads = 1;
  // How long after main returned run() waits quietly for fibers that outlive their
  // shutdown cancellation (one that catches weft::cancelled_error and goes on, or
  // waits long inside a shield): then it prints one line to stderr per scheduler
  // naming them and what each waits in, and goes on waiting (nothing outlives
  // run()); fibers that never block again show as "runnable". Zero: as soon as the
  // cancelled fibers have had their turn; milliseconds::max(): never; negative:
  // errc::invalid_argument from run().
  std::chrono::milliseconds shutdown_report_after = std::chrono::seconds(5);
};

namespace detail {
// scheduler_threads resolves run_options::threads (0: the CPUs we may run on);
// throws errc::invalid_argument above 1024.
std::size_t scheduler_threads(std::size_t requested);
}  // namespace detail

// run(main) starts a scheduler on the calling thread, runs main() as its first
// fiber (named "main") and returns main's result, or rethrows its exception.
//
// When main returns, every fiber still alive is cancelled (its blocking call throws
// cancelled_error) and run() waits for all of them to finish: nothing outlives run().
// A fiber that catches the cancellation and goes on is waited for too; after
// options.shutdown_report_after (5 s) run() names such fibers on stderr.
// Functions other threads posted before then still run; later posts are refused.
//
// Deadlock: if every fiber ends up parked with nothing able to wake it, run()
// cancels them all and throws weft::error(errc::would_deadlock) instead of hanging.
// It reports that only when it is certain, which is when all of these hold:
//   - no fiber is runnable, no timer is pending (a sleep or a deadline would end a
//     park) and no fd is watched (a socket, a signal_set, an fd_watch);
//   - the process has no thread but this one (counted in /proc/self/task). Any
//     other thread could still set an event, send on a channel, cancel a fiber or
//     post through a scheduler_handle, and weft cannot know what a thread holds.
// While another thread exists, the scheduler sleeps in epoll_wait, woken by its
// eventfd when a thread wakes one of its fibers; it looks again after 10 ms, then
// at doubling intervals up to once a second (never a busy wait), so a deadlock is
// still reported once the other threads have exited. The report takes ~10 ms to
// come. The message names each parked fiber and the call it waits in:
//   weft::run: every fiber is blocked and nothing can wake them: fiber 1 (main):
//   weft::fiber::join of fiber 2 "worker"; fiber 2 "worker": weft::event::wait
// A fiber spawned without a name shows as "fiber <id>".
//
// Several threads (options.threads): run() starts the workers before main and,
// when main returns, cancels and waits for the fibers of every scheduler, then
// joins the workers; nothing outlives run() there either. A deadlock is reported
// as above when every scheduler has nothing that can wake a fiber (no runnable
// fiber, timer, fd or request in flight between them) and the process has no
// thread but the schedulers'; the message lists the parked fibers of all of them.
//
// Throws errc::scheduler_running if this thread already runs a scheduler.
template <class F>
auto run(const run_options& options, F&& main) {
  const std::size_t threads = detail::scheduler_threads(options.threads);
  const detail::scheduler_options sched_options{options.stack_size, options.guards, options.shutdown_report_after};
  // On the heap: the scheduler is 16 KiB, and a thread a C library made small (16 KiB
  // is PTHREAD_STACK_MIN) may call run(); fibers run on their own stacks.
  const std::unique_ptr<detail::scheduler> owned = std::make_unique<detail::scheduler>(sched_options);
  detail::scheduler& sched = *owned;
  std::optional<detail::scheduler_group> group;  // destroyed first: joins the workers
  if (threads > 1) group.emplace(sched, threads, sched_options);
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
  group.reset();
  if (sched.deadlocked())
    throw error(errc::would_deadlock, "weft::run",
                "every fiber is blocked and nothing can wake them: " + sched.deadlock_report());
  return handle.join();
}

template <class F>
auto run(F&& main) {
  return run(run_options{}, std::forward<F>(main));
}

}  // namespace weft
