// net_test.hpp: helpers shared by the net/ tests.
#pragma once

#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/weft_test.hpp"

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

// raise_fd_limit(n) lifts the soft RLIMIT_NOFILE to at least n if the hard limit
// allows; returns false if it cannot.
inline bool raise_fd_limit(rlim_t n) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= n) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < n) return false;
  lim.rlim_cur = n;
  return ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

// echo_connection serves one stream: every byte read is written back, until EOF.
template <class Stream>
void echo_connection(Stream& s) {
  char buf[4096];
  while (std::size_t n = s.read_some(buf)) s.write_all({buf, n});
}

}  // namespace weft_test
