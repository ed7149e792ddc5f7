// worker_pool: asyncio's producer/consumer tutorial as fibers. A producer queues
// jobs on a bounded channel, four workers take them, results come back on a second
// channel, and the main fiber sums them. Prints "sum of squares 1..100 = 338350".
#include <cstdio>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

int main() {
  return weft::run([] {
    weft::channel<int> jobs(8);      // the producer waits while 8 are queued
    weft::channel<long> results(weft::unbounded);
    weft::wait_group workers;

    for (int w = 0; w < 4; ++w) {
      workers.add();
      weft::spawn({.name = "worker"}, [&] {
        for (int& n : jobs) {        // until jobs is closed and drained
          weft::this_fiber::sleep_for(1ms);  // pretend to work
          results.send(long(n) * n);
        }
        workers.done();
      }).detach();
    }
    auto producer = weft::spawn([&] {
      for (int n = 1; n <= 100; ++n) jobs.send(int(n));
      jobs.close();
    });

    auto closer = weft::spawn([&] {  // results end when every worker has left
      workers.wait();
      results.close();
    });
    long sum = 0;
    for (long& r : results) sum += r;
    producer.join();
    closer.join();
    std::printf("sum of squares 1..100 = %ld\n", sum);
    return sum == 338350 ? 0 : 1;
  });
}
