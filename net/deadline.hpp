// deadline.hpp: the optional last argument of every blocking call in net/.
//
//   sock.read_some(buf);                          // no deadline
//   sock.read_some(buf, 2s);                      // at most 2 s from now
//   sock.read_some(buf, weft::clock::now() + 2s); // until a point in time
//
// When it passes, the call fails with errc::timed_out: the throwing form throws
// weft::timeout_error, the error_code form sets the code.
#pragma once

#include <chrono>

#include "runtime/clock.hpp"

namespace weft::net {

struct deadline {
  time_point at = no_deadline;

  deadline() noexcept = default;
  deadline(time_point t) noexcept : at(t) {}  // NOLINT: implicit on purpose
  template <class Rep, class Period>
  deadline(std::chrono::duration<Rep, Period> d) : at(deadline_after(d)) {}  // NOLINT
};

}  // namespace weft::net
