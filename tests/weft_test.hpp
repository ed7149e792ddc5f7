// weft_test.hpp: the shared fixture of weft's tests.
//
// run_checked(fn) runs fn as the main fiber of a fresh scheduler and checks, at
// tear-down, that the process has exactly the file descriptors it had before (no
// epoll, eventfd or socket leaked). run() itself guarantees no fiber outlives it.
#pragma once

#include <dirent.h>

#include <gtest/gtest.h>

#include <chrono>
#include <utility>

#include "weft.hpp"

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

}  // namespace weft_test
