// clock.hpp: the one clock weft measures deadlines with, and the one place where a
// duration (of any representation and period) becomes a deadline.
#pragma once

#include <weft/runtime/detail/require_cxx20.hpp>

#include <chrono>
#include <cmath>
#include <ratio>
#include <type_traits>

namespace weft {

// clock is monotonic: deadlines do not move when the wall clock is set.
using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using duration = clock::duration;

// no_deadline is the deadline of a wait that may last forever.
inline constexpr time_point no_deadline = time_point::max();

namespace detail {

// wide_ns is wide enough to hold any duration of any built-in representation in
// nanoseconds, and the difference of two of them, without overflow.
__extension__ typedef __int128 wide_ns;  // __extension__: no -Wpedantic warning in users' builds

// to_wide_ns(d) is d in nanoseconds, rounded up (a deadline never comes early).
// Floating-point counts are clamped to +-2^100 ns first (infinities too); NaN counts
// as zero.
template <class Rep, class Period>
wide_ns to_wide_ns(std::chrono::duration<Rep, Period> d) noexcept {
  static_assert(std::is_arithmetic_v<Rep>, "weft deadlines take durations of a built-in arithmetic type");
  using to_ns = std::ratio_divide<Period, std::nano>;  // d is count * num / den ns
  const Rep count = d.count();
  if constexpr (std::is_floating_point_v<Rep>) {
    if (std::isnan(count)) return 0;
    constexpr long double limit = 0x1p100L;
    long double ns = std::ceil(static_cast<long double>(count) * to_ns::num / to_ns::den);
    if (ns > limit) ns = limit;
    if (ns < -limit) ns = -limit;
    return static_cast<wide_ns>(ns);
  } else {
    // |count| < 2^64 and num < 2^63: the product stays below 2^127.
    const wide_ns scaled = static_cast<wide_ns>(count) * to_ns::num;
    if (scaled >= 0) return (scaled + (to_ns::den - 1)) / to_ns::den;  // ceil
    return scaled / to_ns::den;  // truncation is the ceiling of a negative quotient
  }
}

// add_saturating(t, ns) is t + ns, clamped to [time_point::min(), time_point::max()].
inline time_point add_saturating(time_point t, wide_ns ns) noexcept {
  const wide_ns sum = static_cast<wide_ns>(t.time_since_epoch().count()) + ns;
  if (sum >= static_cast<wide_ns>(time_point::max().time_since_epoch().count())) return time_point::max();
  if (sum <= static_cast<wide_ns>(time_point::min().time_since_epoch().count())) return time_point::min();
  return time_point(duration(static_cast<duration::rep>(sum)));
}

}  // namespace detail

// deadline_after(from, d) is from + d, and deadline_after(d) is clock::now() + d, for
// any std::chrono::duration: rounded up to whole nanoseconds and saturating instead of
// overflowing. A duration too long to represent (hours::max(), years, a
// floating-point infinity) gives no_deadline, which waits forever; zero, a negative
// duration (duration::min() too) or NaN gives a deadline that is already due. Every
// `_for` call of weft turns its duration into a deadline through this, and nothing
// else does that arithmetic.
template <class Rep, class Period>
time_point deadline_after(time_point from, std::chrono::duration<Rep, Period> d) noexcept {
  if (!(d > d.zero())) return from;  // zero, negative, NaN: due at once
  return detail::add_saturating(from, detail::to_wide_ns(d));
}
template <class Rep, class Period>
time_point deadline_after(std::chrono::duration<Rep, Period> d) noexcept {
  return deadline_after(clock::now(), d);
}

// deadline_at(t) is the weft deadline of a time point of any clock and precision
// (a std::chrono::system_clock time, a steady_clock time in hours, ...): the same
// instant for weft::clock, otherwise now plus t's distance from its own clock's now.
// Saturating like deadline_after; the max() of any time point type is no_deadline.
template <class Clock, class Dur>
time_point deadline_at(const std::chrono::time_point<Clock, Dur>& t) noexcept {
  using their_time_point = std::chrono::time_point<Clock, Dur>;
  if constexpr (std::is_same_v<Clock, clock> && std::is_same_v<Dur, duration>) {
    return t;
  } else if (t == their_time_point::max()) {
    return no_deadline;
  } else if constexpr (std::is_same_v<Clock, clock>) {
    return detail::add_saturating(time_point(), detail::to_wide_ns(t.time_since_epoch()));
  } else {
    const auto their_now = Clock::now();
    const time_point now = clock::now();
    return detail::add_saturating(
        now, detail::to_wide_ns(t.time_since_epoch()) - detail::to_wide_ns(their_now.time_since_epoch()));
  }
}

}  // namespace weft
