// pipeline: asyncio's Queue example (docs.python.org, "asyncio.Queue: workers
// with task_done and join") as fibers, with a second stage. Main queues 20 jobs;
// three workers each take a job, "work" for its number of milliseconds, pass the
// result on and call task_done; a summer adds the results. jobs.join() returns when
// every job is processed, results.join() when every result is added; leaving the
// task_group's scope then cancels the workers, which wait in get() for good.
// Checks its own answer: exit status 0 and "20 jobs, 3 workers, total 210 ms of work".
#include <cstdio>
#include <string>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

int main() {
  return weft::run([] {
    weft::queue<int> jobs;         // no limit, as asyncio.Queue() has
    weft::queue<int> results(4);   // a worker waits while 4 results are not yet added
    int total = 0, added = 0;

    {
      weft::task_group workers;
      for (int i = 0; i < 3; ++i)
        workers.spawn({.name = "worker-" + std::to_string(i)}, [&] {
          for (;;) {
            const int ms = jobs.get();
            weft::this_fiber::sleep_for(std::chrono::milliseconds(ms));
            results.put(ms);
            jobs.task_done();
          }
        });
      workers.spawn({.name = "summer"}, [&] {
        for (;;) {
          total += results.get();
          ++added;
          results.task_done();
        }
      });

      for (int ms = 1; ms <= 20; ++ms) jobs.put(int(ms));
      jobs.join();     // every job processed (its result put)
      results.join();  // every result added
    }                  // cancels the four fibers, each parked in get()

    std::printf("%d jobs, 3 workers, total %d ms of work\n", added, total);
    return added == 20 && total == 210 ? 0 : 1;
  });
}
