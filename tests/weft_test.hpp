// weft_test.hpp: the shared fixture of weft's tests.
//
// run_checked(fn) runs fn as the main fiber of a fresh scheduler and fails the test
// if the run left anything behind (marl's test fixture does this for its allocator):
//   - a fiber record still allocated (spawned fibers whose handles were never
//     joined, detached or dropped, or a reference weft forgot to release),
//   - a started fiber that never finished, a timer still pending in the wheel, a
//     reactor registration never ended (the scheduler's census at destruction),
//   - a file descriptor (epoll, eventfd, signalfd, socket) still open.
// run() itself promises that no fiber outlives it; this checks that promise, and the
// bookkeeping behind it, after every test that runs a scheduler.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <weft/weft.hpp>
#include <weft/runtime/detail/record_cache.hpp>
#include <weft/runtime/detail/scheduler.hpp>

namespace weft_test {

using namespace std::chrono_literals;

inline int open_fd_count() {
  int count = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (::readdir(dir)) ++count;
    ::closedir(dir);
  }
  return count;
}

// open_fds: the descriptors the process holds, each with what it refers to
// ("socket:[1234]", "anon_inode:[eventpoll]", a path).
inline std::map<int, std::string> open_fds() {
  std::map<int, std::string> fds;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    const int own = ::dirfd(dir);
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      const int fd = std::atoi(entry->d_name);
      if (fd == own) continue;
      char target[512];
      const std::string link = std::string("/proc/self/fd/") + entry->d_name;
      const ssize_t n = ::readlink(link.c_str(), target, sizeof target);
      fds.emplace(fd, n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string("?"));
    }
    ::closedir(dir);
  }
  return fds;
}

// leak_check compares what the process holds when it is destroyed with what it held
// when it was made. The scheduler's census is the one run() on this thread destroyed
// last, so it is read only if the run completed (a throwing run still destroyed it).
class leak_check {
 public:
  leak_check() = default;
  leak_check(const leak_check&) = delete;
  leak_check& operator=(const leak_check&) = delete;
  ~leak_check() {
    const auto census = weft::detail::scheduler::last_teardown_census();
    EXPECT_EQ(census.fibers_alive, 0u) << "fibers still alive when the scheduler was destroyed";
    EXPECT_EQ(census.timers_pending, 0u) << "timers left pending in the scheduler's wheel";
    EXPECT_EQ(census.fds_registered, 0u) << "reactor registrations never ended";
    EXPECT_EQ(weft::detail::live_records(), records_before_) << "fiber records leaked";
    const auto now = settled_fds();
    for (const auto& [fd, target] : now)
      if (!held_before(fd, target)) ADD_FAILURE() << "file descriptors leaked: " << fd << " (" << target << ")";
    for (const auto& [fd, target] : fds_before_) {
      const auto it = now.find(fd);
      if ((it == now.end() || it->second != target) && !passing(target))
        ADD_FAILURE() << "file descriptor closed twice? " << fd << " (" << target
                      << ") was open before the test and is not now";
    }
  }

 private:
  bool held_before(int fd, const std::string& target) const {
    const auto it = fds_before_.find(fd);
    return it != fds_before_.end() && it->second == target;
  }
  // Another thread of the process may hold a descriptor for a moment (a pool thread
  // closing a dropped result, a sanitizer's thread), so new ones are read again for
  // up to 2 s.
  std::map<int, std::string> settled_fds() const {
    auto fds = open_fds();
    for (int tries = 0; tries < 200; ++tries) {
      bool fresh = false;
      for (const auto& [fd, target] : fds) fresh = fresh || !held_before(fd, target);
      if (!fresh) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      fds = open_fds();
    }
    return fds;
  }
  // passing: a descriptor that may have been such a moment's when the test began:
  // a /proc file, or a file already deleted (a previous test's temporary directory).
  static bool passing(const std::string& target) {
    constexpr std::string_view deleted = " (deleted)";
    return target.rfind("/proc/", 0) == 0 ||
           (target.size() >= deleted.size() && target.compare(target.size() - deleted.size(), deleted.size(), deleted) == 0);
  }

  std::ptrdiff_t records_before_ = weft::detail::live_records();
  std::map<int, std::string> fds_before_ = open_fds();
};

template <class F>
auto run_checked(F&& fn, weft::run_options options = {}) {
  leak_check check;
  return weft::run(options, std::forward<F>(fn));
}

// threads(n) is run options for a runtime of n schedulers.
inline weft::run_options threads(std::size_t n) {
  weft::run_options o;
  o.threads = n;
  return o;
}

// record_max raises `most` to `value` if that is more (for "at most N inside"
// counts kept by fibers on several threads).
inline void record_max(std::atomic<int>& most, int value) {
  int seen = most.load();
  while (value > seen && !most.compare_exchange_weak(seen, value)) {
  }
}

// spread_test is the fixture of a primitive's tests that run twice: with every
// fiber on one scheduler, and with the fibers they spawn spread over two schedulers
// of one runtime (main on scheduler 0, spawned fibers alternately on 1 and 0), so
// each primitive is also proven across threads: no lost wake-up, no race (TSan).
//   class Event : public spread_test {};  WEFT_SPREAD_TEST_SUITE(Event);
//   TEST_P(Event, X) { run([&] { auto f = spawn([&] { ... }); ... }); }
// Across two schedulers nothing orders a spawned fiber against main but weft's
// primitives, so such a test keeps shared counters atomic, and what it asserts must
// hold whichever fiber gets there first. settle() lets spawned fibers get as far as
// they can (park, say) before main goes on; one scheduler makes that certain, two
// make it likely, and a test's assertions must hold either way. A test whose point
// is an order only one scheduler can fix (FIFO among waiters that must arrive in a
// known order) stays a plain TEST and says so.
class spread_test : public ::testing::TestWithParam<std::size_t> {
 protected:
  bool spread() const { return GetParam() > 1; }

  // run runs fn as main on this test's runtime, with run_checked's leak checks.
  template <class F>
  auto run(F&& fn) {
    return run_checked(std::forward<F>(fn), threads(GetParam()));
  }

  // placed gives the spawn_options of the next fiber: on the next scheduler in turn
  // (the first on the one main does not run on); on one scheduler, the caller's.
  weft::spawn_options placed() {
    weft::spawn_options o;
    if (spread()) {
      const std::size_t turn = next_.fetch_add(1, std::memory_order_relaxed);
      o.on = static_cast<std::ptrdiff_t>((turn + 1) % GetParam());
    }
    return o;
  }

  // spawn starts fn where placed() says; on one scheduler it is weft::spawn.
  template <class F>
  auto spawn(F&& fn) {
    return weft::spawn(placed(), std::forward<F>(fn));
  }

  // settle lets the fibers spawned so far run until they block or end: a yield on
  // one scheduler; on two, also 2 ms for the other thread (a likelihood, never
  // something a test may depend on).
  void settle() {
    weft::this_fiber::yield();
    if (spread()) weft::this_fiber::sleep_for(std::chrono::milliseconds(2));
  }

 private:
  std::atomic<std::size_t> next_{0};
};

// park_signal tells a test that a fiber, on any scheduler, has blocked: the fiber
// calls announce() just before its blocking call, and wait() returns once that call
// has parked it (or it has ended). announce() spawns a fiber pinned to the caller's
// scheduler, which runs only when the caller gives up its thread; weft's blocking
// calls do not yield before they park.
class park_signal {
 public:
  void announce() {
    weft::spawn([this] { parked_.set(); }).detach();
  }
  void wait() { parked_.wait(); }

 private:
  weft::event parked_;
};

// WEFT_SPREAD_TEST_SUITE(Suite) runs each of Suite's TEST_Ps twice, as
// Suite.X/OneScheduler and Suite.X/TwoSchedulers.
#define WEFT_SPREAD_TEST_SUITE(suite)                                                         \
  INSTANTIATE_TEST_SUITE_P(, suite, ::testing::Values(std::size_t{1}, std::size_t{2}),       \
                           [](const ::testing::TestParamInfo<std::size_t>& info) {          \
                             return info.param == 1 ? std::string("OneScheduler")            \
                                                    : std::string("TwoSchedulers");          \
                           })

// boom is the exception tests throw on purpose.
struct boom : std::runtime_error {
  explicit boom(const std::string& what) : std::runtime_error(what) {}
};

// collect_reports, while it lives, collects what reaches the unhandled exception
// handler (described), so a test can assert that a failure was reported, not lost.
// Reports may come from any scheduler thread of the runtime; read `reported` once
// the run has returned.
struct collect_reports {
  std::mutex mutex;
  std::vector<std::string> reported;
  weft::unhandled_exception_handler previous = weft::set_unhandled_exception_handler(
      [this](weft::fiber_id, std::string_view, std::exception_ptr e) {
        std::lock_guard lock(mutex);
        reported.push_back(weft::describe_exception(e));
      });
  collect_reports() = default;
  collect_reports(const collect_reports&) = delete;
  collect_reports& operator=(const collect_reports&) = delete;
  ~collect_reports() { weft::set_unhandled_exception_handler(previous); }
};

// hang_guard turns a hang into a failure: a test that could otherwise only fail by
// never returning holds one, and if the guard is still alive after `limit` the process
// prints the test's name and aborts. The limit is a generous hang bound, never a
// timing assertion.
class hang_guard {
 public:
  explicit hang_guard(std::chrono::seconds limit = std::chrono::seconds(60))
      : name_(current_test_name()), watchdog_([this, limit] {
          std::unique_lock lock(mutex_);
          if (!done_cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "hang_guard: %s still running after %llds: hung\n", name_.c_str(),
                         static_cast<long long>(limit.count()));
            std::fflush(stderr);
            std::abort();
          }
        }) {}
  hang_guard(const hang_guard&) = delete;
  hang_guard& operator=(const hang_guard&) = delete;
  ~hang_guard() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_one();
    watchdog_.join();
  }

 private:
  static std::string current_test_name() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return info ? std::string(info->test_suite_name()) + "." + info->name() : "(no test)";
  }

  std::string name_;
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread watchdog_;  // last: starts after the members it reads
};

}  // namespace weft_test
