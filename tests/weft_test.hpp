// weft_test.hpp: the shared fixture of weft's tests.
//
// run_checked(fn) runs fn as the main fiber of a fresh scheduler and checks, at
// tear-down, that the process has exactly the file descriptors it had before (no
// epoll, eventfd or socket leaked). run() itself guarantees no fiber outlives it.
#pragma once

#include <dirent.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <weft/weft.hpp>

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

template <class F>
auto run_checked(F&& fn, weft::run_options options = {}) {
  struct fd_check {
    int before = open_fd_count();
    ~fd_check() { EXPECT_EQ(open_fd_count(), before) << "file descriptors leaked"; }
  } check;
  return weft::run(options, std::forward<F>(fn));
}

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
