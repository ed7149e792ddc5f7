// clock.hpp: the one clock weft measures deadlines with.
#pragma once

#include <chrono>

namespace weft {

// clock is monotonic: deadlines do not move when the wall clock is set.
using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using duration = clock::duration;

// no_deadline is the deadline of a wait that may last forever.
inline constexpr time_point no_deadline = time_point::max();

// deadline_after(d) is now + d, saturating instead of overflowing for huge d.
template <class Rep, class Period>
time_point deadline_after(std::chrono::duration<Rep, Period> d) {
  const auto now = clock::now();
  if (d <= d.zero()) return now;
  if (d >= std::chrono::duration_cast<std::chrono::duration<Rep, Period>>(no_deadline - now))
    return no_deadline;
  return now + std::chrono::duration_cast<duration>(d);
}

}  // namespace weft
