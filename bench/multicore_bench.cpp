// One runtime over two scheduler threads: fibers on different threads handing
// values over, beside Boost.Fiber's channels between two threads (shared_work
// algorithm, each thread's main context doing the work, so nothing migrates), and
// spawn+join throughput with one and two schedulers.
#include <benchmark/benchmark.h>

#include <boost/fiber/algo/shared_work.hpp>
#include <boost/fiber/all.hpp>

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include <weft/weft.hpp>

namespace {

weft::run_options two_schedulers() {
  weft::run_options o;
  o.threads = 2;
  return o;
}

// floor/xthread_pingpong: the least a round trip between two threads costs on
// this machine: each thread spins on the cache line the other writes (no fibers,
// no queues, no locks), so a round trip is the two lines crossing and coming back.
// weft's idle schedulers and Boost.Fiber's shared_work spin too, so this is the
// floor of the xthread rows. On a VM it moves with where the host puts the two
// vCPUs, and the xthread rows move with it (bench/NOTES.md): their ratio to it is
// what a change to weft's cross-thread path moves.
struct alignas(64) spun_line {
  std::atomic<std::uint64_t> value{0};
};

inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// [[gnu::cold]] puts this function in .text.unlikely: added to the hot text it
// shifted the library's code after it, and weft/sleep_zero, whose speed on this
// machine depends on where its code lands, went from 10 to 26 ns (bench/NOTES.md,
// "A floor for the cross-thread rows, and a layout trap"). The loop is the same.
[[gnu::cold]] void floor_xthread_pingpong(benchmark::State& state) {
  constexpr std::uint64_t stop = ~std::uint64_t{0};
  spun_line ping, pong;
  std::thread echo([&] {
    for (std::uint64_t seen = 0;;) {
      std::uint64_t v;
      while ((v = ping.value.load(std::memory_order_acquire)) == seen) spin_pause();
      if (v == stop) return;
      pong.value.store(v, std::memory_order_release);
      seen = v;
    }
  });
  std::uint64_t i = 0;
  for (auto _ : state) {
    ping.value.store(++i, std::memory_order_release);
    while (pong.value.load(std::memory_order_acquire) != i) spin_pause();
  }
  ping.value.store(stop, std::memory_order_release);
  echo.join();
}

// weft/xthread_pingpong: a value bounces over two unbuffered channels between a
// fiber on scheduler 0 and one on scheduler 1; one iteration is one round trip
// (two cross-thread wake-ups).
void weft_xthread_pingpong(benchmark::State& state) {
  weft::run(two_schedulers(), [&state] {
    weft::channel<int> ping, pong;
    auto echo = weft::spawn({.on = 1}, [&] {
      while (auto v = ping.recv()) pong.send(int(*v));
    });
    for (auto _ : state) {
      ping.send(1);
      benchmark::DoNotOptimize(pong.recv());
    }
    ping.close();
    echo.join();
  });
}

// boost_fiber/xthread_pingpong: the same with Boost.Fiber's unbuffered channels,
// between the main contexts of two threads.
void boost_fiber_xthread_pingpong(benchmark::State& state) {
  boost::fibers::unbuffered_channel<int> ping, pong;
  std::thread echo([&] {
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::shared_work>();
    int v = 0;
    while (ping.pop(v) == boost::fibers::channel_op_status::success) pong.push(v);
  });
  std::thread driver([&] {
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::shared_work>();
    int v = 0;
    for (auto _ : state) {
      ping.push(1);
      pong.pop(v);
      benchmark::DoNotOptimize(v);
    }
    ping.close();
  });
  driver.join();
  echo.join();
}

// weft/xthread_send_throughput: a fiber on scheduler 0 sends through a channel of
// capacity 1024 to a fiber on scheduler 1; per item.
void weft_xthread_send_throughput(benchmark::State& state) {
  weft::run(two_schedulers(), [&state] {
    weft::channel<int> ch(1024);
    auto consumer = weft::spawn({.on = 1}, [&] {
      for (int& v : ch) benchmark::DoNotOptimize(v);
    });
    int i = 0;
    for (auto _ : state) ch.send(i++);
    ch.close();
    consumer.join();
  });
}

// boost_fiber/xthread_send_throughput: the same through a buffered_channel (it
// holds capacity - 1 items, so 1025), between two threads' main contexts.
void boost_fiber_xthread_send_throughput(benchmark::State& state) {
  boost::fibers::buffered_channel<int> ch(2048);
  std::thread consumer([&] {
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::shared_work>();
    int v = 0;
    while (ch.pop(v) == boost::fibers::channel_op_status::success) benchmark::DoNotOptimize(v);
  });
  std::thread producer([&] {
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::shared_work>();
    int i = 0;
    for (auto _ : state) ch.push(i++);
    ch.close();
  });
  producer.join();
  consumer.join();
}

// weft/spawn_join_mt/N: each of N schedulers spawns and joins empty fibers of its
// own, 10,000 per round, the rounds started together; one iteration is one fiber,
// in wall-clock time, so /2 against /1 is the scaling (ideally 0.5x on two cores).
// A round's cross-thread start and join cost ~20 us against ~1 ms of work.
void weft_spawn_join_mt(benchmark::State& state) {
  constexpr int per_round = 10'000;
  weft::run_options o;
  o.threads = static_cast<std::size_t>(state.range(0));
  weft::run(o, [&state, n = static_cast<std::ptrdiff_t>(o.threads)] {
    auto round = [] {
      for (int i = 0; i < per_round; ++i) weft::spawn([] {}).join();
    };
    auto on_every_scheduler = [&] {
      std::vector<weft::fiber<void>> others;
      for (std::ptrdiff_t i = 1; i < n; ++i) others.push_back(weft::spawn({.on = i}, round));
      round();
      for (auto& f : others) f.join();
    };
    on_every_scheduler();  // warm up: every pool has its stacks
    while (state.KeepRunningBatch(per_round * n)) on_every_scheduler();
  });
}

}  // namespace

BENCHMARK(weft_spawn_join_mt)->Name("weft/spawn_join_mt")->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(floor_xthread_pingpong)->Name("floor/xthread_pingpong")->UseRealTime();
BENCHMARK(weft_xthread_pingpong)->Name("weft/xthread_pingpong")->UseRealTime();
BENCHMARK(boost_fiber_xthread_pingpong)->Name("boost_fiber/xthread_pingpong")->UseRealTime();
BENCHMARK(weft_xthread_send_throughput)->Name("weft/xthread_send_throughput")->UseRealTime();
BENCHMARK(boost_fiber_xthread_send_throughput)->Name("boost_fiber/xthread_send_throughput")->UseRealTime();
