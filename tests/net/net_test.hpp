// net_test.hpp: helpers shared by the net/ tests.
#pragma once

#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../weft_test.hpp"

namespace weft_test {

// pattern(seed, n) is n bytes that differ per seed and position, so a lost,
// duplicated or reordered byte shows up in a comparison.
inline std::string pattern(std::uint32_t seed, std::size_t n) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (std::size_t i = 0; i < n; ++i) {
    x = x * 1103515245u + 12345u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

inline weft::net::endpoint loopback_any_port() { return {weft::net::ip_address::v4_loopback(), 0}; }

// fd_limit changes the soft RLIMIT_NOFILE (process-wide) for its lifetime and puts
// back exactly the limit it found, however the test ends.
class fd_limit {
 public:
  fd_limit() { found_ = ::getrlimit(RLIMIT_NOFILE, &saved_) == 0; }
  fd_limit(const fd_limit&) = delete;
  fd_limit& operator=(const fd_limit&) = delete;
  ~fd_limit() { restore(); }

  // raise_to lifts the soft limit to at least n; false if the hard limit forbids.
  bool raise_to(rlim_t n) {
    if (!found_) return false;
    if (saved_.rlim_cur >= n) return true;
    if (saved_.rlim_max != RLIM_INFINITY && saved_.rlim_max < n) return false;
    return set(n);
  }
  // lower_to sets the soft limit to n (n below the current one).
  bool lower_to(rlim_t n) { return found_ && set(n); }
  void restore() {
    if (changed_ && ::setrlimit(RLIMIT_NOFILE, &saved_) == 0) changed_ = false;
  }

 private:
  bool set(rlim_t n) {
    rlimit lim = saved_;
    lim.rlim_cur = n;
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
    changed_ = true;
    return true;
  }
  rlimit saved_{};
  bool found_ = false;
  bool changed_ = false;
};

// echo_connection serves one stream: every byte read is written back, until EOF.
template <class Stream>
void echo_connection(Stream& s) {
  char buf[4096];
  while (std::size_t n = s.read_some(buf)) s.write_all({buf, n});
}

}  // namespace weft_test
