// Resident memory of idle fibers: what a sleeping fiber really costs.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <boost/fiber/all.hpp>

#include <fstream>
#include <vector>

#include <weft/weft.hpp>

namespace {

constexpr int idle_fibers = 100'000;

long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

// weft/idle_fiber_rss: RSS growth per fiber with 100k fibers parked in a sleep
// (stack pages touched + control block + timer), as the counter bytes_per_fiber.
void weft_idle_fiber_rss(benchmark::State& state) {
  weft::run([&state] {
    for (auto _ : state) {
      std::vector<weft::fiber<void>> fs;
      fs.reserve(idle_fibers);
      const long before = resident_bytes();
      for (int i = 0; i < idle_fibers; ++i)
        fs.push_back(weft::spawn([] { weft::this_fiber::sleep_for(std::chrono::hours(1)); }));
      weft::this_fiber::yield();  // every fiber runs until it parks in its sleep
      const long after = resident_bytes();
      state.counters["bytes_per_fiber"] = static_cast<double>(after - before) / idle_fibers;
      for (auto& f : fs) f.cancel();
      for (auto& f : fs) {
        try {
          f.join();
        } catch (const weft::cancelled_error&) {
        }
      }
    }
  });
}

// boost_fiber/idle_fiber_rss: the same with Boost.Fiber's defaults, parked on a
// condition variable (Boost.Fiber has no cancellation to end a long sleep).
void boost_fiber_idle_fiber_rss(benchmark::State& state) {
  for (auto _ : state) {
    boost::fibers::mutex m;
    boost::fibers::condition_variable cv;
    bool release = false;
    std::vector<boost::fibers::fiber> fs;
    fs.reserve(idle_fibers);
    const long before = resident_bytes();
    for (int i = 0; i < idle_fibers; ++i)
      fs.emplace_back([&] {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return release; });
      });
    boost::this_fiber::yield();
    const long after = resident_bytes();
    state.counters["bytes_per_fiber"] = static_cast<double>(after - before) / idle_fibers;
    {
      std::unique_lock lock(m);
      release = true;
    }
    cv.notify_all();
    for (auto& f : fs) f.join();
  }
}

}  // namespace

BENCHMARK(weft_idle_fiber_rss)->Name("weft/idle_fiber_rss")->Iterations(1)->UseRealTime();
BENCHMARK(boost_fiber_idle_fiber_rss)->Name("boost_fiber/idle_fiber_rss")->Iterations(1)->UseRealTime();
