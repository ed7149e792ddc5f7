// icount.cpp: the single-thread rows of weft_bench as fixed-count loops, for
// callgrind (bench/icount.py): `icount ROW N` runs ROW's operation N times.
// Instructions per operation, (Ir(N) - Ir(0)) / N, are exact where timings on a
// shared VM drift. Each row is a function of its own, so that one row's code does
// not change how the compiler lays out another's (in one shared function, a
// change elsewhere moved channel_throughput by 10%). Builds against any tree, also
// one from before the headers moved under include/weft (the #else).
#if __has_include(<weft/weft.hpp>)
#include <weft/weft.hpp>
#else
#include "weft.hpp"
#endif

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace {

// keep: the value counts as used (benchmark::DoNotOptimize without the library).
template <class T>
void keep(const T& v) {
  asm volatile("" : : "r,m"(v) : "memory");
}

[[gnu::noinline]] void yield(long n) {  // per yield of main (two switches)
  bool done = false;
  auto other = weft::spawn([&done] {
    while (!done) weft::this_fiber::yield();
  });
  weft::this_fiber::yield();
  for (long i = 0; i < n; ++i) weft::this_fiber::yield();
  done = true;
  other.join();
}

[[gnu::noinline]] void spawn_join(long n) {
  weft::spawn([] {}).join();
  for (long i = 0; i < n; ++i) weft::spawn([] {}).join();
}

[[gnu::noinline]] void sleep_zero(long n) {
  for (long i = 0; i < n; ++i) weft::this_fiber::sleep_for(std::chrono::nanoseconds(0));
}

[[gnu::noinline]] void channel_pingpong(long n) {  // per round trip
  weft::channel<int> ping, pong;
  auto echo = weft::spawn([&] {
    while (auto v = ping.recv()) pong.send(int(*v));
  });
  for (long i = 0; i < n; ++i) {
    ping.send(1);
    keep(pong.recv());
  }
  ping.close();
  echo.join();
}

[[gnu::noinline]] void receive_all(weft::channel<int>& ch) {
  for (int& v : ch) keep(v);
}
[[gnu::noinline]] void channel_throughput(long n) {  // per item, capacity 1024
  weft::channel<int> ch(1024);
  auto consumer = weft::spawn([&] { receive_all(ch); });
  for (long i = 0; i < n; ++i) ch.send(int(i));
  ch.close();
  consumer.join();
}

[[gnu::noinline]] void select_2(long n) {  // per value selected
  weft::channel<int> a, b;
  auto consumer = weft::spawn([&] {
    bool open = true;
    while (open)
      weft::select(weft::on_recv(a, [&](std::optional<int> v) { open = v.has_value(); }),
                   weft::on_recv(b, [&](std::optional<int> v) { open = v.has_value(); }));
  });
  for (long i = 1; i <= n; ++i) ((i & 1) ? a : b).send(int(i));
  a.close();
  consumer.join();
}

[[gnu::noinline]] void mutex_handoff(long n) {  // per round (two hand-offs)
  weft::mutex m;
  bool done = false;
  m.lock();
  auto other = weft::spawn([&] {
    while (!done) {
      m.lock();
      m.unlock();
    }
  });
  for (long i = 0; i < n; ++i) {
    weft::this_fiber::yield();
    m.unlock();
    m.lock();
  }
  done = true;
  m.unlock();
  other.join();
}

[[gnu::noinline]] void semaphore_handoff(long n) {  // per round (two hand-offs)
  weft::semaphore mine(0), theirs(0);
  bool done = false;
  auto other = weft::spawn([&] {
    for (;;) {
      theirs.acquire();
      if (done) return;
      mine.release();
    }
  });
  for (long i = 0; i < n; ++i) {
    theirs.release();
    mine.acquire();
  }
  done = true;
  theirs.release();
  other.join();
}

[[gnu::noinline]] void task_group(long n) {  // per child, in groups of 1,000
  auto batch = [] {
    weft::task_group group;
    for (int i = 0; i < 1000; ++i) group.spawn([] {});
    group.join();
  };
  batch();
  for (long i = 0; i < n / 1000; ++i) batch();
}

[[gnu::noinline]] void gather_10(long n) {  // per gather of ten
  auto f = [] { return 1; };
  for (long i = 0; i < n; ++i) keep(weft::gather(f, f, f, f, f, f, f, f, f, f));
}

[[gnu::noinline]] void cancel_blocked(long n) {  // per fiber spawned, parked, cancelled, joined
  weft::channel<int> never;
  for (long i = 0; i < n; ++i) {
    auto f = weft::spawn([&] { never.recv(); });
    weft::this_fiber::yield();
    f.cancel();
    try {
      f.join();
    } catch (const weft::cancelled_error&) {
    }
  }
}

struct row {
  const char* name;
  void (*run)(long);
};
constexpr row rows[] = {
    {"yield", yield},
    {"spawn_join", spawn_join},
    {"sleep_zero", sleep_zero},
    {"channel_pingpong", channel_pingpong},
    {"channel_throughput", channel_throughput},
    {"select_2", select_2},
    {"mutex_handoff", mutex_handoff},
    {"semaphore_handoff", semaphore_handoff},
    {"task_group", task_group},
    {"gather_10", gather_10},
    {"cancel_blocked", cancel_blocked},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
    for (const row& r : rows) std::printf("%s\n", r.name);
    return 0;
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: icount ROW N   (icount --list: the rows)\n");
    return 2;
  }
  const long n = std::atol(argv[2]);
  for (const row& r : rows)
    if (std::strcmp(argv[1], r.name) == 0) {
      weft::run([&] { r.run(n); });
      return 0;
    }
  std::fprintf(stderr, "icount: no row %s (icount --list)\n", argv[1]);
  return 2;
}
