// Deadlines at both extremes, on every path that takes one: a duration too long to
// represent waits forever (and can still be woken or cancelled), a zero, negative or
// past deadline returns at once with the call's timeout result. Built on
// weft::deadline_after / deadline_at (runtime/clock.hpp), the one place a duration
// becomes a time point; run under UBSan, no conversion may overflow.
#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <mutex>
#include <optional>
#include <system_error>

#include <weft/runtime/scope.hpp>
#include "../net/net_test.hpp"

namespace {

using namespace weft_test;
using weft::time_point;
using std::chrono::duration;
using std::chrono::hours;

const time_point t0 = time_point(std::chrono::seconds(1000));

// ---- the conversion itself ----------------------------------------------------------

TEST(DeadlineAfter, TooLongForATimePointMeansNoDeadline) {
  EXPECT_EQ(weft::deadline_after(t0, hours::max()), weft::no_deadline);
  EXPECT_EQ(weft::deadline_after(t0, weft::duration::max()), weft::no_deadline);
  EXPECT_EQ(weft::deadline_after(t0, std::chrono::years(1000)), weft::no_deadline);
  EXPECT_EQ(weft::deadline_after(t0, std::chrono::years::max()), weft::no_deadline);
  EXPECT_EQ(weft::deadline_after(t0, duration<double>(std::numeric_limits<double>::infinity())),
            weft::no_deadline);
  EXPECT_EQ(weft::deadline_after(t0, duration<double>::max()), weft::no_deadline);
  EXPECT_EQ(weft::deadline_after(t0, duration<std::uint64_t, std::milli>::max()), weft::no_deadline);
  EXPECT_EQ(weft::deadline_after(t0, duration<long double, std::ratio<86400>>(1e300L)), weft::no_deadline);
  EXPECT_EQ(weft::deadline_after(time_point::max() - std::chrono::nanoseconds(1), std::chrono::nanoseconds(2)),
            weft::no_deadline);
  EXPECT_EQ(weft::deadline_after(hours::max()), weft::no_deadline);
}

TEST(DeadlineAfter, ZeroNegativeAndNaNAreDueAtOnce) {
  EXPECT_EQ(weft::deadline_after(t0, std::chrono::seconds(0)), t0);
  EXPECT_EQ(weft::deadline_after(t0, std::chrono::seconds(-5)), t0);
  EXPECT_EQ(weft::deadline_after(t0, hours::min()), t0);
  EXPECT_EQ(weft::deadline_after(t0, weft::duration::min()), t0);
  EXPECT_EQ(weft::deadline_after(t0, duration<double>(-std::numeric_limits<double>::infinity())), t0);
  EXPECT_EQ(weft::deadline_after(t0, duration<double>(std::nan(""))), t0);
  const auto before = weft::clock::now();
  const auto d = weft::deadline_after(std::chrono::seconds(-1));
  EXPECT_GE(d, before);
  EXPECT_LE(d, weft::clock::now());
}

TEST(DeadlineAfter, RoundsUpToWholeNanosecondsNeverEarly) {
  using namespace std::chrono;
  EXPECT_EQ(weft::deadline_after(t0, nanoseconds(1)), t0 + nanoseconds(1));
  EXPECT_EQ(weft::deadline_after(t0, duration<long long, std::pico>(1)), t0 + nanoseconds(1));
  EXPECT_EQ(weft::deadline_after(t0, duration<long long, std::pico>(1001)), t0 + nanoseconds(2));
  EXPECT_EQ(weft::deadline_after(t0, duration<double, std::milli>(1.5)), t0 + microseconds(1500));
  EXPECT_EQ(weft::deadline_after(t0, duration<double>(1e-12)), t0 + nanoseconds(1));
  EXPECT_EQ(weft::deadline_after(t0, duration<long long, std::ratio<1, 3>>(1)), t0 + nanoseconds(333'333'334));
  EXPECT_EQ(weft::deadline_after(t0, duration<std::int8_t, std::ratio<3600>>(127)), t0 + hours(127));
  EXPECT_EQ(weft::deadline_after(t0, duration<unsigned, std::micro>(UINT_MAX)),
            t0 + microseconds(UINT_MAX));
  EXPECT_EQ(weft::deadline_after(t0, hours(24 * 800)), t0 + hours(24 * 800));
}

TEST(DeadlineAt, TimePointsOfAnyClockAndPrecision) {
  using namespace std::chrono;
  using steady_hours = std::chrono::time_point<steady_clock, hours>;
  EXPECT_EQ(weft::deadline_at(steady_hours::max()), weft::no_deadline);
  EXPECT_EQ(weft::deadline_at(steady_hours::min()), time_point::min());
  EXPECT_EQ(weft::deadline_at(steady_hours(hours(3))), time_point(hours(3)));
  EXPECT_EQ(weft::deadline_at(t0), t0);
  EXPECT_EQ(weft::deadline_at(system_clock::time_point::max()), weft::no_deadline);
  EXPECT_EQ(weft::deadline_at(system_clock::time_point::min()), time_point::min());
  EXPECT_EQ(weft::deadline_at(std::chrono::time_point<system_clock, hours>::max()), weft::no_deadline);
  const auto before = weft::clock::now();
  const auto in_an_hour = weft::deadline_at(system_clock::now() + hours(1));
  EXPECT_GT(in_an_hour, before + minutes(59));
  EXPECT_LT(in_an_hour, weft::clock::now() + minutes(61));
}

// ---- every blocking path with a deadline too far to represent -------------------------

// wake_soon(fn): another fiber runs fn after a few ms, so a wait with a huge deadline
// must still end by its ordinary wake-up (and must not end by its deadline).
template <class F>
weft::fiber<void> wake_soon(F fn) {
  return weft::spawn([fn = std::move(fn)]() mutable {
    weft::this_fiber::sleep_for(std::chrono::milliseconds(3));
    fn();
  });
}

TEST(FarDeadline, FarSleepsAreCancelledAfterTheClockMoved) {
  hang_guard guard;
  run_checked([] {
    weft::this_fiber::sleep_for(2ms);  // the wheel's clock has moved
    std::vector<weft::fiber<void>> sleepers;
    sleepers.push_back(weft::spawn([] { weft::this_fiber::sleep_for(hours(24 * 800)); }));
    sleepers.push_back(weft::spawn([] { weft::this_fiber::sleep_for(hours::max()); }));
    sleepers.push_back(weft::spawn([] { weft::this_fiber::sleep_for(std::chrono::years(300)); }));
    sleepers.push_back(weft::spawn([] { weft::this_fiber::sleep_for(duration<double>::max()); }));
    sleepers.push_back(weft::spawn([] { weft::this_fiber::sleep_until(time_point::max() - 1ns); }));
    sleepers.push_back(weft::spawn([] { weft::this_fiber::sleep_until(weft::no_deadline); }));
    weft::this_fiber::sleep_for(10ms);  // the scheduler goes on meanwhile
    for (auto& f : sleepers) {
      EXPECT_FALSE(f.done()) << "a far sleep ended early";
      f.cancel();
      EXPECT_THROW(f.join(), weft::cancelled_error);
    }
  });
}

TEST(FarDeadline, EveryWaitWithAMaxDeadlineEndsByItsWakeUp) {
  hang_guard guard;
  run_checked([] {
    weft::this_fiber::sleep_for(1ms);
    {
      weft::event ev;
      auto w = wake_soon([&] { ev.set(); });
      EXPECT_TRUE(ev.wait_for(hours::max()));
      w.join();
    }
    {
      weft::channel<int> ch;
      auto w = wake_soon([&] { ch.send(7); });
      auto r = ch.recv_for(duration<double>(std::numeric_limits<double>::infinity()));
      EXPECT_EQ(r.status, weft::channel_status::ok);
      EXPECT_EQ(r.value, 7);
      w.join();
    }
    {
      weft::channel<int> ch;
      auto w = wake_soon([&] { EXPECT_EQ(ch.recv(), 8); });
      EXPECT_EQ(ch.send_for(8, std::chrono::years::max()), weft::channel_status::ok);
      w.join();
    }
    {
      weft::semaphore sem(0);
      auto w = wake_soon([&] { sem.release(); });
      EXPECT_TRUE(sem.acquire_for(weft::duration::max()));
      w.join();
    }
    {
      weft::mutex m;
      for (int round = 0; round < 2; ++round) {
        auto holder = weft::spawn([&] {
          std::lock_guard lk(m);
          weft::this_fiber::sleep_for(3ms);
        });
        weft::this_fiber::yield();  // the holder takes the mutex
        EXPECT_TRUE(round == 0 ? m.try_lock_for(hours::max())
                               : m.try_lock_until(std::chrono::system_clock::time_point::max()));
        m.unlock();
        holder.join();
      }
    }
    {
      weft::mutex m;
      weft::condition_variable cv;
      bool ready = false;
      auto w = wake_soon([&] {
        std::lock_guard lk(m);
        ready = true;
        cv.notify_one();
      });
      std::unique_lock lk(m);
      EXPECT_TRUE(cv.wait_for(lk, hours::max(), [&] { return ready; }));
      lk.unlock();
      w.join();
    }
    {
      weft::wait_group wg;
      wg.add();
      auto w = wake_soon([&] { wg.done(); });
      EXPECT_TRUE(wg.wait_for(hours::max()));
      w.join();
    }
    {
      weft::channel<int> ch;
      auto w = wake_soon([&] { ch.send(1); });
      EXPECT_EQ(weft::select_for(hours::max(), weft::on_recv(ch)), std::optional<std::size_t>(0));
      w.join();
    }
    {
      auto f = weft::spawn([] { weft::this_fiber::sleep_for(3ms); });
      EXPECT_TRUE(f.wait_for(hours::max()));
      f.join();
    }
    {
      int fds[2];
      ASSERT_EQ(::pipe(fds), 0);
      auto w = wake_soon([&] { ASSERT_EQ(::write(fds[1], "x", 1), 1); });
      EXPECT_TRUE(weft::wait_fd_for(fds[0], weft::fd_event::readable, hours::max()));
      w.join();
      ::close(fds[0]);
      ::close(fds[1]);
    }
    {
      auto [a, b] = weft::net::unix_stream::pair();
      auto w = wake_soon([&b] { b.write_all("hi"); });
      char buf[8];
      EXPECT_EQ(a.read_some(buf, hours::max()), 2u);
      auto w2 = wake_soon([&b] { b.write_all("!"); });
      EXPECT_EQ(a.read_some(buf, weft::net::deadline(weft::no_deadline)), 1u);
      w.join();
      w2.join();
    }
    EXPECT_EQ(weft::with_timeout(hours::max(), [] {
                weft::this_fiber::sleep_for(3ms);
                return 5;
              }),
              5);
    EXPECT_EQ(weft::with_deadline(time_point::max(), [] {
                weft::this_fiber::sleep_for(1ms);
                return 6;
              }),
              6);
    EXPECT_EQ(weft::wait_for(std::chrono::years::max(), [] { return 7; }), 7);
  });
}

// ---- zero, negative and past deadlines -----------------------------------------------------

TEST(PastDeadline, EveryWaitReturnsAtOnceWithItsTimeoutResult) {
  hang_guard guard;
  run_checked([] {
    // `late` would be set if any call below really suspended for a second.
    bool late = false;
    auto alarm = weft::spawn([&] {
      weft::this_fiber::sleep_for(1s);
      late = true;
    });
    const auto past = weft::clock::now() - 1s;
    weft::event ev;
    EXPECT_FALSE(ev.wait_for(-1s));
    EXPECT_FALSE(ev.wait_for(hours::min()));
    EXPECT_FALSE(ev.wait_for(duration<double>(std::nan(""))));
    EXPECT_FALSE(ev.wait_until(past));
    EXPECT_FALSE(ev.wait_until(time_point::min()));
    ev.set();
    EXPECT_TRUE(ev.wait_for(-1s)) << "a set event reports true even with a past deadline";

    weft::channel<int> ch;
    EXPECT_EQ(ch.recv_for(-1s).status, weft::channel_status::timeout);
    EXPECT_EQ(ch.recv_for(0s).status, weft::channel_status::timeout);
    EXPECT_EQ(ch.recv_until(time_point::min()).status, weft::channel_status::timeout);
    EXPECT_EQ(ch.send_for(1, weft::duration::min()), weft::channel_status::timeout);
    EXPECT_EQ(ch.send_until(1, past), weft::channel_status::timeout);

    weft::semaphore sem(1);
    EXPECT_TRUE(sem.acquire_for(-1s)) << "a free permit is taken whatever the deadline";
    EXPECT_FALSE(sem.acquire_for(-1s));
    EXPECT_FALSE(sem.acquire_until(time_point::min()));

    weft::mutex m;
    EXPECT_TRUE(m.try_lock_for(-1s));
    auto other = weft::spawn([&] {
      EXPECT_FALSE(m.try_lock_for(-1s));
      EXPECT_FALSE(m.try_lock_until(std::chrono::system_clock::time_point::min()));
    });
    other.join();
    {
      weft::condition_variable cv;
      std::unique_lock lk(m, std::adopt_lock);
      EXPECT_EQ(cv.wait_for(lk, -1s), std::cv_status::timeout);
      EXPECT_FALSE(cv.wait_until(lk, time_point::min(), [] { return false; }));
      EXPECT_TRUE(lk.owns_lock());
    }

    weft::wait_group wg;
    wg.add();
    EXPECT_FALSE(wg.wait_for(-1s));
    wg.done();

    EXPECT_EQ(weft::select_for(-1s, weft::on_recv(ch)), std::nullopt);

    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_for(10ms); });
    EXPECT_FALSE(sleeper.wait_for(-1s));
    EXPECT_FALSE(sleeper.wait_until(time_point::min()));
    sleeper.join();

    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    EXPECT_FALSE(weft::wait_fd_for(fds[0], weft::fd_event::readable, -1s));
    EXPECT_FALSE(weft::wait_fd_until(fds[0], weft::fd_event::readable, time_point::min()));
    ::close(fds[0]);
    ::close(fds[1]);

    auto [a, b] = weft::net::unix_stream::pair();
    char buf[8];
    EXPECT_THROW(a.read_some(buf, -1s), weft::timeout_error);
    std::error_code ec;
    EXPECT_EQ(a.read_some(buf, time_point::min(), ec), 0u);
    EXPECT_EQ(ec, weft::errc::timed_out);

    EXPECT_THROW(weft::with_timeout(-1s, [] { weft::this_fiber::sleep_for(10s); }), weft::timeout_error);
    EXPECT_THROW(weft::with_deadline(time_point::min(), [&] { ch.recv(); }), weft::timeout_error);
    EXPECT_EQ(weft::with_timeout(0s, [] { return 3; }), 3) << "no blocking call, no timeout";

    weft::this_fiber::sleep_for(weft::duration::min());
    weft::this_fiber::sleep_for(duration<double>(std::nan("")));
    weft::this_fiber::sleep_until(time_point::min());
    weft::this_fiber::sleep_until(past);

    EXPECT_FALSE(late) << "a call with a past deadline suspended for long";
    alarm.cancel();
    EXPECT_THROW(alarm.join(), weft::cancelled_error);
  });
}

}  // namespace
