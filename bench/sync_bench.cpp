// Channels, select, mutex and semaphore: two fibers of one scheduler handing work
// back and forth, weft beside Boost.Fiber's equivalents (default round_robin).
#include <benchmark/benchmark.h>

#include <boost/fiber/all.hpp>

#include <mutex>
#include <optional>

#include <weft/weft.hpp>

namespace {

// weft/channel_pingpong: one value bounces over two unbuffered channels; one
// iteration is one round trip (two hand-offs, two switches).
void weft_channel_pingpong(benchmark::State& state) {
  weft::run([&state] {
    weft::channel<int> ping, pong;
    auto echo = weft::spawn([&] {
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

// boost_fiber/channel_pingpong: the same over two unbuffered_channels.
void boost_fiber_channel_pingpong(benchmark::State& state) {
  boost::fibers::unbuffered_channel<int> ping, pong;
  boost::fibers::fiber echo([&] {
    int v = 0;
    while (ping.pop(v) == boost::fibers::channel_op_status::success) pong.push(v);
  });
  int v = 0;
  for (auto _ : state) {
    ping.push(1);
    pong.pop(v);
    benchmark::DoNotOptimize(v);
  }
  ping.close();
  echo.join();
}

// weft/channel_throughput: one producer, one consumer, capacity 1024; per item.
void weft_channel_throughput(benchmark::State& state) {
  weft::run([&state] {
    weft::channel<int> ch(1024);
    auto consumer = weft::spawn([&] {
      for (int& v : ch) benchmark::DoNotOptimize(v);
    });
    int i = 0;
    for (auto _ : state) ch.send(i++);
    ch.close();
    consumer.join();
  });
}

// boost_fiber/channel_throughput: buffered_channel holds capacity - 1 items, so 1025.
void boost_fiber_channel_throughput(benchmark::State& state) {
  boost::fibers::buffered_channel<int> ch(2048);
  boost::fibers::fiber consumer([&] {
    int v = 0;
    while (ch.pop(v) == boost::fibers::channel_op_status::success) benchmark::DoNotOptimize(v);
  });
  int i = 0;
  for (auto _ : state) ch.push(i++);
  ch.close();
  consumer.join();
}

// weft/select_2: a consumer selects over two channels fed alternately by a
// producer; per completed operation.
void weft_select_2(benchmark::State& state) {
  weft::run([&state] {
    weft::channel<int> a, b;
    auto consumer = weft::spawn([&] {
      bool open = true;
      while (open)
        weft::select(weft::on_recv(a, [&](std::optional<int> v) { open = v.has_value(); }),
                     weft::on_recv(b, [&](std::optional<int> v) { open = v.has_value(); }));
    });
    int i = 0;
    for (auto _ : state) {
      ++i;
      ((i & 1) ? a : b).send(int(i));
    }
    a.close();
    consumer.join();
  });
}

// weft/mutex_handoff: two fibers take turns on one mutex, each yielding while it
// holds it, so every lock waits and every unlock hands over; per hand-off.
void weft_mutex_handoff(benchmark::State& state) {
  weft::run([&state] {
    weft::mutex m;
    bool done = false;
    m.lock();
    auto other = weft::spawn([&] {
      while (!done) {
        m.lock();
        m.unlock();
      }
    });
    for (auto _ : state) {
      weft::this_fiber::yield();  // the other fiber queues on the mutex
      m.unlock();                 // hand-off: it owns the mutex now
      m.lock();                   // we queue behind it
    }
    done = true;
    m.unlock();
    other.join();
  });
}

// boost_fiber/mutex_handoff: the same with boost::fibers::mutex.
void boost_fiber_mutex_handoff(benchmark::State& state) {
  boost::fibers::mutex m;
  bool done = false;
  m.lock();
  boost::fibers::fiber other([&] {
    while (!done) {
      m.lock();
      m.unlock();
    }
  });
  for (auto _ : state) {
    boost::this_fiber::yield();
    m.unlock();
    m.lock();
  }
  done = true;
  m.unlock();
  other.join();
}

// weft/semaphore_handoff: two fibers alternate on two semaphores of zero permits;
// per hand-off (a release that wakes the other's acquire).
void weft_semaphore_handoff(benchmark::State& state) {
  weft::run([&state] {
    weft::semaphore mine(0), theirs(0);
    bool done = false;
    auto other = weft::spawn([&] {
      for (;;) {
        theirs.acquire();
        if (done) return;
        mine.release();
      }
    });
    while (state.KeepRunningBatch(2)) {
      theirs.release();
      mine.acquire();
    }
    done = true;
    theirs.release();
    other.join();
  });
}

}  // namespace

BENCHMARK(weft_channel_pingpong)->Name("weft/channel_pingpong");
BENCHMARK(boost_fiber_channel_pingpong)->Name("boost_fiber/channel_pingpong");
BENCHMARK(weft_channel_throughput)->Name("weft/channel_throughput");
BENCHMARK(boost_fiber_channel_throughput)->Name("boost_fiber/channel_throughput");
BENCHMARK(weft_select_2)->Name("weft/select_2");
BENCHMARK(weft_mutex_handoff)->Name("weft/mutex_handoff");
BENCHMARK(boost_fiber_mutex_handoff)->Name("boost_fiber/mutex_handoff");
BENCHMARK(weft_semaphore_handoff)->Name("weft/semaphore_handoff");
