// One runtime over several scheduler threads: run({.threads = N}), spawn placement,
// waits, cancellation and handles across schedulers, primitives shared between
// them, and the shutdown that cancels and joins every fiber everywhere.
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <sched.h>

#include "../weft_test.hpp"

using namespace weft_test;

namespace {

// Under TSan every cross-thread hand-off is much slower; the counts stay meaningful.
#if WEFT_TSAN
constexpr int round_trips = 5'000;
#else
constexpr int round_trips = 100'000;
#endif

}  // namespace

TEST(MultiScheduler, EachSchedulerIsItsOwnThread) {
  run_checked(
      [] {
        EXPECT_EQ(weft::this_fiber::scheduler_count(), 3u);
        EXPECT_EQ(weft::this_fiber::scheduler_index(), 0u);
        const auto main_thread = std::this_thread::get_id();
        std::set<std::thread::id> seen{main_thread};
        for (std::ptrdiff_t i = 0; i < 3; ++i) {
          auto f = weft::spawn({.on = i}, [] {
            return std::pair(weft::this_fiber::scheduler_index(), std::this_thread::get_id());
          });
          auto [index, thread] = f.join();
          EXPECT_EQ(index, std::size_t(i));
          EXPECT_EQ(thread == main_thread, i == 0);
          seen.insert(thread);
        }
        EXPECT_EQ(seen.size(), 3u);
      },
      threads(3));
}

TEST(MultiScheduler, ZeroThreadsMeansOnePerCpu) {
  cpu_set_t cpus;
  ASSERT_EQ(::sched_getaffinity(0, sizeof cpus, &cpus), 0);
  const auto expected = static_cast<std::size_t>(CPU_COUNT(&cpus));
  EXPECT_EQ(run_checked([] { return weft::this_fiber::scheduler_count(); }, threads(0)), expected);
  EXPECT_EQ(run_checked([] { return weft::this_fiber::scheduler_count(); }), 1u);  // the default
}

TEST(MultiScheduler, PlacementOutsideTheRuntimeIsInvalidArgument) {
  auto expect_refused = [](std::ptrdiff_t on, const char* says) {
    try {
      weft::spawn({.on = on}, [] {}).join();
      ADD_FAILURE() << "spawn accepted on = " << on;
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("weft::spawn", 0), 0u) << e.what();
    }
  };
  run_checked(
      [&] {
        expect_refused(2, "spawn_options::on is 2, and the runtime has 2 schedulers (0 to 1)");
        expect_refused(-3, "spawn_options::on is -3");
        // Plain numbers never alias on_caller or on_any.
        expect_refused(-1, "spawn_options::on is -1");
        expect_refused(-2, "spawn_options::on is -2");
      },
      threads(2));
  run_checked([&] {
    expect_refused(1, "the runtime has 1 scheduler (weft::run_options::threads)");
    EXPECT_EQ(weft::spawn({.on = weft::on_any}, [] { return 5; }).join(), 5);
    EXPECT_EQ(weft::spawn({.on = 0}, [] { return 6; }).join(), 6);
  });
  EXPECT_THROW(weft::run(threads(100'000), [] {}), weft::error);
}

// An index of any integer type is a placement: the std::size_t that
// scheduler_index() and scheduler_count() return, as in a loop over schedulers.
TEST(MultiScheduler, PlacementTakesAnIndexOfAnyIntegerType) {
  run_checked(
      [] {
        for (std::size_t i = 0; i < weft::this_fiber::scheduler_count(); ++i)
          EXPECT_EQ(weft::spawn({.on = i}, [] { return weft::this_fiber::scheduler_index(); }).join(), i);
        auto here = weft::spawn({.on = weft::this_fiber::scheduler_index()}, [] { return weft::this_fiber::scheduler_index(); });
        EXPECT_EQ(here.join(), weft::this_fiber::scheduler_index());
        EXPECT_EQ(weft::spawn({.on = std::uint8_t{1}}, [] { return weft::this_fiber::scheduler_index(); }).join(), 1u);
        try {
          weft::spawn({.on = SIZE_MAX}, [] {}).join();
          ADD_FAILURE() << "spawn accepted on = SIZE_MAX";
        } catch (const weft::error& e) {
          EXPECT_NE(std::string(e.what()).find("spawn_options::on is " + std::to_string(SIZE_MAX)), std::string::npos)
              << e.what();
        }
      },
      threads(2));
}

TEST(MultiScheduler, JoinAcrossSchedulersGivesResultsAndExceptions) {
  run_checked(
      [] {
        auto value = weft::spawn({.on = 1}, [] {
          weft::this_fiber::sleep_for(1ms);
          return 42;
        });
        auto failing = weft::spawn({.on = 1}, [] {
          weft::this_fiber::sleep_for(1ms);
          throw boom("from scheduler 1");
        });
        EXPECT_EQ(value.join(), 42);
        try {
          failing.join();
          ADD_FAILURE() << "no exception";
        } catch (const boom& e) {
          EXPECT_STREQ(e.what(), "from scheduler 1");
        }
        // And the other way round: a fiber of scheduler 1 joins one of scheduler 0.
        auto outer = weft::spawn({.on = 1}, [] {
          auto inner = weft::spawn({.on = 0}, [] {
            weft::this_fiber::sleep_for(1ms);
            return weft::this_fiber::scheduler_index();
          });
          return inner.join() + 10 * weft::this_fiber::scheduler_index();
        });
        EXPECT_EQ(outer.join(), 10u);
      },
      threads(2));
}

TEST(MultiScheduler, WaitWithDeadlineAndManyWaitersAcrossSchedulers) {
  run_checked(
      [] {
        weft::event release;
        auto slow = weft::spawn({.on = 1}, [&release] { release.wait(); });
        EXPECT_FALSE(slow.wait_for(2ms));  // times out, and withdraws its wait
        EXPECT_FALSE(slow.wait_for(1ms));
        std::atomic<int> woken{0};
        std::vector<weft::fiber<void>> waiters;
        for (std::ptrdiff_t on : {0, 1, 2, 2})
          waiters.push_back(weft::spawn({.on = on}, [&] {
            slow.wait();
            ++woken;
          }));
        weft::this_fiber::sleep_for(2ms);
        EXPECT_EQ(woken.load(), 0);
        release.set();
        for (auto& w : waiters) w.join();
        EXPECT_EQ(woken.load(), 4);
        slow.join();
      },
      threads(3));
}

TEST(MultiScheduler, CancelReachesAFiberParkedOnAnotherScheduler) {
  run_checked(
      [] {
        auto sleeper = weft::spawn({.on = 1}, [] { weft::this_fiber::sleep_for(std::chrono::hours(1)); });
        weft::this_fiber::sleep_for(1ms);
        sleeper.cancel();
        EXPECT_THROW(sleeper.join(), weft::cancelled_error);
      },
      threads(2));
}

TEST(MultiScheduler, HandlesDroppedOnAnotherThreadDetachAndReport) {
  collect_reports reports;
  std::atomic<int> finished{0};
  run_checked(
      [&] {
        weft::event go;
        {
          auto quiet = weft::spawn({.on = 1}, [&] {
            go.wait();
            ++finished;
          });
          auto failing = weft::spawn({.on = 1}, [&] {
            go.wait();
            ++finished;
            throw boom("lost handle");
          });
          failing.detach();
        }  // `quiet`'s handle is dropped here, on scheduler 0
        auto done_first = weft::spawn({.on = 1}, [] { throw boom("done before drop"); });
        done_first.wait();
        done_first = {};  // dropped after it finished: reported from here
        go.set();
        while (finished.load() < 2) weft::this_fiber::sleep_for(1ms);
      },
      threads(2));
  EXPECT_EQ(finished.load(), 2);
  std::sort(reports.reported.begin(), reports.reported.end());
  ASSERT_EQ(reports.reported.size(), 2u);
  EXPECT_NE(reports.reported[0].find("done before drop"), std::string::npos) << reports.reported[0];
  EXPECT_NE(reports.reported[1].find("lost handle"), std::string::npos) << reports.reported[1];
}

// Unbuffered channels between fibers on two schedulers, each value answered: every
// one arrives exactly once and in order.
TEST(MultiScheduler, ChannelPingPongBetweenSchedulers) {
  run_checked(
      [] {
        weft::channel<int> ping, pong;
        auto echo = weft::spawn({.on = 1}, [&] {
          while (auto v = ping.recv()) pong.send(*v + 1);
        });
        for (int i = 0; i < round_trips; ++i) {
          ping.send(i);
          ASSERT_EQ(pong.recv(), i + 1);
        }
        ping.close();
        echo.join();
      },
      threads(2));
}

// Fan-in: producers on every scheduler, one bounded channel, consumers on two.
TEST(MultiScheduler, FanInFromEverySchedulerDeliversEachValueOnce) {
  constexpr int producers = 6, per_producer = round_trips / 10;
  run_checked(
      [] {
        weft::channel<int> ch(16);
        std::vector<weft::fiber<void>> sending;
        for (int p = 0; p < producers; ++p)
          sending.push_back(weft::spawn({.on = weft::on_any}, [&ch, p] {
            for (int i = 0; i < per_producer; ++i) ch.send(p * per_producer + i);
          }));
        std::mutex got_mutex;
        std::vector<int> got;
        std::vector<weft::fiber<void>> receiving;
        for (std::ptrdiff_t on : {0, 2})
          receiving.push_back(weft::spawn({.on = on}, [&] {
            std::vector<int> mine;
            for (int v : ch) mine.push_back(v);
            std::lock_guard lock(got_mutex);
            got.insert(got.end(), mine.begin(), mine.end());
          }));
        for (auto& s : sending) s.join();
        ch.close();
        for (auto& r : receiving) r.join();
        ASSERT_EQ(got.size(), std::size_t(producers * per_producer));
        std::sort(got.begin(), got.end());
        for (int i = 0; i < producers * per_producer; ++i) ASSERT_EQ(got[i], i);
      },
      threads(3));
}

// Cross-thread wake-ups, none lost: two fibers on two schedulers take turns through
// a pair of semaphores (every acquire parks until the other thread releases).
TEST(MultiScheduler, CrossThreadWakeUpsAreNeverLost) {
#if WEFT_TSAN
  constexpr int turns = 20'000;
#else
  constexpr int turns = 100'000;
#endif
  run_checked(
      [] {
        weft::semaphore mine(0), theirs(0);
        auto other = weft::spawn({.on = 1}, [&] {
          for (int i = 0; i < turns; ++i) {
            theirs.acquire();
            mine.release();
          }
        });
        for (int i = 0; i < turns; ++i) {
          theirs.release();
          mine.acquire();
        }
        other.join();
      },
      threads(2));
}

// A weft::mutex held across blocking calls by fibers of three schedulers.
TEST(MultiScheduler, MutexExcludesAcrossSchedulers) {
  run_checked(
      [] {
        weft::mutex m;
        long counter = 0;  // guarded by m
        std::vector<weft::fiber<void>> fs;
        for (int i = 0; i < 9; ++i)
          fs.push_back(weft::spawn({.on = weft::on_any}, [&] {
            for (int j = 0; j < 300; ++j) {
              std::lock_guard lock(m);
              const long seen = counter;
              if (j % 50 == 0) weft::this_fiber::yield();
              counter = seen + 1;
            }
          }));
        for (auto& f : fs) f.join();
        EXPECT_EQ(counter, 9 * 300);
      },
      threads(3));
}

// When main returns, the fibers of every scheduler are cancelled wherever they
// block, and run() returns only after all of them have finished.
TEST(MultiScheduler, ShutdownCancelsAndJoinsFibersOnEveryScheduler) {
  std::atomic<int> cancelled{0}, started{0};
  run_checked(
      [&] {
        // Both outlive main: its fibers are cancelled after main has returned.
        static weft::channel<int> never;
        static weft::event never_set;
        for (int i = 0; i < 12; ++i) {
          weft::spawn({.on = weft::on_any}, [&, i] {
            ++started;
            try {
              switch (i % 3) {
                case 0: weft::this_fiber::sleep_for(std::chrono::hours(1)); break;
                case 1: never_set.wait(); break;
                default: (void)never.recv(); break;
              }
            } catch (const weft::cancelled_error&) {
              ++cancelled;
              throw;
            }
          }).detach();
        }
        while (started.load() < 12) weft::this_fiber::sleep_for(1ms);
      },
      threads(3));
  EXPECT_EQ(cancelled.load(), 12);
}

// A fiber spawned onto a scheduler that is shutting down is refused, not lost.
TEST(MultiScheduler, SpawnOntoASchedulerThatShutDownIsRefused) {
  std::atomic<bool> refused{false};
  run_checked(
      [&] {
        auto late = weft::spawn({.on = 1}, [&] {
          weft::shield_scope shield;  // outlives main's return
          while (!weft::this_fiber::cancellation_requested()) weft::this_fiber::sleep_for(1ms);
          // Scheduler 0 closes once its own fibers are done; keep trying until then.
          for (int i = 0; i < 10'000 && !refused; ++i) {
            try {
              weft::spawn({.on = 0}, [] {}).detach();
              weft::this_fiber::sleep_for(1ms);
            } catch (const weft::error& e) {
              EXPECT_EQ(e.code(), weft::errc::scheduler_stopped);
              refused = true;
            }
          }
        });
        late.detach();
        weft::this_fiber::sleep_for(1ms);
      },
      threads(2));
  EXPECT_TRUE(refused.load());
}

// A plain thread posts into the runtime through this_runtime(): submits go to the
// schedulers in turn, scheduler(i) reaches one, results come back in futures.
TEST(MultiScheduler, RuntimeHandleSubmitsFromAPlainThread) {
  run_checked(
      [] {
        auto rt = weft::this_runtime();
        EXPECT_EQ(rt.size(), 3u);
        std::vector<std::size_t> where;
        std::size_t on_two = 99;
        std::thread plain([&] {
          for (int i = 0; i < 6; ++i) where.push_back(rt.submit([] { return weft::this_fiber::scheduler_index(); }).get());
          on_two = rt.scheduler(2).submit([] { return weft::this_fiber::scheduler_index(); }).get();
        });
        weft::to_thread([&] { plain.join(); });
        std::sort(where.begin(), where.end());
        EXPECT_EQ(where, (std::vector<std::size_t>{0, 0, 1, 1, 2, 2}));
        EXPECT_EQ(on_two, 2u);
        try {
          rt.scheduler(3);
          ADD_FAILURE() << "scheduler 3 of 3 accepted";
        } catch (const weft::error& e) {
          EXPECT_EQ(e.code(), weft::errc::invalid_argument);
        }
      },
      threads(3));
  // A runtime of one scheduler has one.
  run_checked([] { EXPECT_EQ(weft::this_runtime().size(), 1u); });
}

// Fibers do not move between threads: a thread_local read before and after any
// number of blocking calls is the same variable, on the fiber's own scheduler's
// thread (the documented rule for user code).
TEST(MultiScheduler, AFiberStaysOnItsThreadAcrossBlockingCalls) {
  static thread_local int marker = 0;
  run_checked(
      [] {
        std::vector<weft::fiber<bool>> fs;
        weft::channel<int> ch;
        for (int i = 0; i < 6; ++i)
          fs.push_back(weft::spawn({.on = weft::on_any}, [&ch] {
            int* mine = &marker;
            const auto thread = std::this_thread::get_id();
            const std::size_t index = weft::this_fiber::scheduler_index();
            for (int round = 0; round < 50; ++round) {
              weft::this_fiber::sleep_for(std::chrono::microseconds(100));
              weft::this_fiber::yield();
              ch.send(round);  // a hand-off to main, on scheduler 0
              if (&marker != mine || std::this_thread::get_id() != thread ||
                  weft::this_fiber::scheduler_index() != index)
                return false;
            }
            return true;
          }));
        for (int i = 0; i < 6 * 50; ++i) (void)ch.recv();
        for (auto& f : fs) EXPECT_TRUE(f.join());
      },
      threads(3));
}
