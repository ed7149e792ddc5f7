// deadlock reports across schedulers
#include <weft/weft.hpp>
#include <cstdio>
#include <thread>
using namespace std::chrono_literals;
template <class F> void expect_deadlock(const char* what, size_t threads, F f) {
  auto t0 = std::chrono::steady_clock::now();
  try { weft::run({.threads = threads}, f); std::printf("[%s] NO deadlock reported\n", what); }
  catch (const weft::error& e) { std::printf("[%s] %s (%lldms)\n", what, e.what(), (long long)std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()); }
  catch (const std::exception& e) { std::printf("[%s] other: %s\n", what, e.what()); }
}
int main() {
  expect_deadlock("mutex x-sched", 2, [] {
    weft::mutex m; weft::event ev; m.lock();
    auto f = weft::spawn({.on = 1}, [&] { std::lock_guard g(m); });
    ev.wait();
  });
  expect_deadlock("try_lock_for x-sched", 2, [] {
    weft::mutex m; weft::event ev; m.lock();
    auto f = weft::spawn({.on = 1}, [&] { m.try_lock_for(std::chrono::hours::max()); });
    ev.wait_for(std::chrono::hours::max());
  });
  expect_deadlock("channel recv on 3 scheds", 3, [] {
    weft::channel<int> ch;
    auto a = weft::spawn({.on = 1}, [&] { ch.recv(); });
    auto b = weft::spawn({.on = 2}, [&] { ch.recv(); });
    a.join();
  });
  expect_deadlock("join cycle across", 2, [] {
    weft::fiber<void>* pf = nullptr; weft::event ready;
    auto f = weft::spawn({.on = 1}, [&] { ready.wait(); weft::fiber<void>* p = pf; (void)p; weft::event e; e.wait(); });
    ready.set();
    f.join();
  });
  expect_deadlock("queue get on worker, main join", 2, [] {
    weft::queue<int> q;
    weft::spawn({.on = 1}, [&] { q.get(); }).join();
  });
  expect_deadlock("runtime handle temp", 2, [] {
    (void)weft::this_runtime(); (void)weft::this_scheduler();
    weft::event e; e.wait();
  });
  expect_deadlock("on_any fiber waits", 2, [] {
    weft::event e;
    auto f = weft::spawn({.on = weft::on_any}, [&] { e.wait(); });
    f.join();
  });
  expect_deadlock("after plain thread ended", 2, [] {
    std::thread([] {}).join();
    weft::event e; e.wait();
  });
  expect_deadlock("plain thread waits on channel (not deadlock?)", 2, [] {
    weft::channel<int> ch; weft::event e;
    std::thread t([&] { ch.recv_for(200ms); });
    t.detach();
    e.wait_for(2s);
    e.wait();
  });
  expect_deadlock("64 scheds", 64, [] {
    weft::event e;
    for (size_t i = 1; i < 64; ++i) weft::spawn({.on = i}, [&] { e.wait(); }).detach();
    e.wait();
  });
  std::puts("done");
}
