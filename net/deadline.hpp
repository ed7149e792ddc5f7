// deadline.hpp: the optional last argument of every blocking call in net/.
//
//   sock.read_some(buf);                          // no deadline
//   sock.read_some(buf, 2s);                      // at most 2 s from now
//   sock.read_some(buf, weft::clock::now() + 2s); // until a point in time
//
// When it passes, the call fails with errc::timed_out: the throwing form throws
// weft::timeout_error, the error_code form sets the code. A duration of any type is
// turned into a time point by weft::deadline_after: one too long to represent
// (hours::max()) means no deadline, zero or negative one that has passed already (a
// call that would have to wait fails at once).
#pragma once

#include <chrono>

#include <weft/runtime/clock.hpp>

namespace weft::net {

struct deadline {
  time_point at = no_deadline;

  deadline() noexcept = default;
  deadline(time_point t) noexcept : at(t) {}  // NOLINT: implicit on purpose
  template <class Rep, class Period>
  deadline(std::chrono::duration<Rep, Period> d) noexcept : at(deadline_after(d)) {}  // NOLINT
};

}  // namespace weft::net
