// Work stealing: a fiber spawned with on_any waits on its spawner's scheduler until
// that one gets to it or an idle scheduler takes it; pinned fibers (on_caller, an
// index) never move, started fibers never move, and whatever a handle does to an
// unstarted fiber (join, cancel, drop) reaches it wherever it ends up.
#include <atomic>
#include <chrono>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

namespace {

// busy_until spins the calling fiber without ever blocking or yielding, so its
// scheduler runs nothing else meanwhile, until pred() holds or 10 s have passed
// (a hang guard). True if pred() held.
template <class Pred>
bool busy_until(Pred pred) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!pred())
    if (std::chrono::steady_clock::now() > give_up) return false;
  return true;
}

// ended counts the fibers whose function began, when the function ends by any path.
struct count_end {
  std::atomic<int>& ended;
  ~count_end() { ++ended; }
};

// keep_scheduler_busy starts a fiber on scheduler `index` that spins (no blocking
// call) until `release` is set, and returns once it spins: that scheduler can
// neither run nor steal anything else meanwhile.
weft::fiber<void> keep_scheduler_busy(std::ptrdiff_t index, std::atomic<bool>& release) {
  auto spinning = std::make_shared<std::atomic<bool>>(false);
  auto f = weft::spawn({.on = index}, [&release, spinning] {
    spinning->store(true);
    EXPECT_TRUE(busy_until([&] { return release.load(); }));
  });
  while (!spinning->load()) weft::this_fiber::sleep_for(100us);
  return f;
}

}  // namespace

TEST(WorkStealing, OnAnyFibersOfABusySchedulerRunOnAnIdleOne) {
  run_checked(
      [] {
        constexpr int count = 20;
        std::vector<std::atomic<std::size_t>> ran_on(count);
        std::atomic<int> ran{0};
        std::vector<weft::fiber<void>> fs;
        for (int i = 0; i < count; ++i)
          fs.push_back(weft::spawn({.on = weft::on_any}, [&, i] {
            ran_on[i] = weft::this_fiber::scheduler_index();
            ++ran;
          }));
        // Scheduler 0 runs nothing while main spins: only scheduler 1 can run them.
        EXPECT_TRUE(busy_until([&] { return ran.load() == count; }));
        for (auto& f : fs) f.join();
        for (auto& on : ran_on) EXPECT_EQ(on.load(), 1u);
      },
      threads(2));
}

TEST(WorkStealing, ASleepingSchedulerWakesForQueuedWork) {
  run_checked(
      [] {
        // Long enough for scheduler 1 to have stopped spinning and gone to sleep.
        weft::this_fiber::sleep_for(20ms);
        std::atomic<int> ran{0};
        std::vector<weft::fiber<void>> fs;
        for (int i = 0; i < 5; ++i) fs.push_back(weft::spawn({.on = weft::on_any}, [&] { ++ran; }));
        EXPECT_TRUE(busy_until([&] { return ran.load() == 5; }));
        for (auto& f : fs) f.join();
      },
      threads(2));
}

// Fibers spawned on_caller or with an index start where they were placed and stay
// there across blocking calls, even while that scheduler is busy and another one
// idles; on_any fibers spawned at the same time are taken by the idle one.
TEST(WorkStealing, PinnedFibersNeverMove) {
  run_checked(
      [] {
        std::atomic<int> any_ran{0};
        auto pinned = [] {
          bool stayed = weft::this_fiber::scheduler_index() == 0;
          for (int i = 0; i < 20; ++i) {
            weft::this_fiber::yield();
            weft::this_fiber::sleep_for(50us);
            stayed = stayed && weft::this_fiber::scheduler_index() == 0;
          }
          return stayed;
        };
        std::vector<weft::fiber<bool>> fs;
        for (int i = 0; i < 10; ++i) {
          fs.push_back(weft::spawn(pinned));
          fs.push_back(weft::spawn({.on = 0}, pinned));
          fs.push_back(weft::spawn({.on = weft::on_any}, [&] {
            ++any_ran;
            return weft::this_fiber::scheduler_index() == 1;
          }));
        }
        EXPECT_TRUE(busy_until([&] { return any_ran.load() == 10; }));
        for (auto& f : fs) EXPECT_TRUE(f.join());
      },
      threads(2));
}

// A join from the spawning scheduler starts an on_any fiber that is still waiting
// there, on that scheduler (it cannot be taken from under the join).
TEST(WorkStealing, JoinFromTheSpawningSchedulerStartsAQueuedFiberThere) {
  run_checked(
      [] {
        std::atomic<bool> release{false};
        auto busy = keep_scheduler_busy(1, release);
        auto f = weft::spawn({.on = weft::on_any}, [] { return weft::this_fiber::scheduler_index(); });
        EXPECT_EQ(f.join(), 0u);
        release = true;
        busy.join();
      },
      threads(2));
}

TEST(WorkStealing, CancelAndDropReachAQueuedFiber) {
  collect_reports reports;
  std::atomic<int> ended{0};
  run_checked(
      [&] {
        std::atomic<bool> release{false};
        auto busy = keep_scheduler_busy(1, release);
        auto cancelled = weft::spawn({.on = weft::on_any}, [&] {
          count_end guard{ended};
          weft::this_fiber::sleep_for(std::chrono::hours(1));
        });
        cancelled.cancel();  // before it starts: it starts cancelled
        {
          auto dropped = weft::spawn({.on = weft::on_any}, [&] {
            count_end guard{ended};
            throw boom("dropped while queued");
          });
        }  // dropped while it waits in the queue: it runs detached, and its error is reported
        EXPECT_THROW(cancelled.join(), weft::cancelled_error);
        release = true;
        busy.join();
        while (ended.load() < 2) weft::this_fiber::sleep_for(100us);
      },
      threads(2));
  EXPECT_EQ(ended.load(), 2);
  ASSERT_EQ(reports.reported.size(), 1u);
  EXPECT_NE(reports.reported[0].find("dropped while queued"), std::string::npos) << reports.reported[0];
}

// A fiber taken by another scheduler is joined, cancelled and dropped through its
// new owner, from the spawning scheduler and from the thief's own fibers.
TEST(WorkStealing, HandlesOfStolenFibersWorkFromAnywhere) {
  collect_reports reports;
  std::atomic<int> ended{0};
  run_checked(
      [&] {
        std::atomic<int> started{0};
        weft::event never, go;
        auto value = weft::spawn({.on = weft::on_any}, [&] {
          ++started;
          return weft::this_fiber::scheduler_index();
        });
        auto waiting = weft::spawn({.on = weft::on_any}, [&] {
          ++started;
          never.wait();
        });
        auto failing = weft::spawn({.on = weft::on_any}, [&] {
          count_end guard{ended};
          ++started;
          go.wait();
          throw boom("stolen and dropped");
        });
        EXPECT_TRUE(busy_until([&] { return started.load() == 3; }));  // all on scheduler 1
        EXPECT_EQ(value.join(), 1u);
        waiting.cancel();
        EXPECT_THROW(waiting.join(), weft::cancelled_error);
        auto joiner = weft::spawn({.on = 1}, [&] { EXPECT_FALSE(failing.wait_for(1ms)); });
        joiner.join();
        failing = {};  // dropped on scheduler 0: its error is reported from scheduler 1
        go.set();
        while (ended.load() < 1) weft::this_fiber::sleep_for(100us);
      },
      threads(2));
  ASSERT_EQ(reports.reported.size(), 1u);
  EXPECT_NE(reports.reported[0].find("stolen and dropped"), std::string::npos) << reports.reported[0];
}

// When main returns, on_any fibers that nobody started yet start cancelled and end.
TEST(WorkStealing, ShutdownEndsQueuedFibers) {
  std::atomic<int> ended{0};
  std::atomic<bool> release{false};  // outlives main: the busy fiber reads it after main returned
  constexpr int count = 50;
  run_checked(
      [&] {
        auto busy = keep_scheduler_busy(1, release);
        for (int i = 0; i < count; ++i)
          weft::spawn({.on = weft::on_any}, [&] {
            count_end guard{ended};
            weft::this_fiber::sleep_for(std::chrono::hours(1));
          }).detach();
        release = true;
        busy.detach();  // main returns without blocking: scheduler 0 started none of them
      },
      threads(2));
  EXPECT_EQ(ended.load(), count);
}

// Many on_any fibers spawned on both schedulers, their handles passed to the other
// one, which joins, cancels or drops them while they may still be queued, be taken,
// or be running: every fiber runs once, and the run ends clean (no lost request,
// no leaked record).
TEST(WorkStealing, HandlesRaceWithStealing) {
#if WEFT_TSAN
  constexpr int per_side = 300;
#else
  constexpr int per_side = 3000;
#endif
  std::atomic<int> ended{0};
  run_checked(
      [&] {
        auto side = [&](std::ptrdiff_t other) {
          weft::channel<weft::fiber<void>> handles(64);
          auto consumer = weft::spawn({.on = other}, [&handles] {
            int i = 0;
            for (auto& f : handles) {
              switch (i++ % 3) {
                case 0: f.join(); break;
                case 1:
                  f.cancel();
                  try {
                    f.join();
                  } catch (const weft::cancelled_error&) {
                  }
                  break;
                default: f = {}; break;
              }
            }
          });
          for (int i = 0; i < per_side; ++i) {
            handles.send(weft::spawn({.on = weft::on_any}, [&] {
              count_end guard{ended};
              weft::this_fiber::yield();
            }));
          }
          handles.close();
          consumer.join();
        };
        auto other_side = weft::spawn({.on = 1}, side, 0);
        side(1);
        other_side.join();
        while (ended.load() < 2 * per_side) weft::this_fiber::sleep_for(100us);
      },
      threads(2));
  EXPECT_EQ(ended.load(), 2 * per_side);
}

TEST(WorkStealing, WithOneSchedulerOnAnyIsTheCaller) {
  run_checked([] {
    auto f = weft::spawn({.on = weft::on_any}, [] { return weft::this_fiber::scheduler_index(); });
    EXPECT_EQ(f.join(), 0u);
  });
}
