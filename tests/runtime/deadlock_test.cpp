// run()'s deadlock report: only when certain, and naming who waits in what.
//
// A deadlock is certain only when no other thread exists (see run.hpp). A test that
// could hang holds a hang_guard, which is a thread; so the tests that expect a
// report run in a forked child ("fast" death-test style: the child has only the
// forking thread), and the guard in the parent bounds the wait for it.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include <weft/runtime/detail/blocking_pool.hpp>

#include "../weft_test.hpp"

using namespace weft_test;

namespace {

// CPU time (user + system) the calling thread has used.
std::chrono::microseconds thread_cpu_time() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  return std::chrono::seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         std::chrono::microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

// expect_deadlock_report runs `main` under weft::run in this (child) process and
// exits 0 if run() threw errc::would_deadlock, printing what() for the matcher.
template <class F>
[[noreturn]] void expect_deadlock_report(F main, weft::run_options options = {}) {
  try {
    weft::run(options, main);
    std::fprintf(stderr, "run returned normally\n");
    std::exit(1);
  } catch (const weft::error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    std::exit(e.code() == weft::errc::would_deadlock ? 0 : 2);
  }
}

}  // namespace

// /work/shared/cases/thread_sets_event.cpp: a plain std::thread sets the event a
// fiber waits on. Not a deadlock: the scheduler sleeps until the thread's wake-up
// arrives through its eventfd, without spinning.
TEST(Deadlock, EventSetByPlainThreadWakesFiberInsteadOfDeadlock) {
  hang_guard guard;
  bool woken = false;
  std::chrono::microseconds cpu{};
  EXPECT_NO_THROW(run_checked([&] {
    auto done = std::make_shared<weft::event>();
    std::thread([done] {
      std::this_thread::sleep_for(300ms);
      done->set();
    }).detach();
    const auto cpu_before = thread_cpu_time();
    done->wait();
    cpu = thread_cpu_time() - cpu_before;
    woken = true;
  }));
  EXPECT_TRUE(woken);
  // No busy wait: the 300 ms passed asleep in epoll_wait (a generous bound).
  EXPECT_LT(cpu, 100ms);
}

// The same through a channel: a thread's try_send wakes the receiving fiber.
TEST(Deadlock, ChannelFedByPlainThreadIsNotADeadlock) {
  hang_guard guard;
  const int got = run_checked([] {
    auto ch = std::make_shared<weft::channel<int>>(1);
    std::thread([ch] {
      std::this_thread::sleep_for(50ms);
      ch->try_send(42);
    }).detach();
    return *ch->recv();
  });
  EXPECT_EQ(got, 42);
}

// Two fibers joining each other, main waiting on an event nobody holds, one thread:
// a real deadlock, reported with every parked fiber and what it waits in.
TEST(DeadlockDeathTest, JoinCycleIsReportedWithFibersAndCalls) {
  hang_guard guard;
  GTEST_FLAG_SET(death_test_style, "fast");
  // Fibers are listed newest first.
  EXPECT_EXIT(expect_deadlock_report([] {
                weft::fiber<void> a, b;
                a = weft::spawn({.name = "a"}, [&] { b.join(); });
                b = weft::spawn({.name = "b"}, [&] { a.join(); });
                weft::event never;
                never.wait();
              }),
              testing::ExitedWithCode(0),
              "^weft::run: every fiber is blocked and nothing can wake them: "
              "fiber [0-9]+ \"b\": weft::fiber::join of fiber [0-9]+ \"a\"; "
              "fiber [0-9]+ \"a\": weft::fiber::join of fiber [0-9]+ \"b\"; "
              "fiber [0-9]+ \\(main\\): weft::event::wait\n");
}

TEST(DeadlockDeathTest, MainJoiningAFiberStuckOnAChannelIsReported) {
  hang_guard guard;
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_EXIT(expect_deadlock_report([] {
                weft::channel<int> ch;  // unbuffered, nobody receives
                auto producer = weft::spawn({.name = "producer"}, [&] { ch.send(1); });
                producer.join();
              }),
              testing::ExitedWithCode(0),
              "fiber [0-9]+ \"producer\": weft::channel::send; "
              "fiber [0-9]+ \\(main\\): weft::fiber::join of fiber [0-9]+ \"producer\"\n");
}

// A thread that has come and gone before the wait cannot wake anyone: the deadlock
// is still reported.
TEST(DeadlockDeathTest, ThreadJoinedBeforeTheWaitDoesNotHideDeadlock) {
#if WEFT_TSAN
  GTEST_SKIP() << "TSan cannot start a thread in a child forked from a threaded process (die_after_fork)";
#endif
  hang_guard guard;
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_EXIT(
      {
        std::thread([] {}).join();
        expect_deadlock_report([] {
          weft::event never;
          never.wait();
        });
      },
      testing::ExitedWithCode(0), "fiber [0-9]+ \\(main\\): weft::event::wait");
}

// A thread that holds the event but exits without setting it: once it is gone the
// deadlock is certain, and reported.
TEST(DeadlockDeathTest, ReportedOnceTheOnlyOtherThreadHasExited) {
#if WEFT_TSAN
  GTEST_SKIP() << "TSan cannot start a thread in a child forked from a threaded process (die_after_fork)";
#endif
  hang_guard guard;
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_EXIT(expect_deadlock_report([] {
                auto ev = std::make_shared<weft::event>();
                std::thread([ev] { std::this_thread::sleep_for(50ms); }).detach();
                ev->wait();
              }),
              testing::ExitedWithCode(0), "fiber [0-9]+ \\(main\\): weft::event::wait");
}

// The to_thread pool keeps an idle thread for 10 s after its last job. It runs
// nothing of the program's, so it does not hold the report back: the report comes
// while the thread is still there (it used to wait until it had left).
template <class F>
[[noreturn]] void expect_report_while_pool_thread_idles(F main, weft::run_options options = {}) {
  try {
    weft::run(options, main);
    std::fprintf(stderr, "run returned normally\n");
    std::exit(1);
  } catch (const weft::error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    if (e.code() != weft::errc::would_deadlock) std::exit(2);
    if (weft::detail::blocking_pool_threads() == 0) {
      std::fprintf(stderr, "reported only after the pool's thread had left\n");
      std::exit(3);
    }
    std::exit(0);
  }
}

TEST(DeadlockDeathTest, IdleToThreadPoolThreadDoesNotHoldOffTheReport) {
#if WEFT_TSAN
  GTEST_SKIP() << "TSan cannot start a thread in a child forked from a threaded process (die_after_fork)";
#endif
  hang_guard guard;
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_EXIT(expect_report_while_pool_thread_idles([] {
                EXPECT_EQ(weft::to_thread([] { return 7; }), 7);
                weft::event never;
                never.wait();
              }),
              testing::ExitedWithCode(0), "fiber [0-9]+ \\(main\\): weft::event::wait");
}

TEST(DeadlockDeathTest, IdleToThreadPoolThreadDoesNotHoldOffTheReportAcrossSchedulers) {
#if WEFT_TSAN
  GTEST_SKIP() << "TSan cannot start a thread in a child forked from a threaded process (die_after_fork)";
#endif
  hang_guard guard;
  GTEST_FLAG_SET(death_test_style, "fast");
  weft::run_options two;
  two.threads = 2;
  EXPECT_EXIT(expect_report_while_pool_thread_idles(
                  [] {
                    weft::event never;
                    auto waiter = weft::spawn({.name = "waiter", .on = 1}, [&] {
                      EXPECT_EQ(weft::to_thread([] { return 7; }), 7);
                      never.wait();
                    });
                    waiter.join();
                  },
                  two),
              testing::ExitedWithCode(0), "fiber [0-9]+ \"waiter\": weft::event::wait");
}

// Several schedulers: a deadlock is certain when every member is quiet (nothing
// runnable, no timer, no fd, no request in flight) and the process has no thread but
// them. The report names the parked fibers of every member. Every member cancels
// its fibers before main is cancelled: the waiter on member 1, parked on an event
// main's unwinding destroys, ends cancelled (it used to end "destroyed while this
// fiber waited on it", reported on stderr as never retrieved).
TEST(DeadlockDeathTest, DeadlockAcrossSchedulersIsReported) {
#if WEFT_TSAN
  GTEST_SKIP() << "TSan cannot start a thread in a child forked from a threaded process (die_after_fork)";
#endif
  hang_guard guard;
  GTEST_FLAG_SET(death_test_style, "fast");
  weft::run_options two;
  two.threads = 2;
  EXPECT_EXIT(expect_deadlock_report(
                  [] {
                    weft::event never;
                    auto waiter = weft::spawn({.name = "waiter", .on = 1}, [&] { never.wait(); });
                    waiter.join();
                  },
                  two),
              testing::ExitedWithCode(0),
              // (anchored at its start: nothing, such as a "never retrieved" report, comes
              // before it; after it, LeakSanitizer may add a line of its own)
              // the join names its target on the other scheduler, as on one
              "^weft::run: every fiber is blocked and nothing can wake them: .*"
              "fiber [0-9]+ \\(main\\): weft::fiber::join of fiber [0-9]+ \"waiter\".*"
              "fiber [0-9]+ \"waiter\": weft::event::wait\n");
}

// The same shape is no deadlock while a timer of another member or a plain thread
// can still end it.
TEST(Deadlock, SeveralSchedulersWaitForATimerOrAThreadInsteadOfReporting) {
  hang_guard guard;
  weft::run_options two;
  two.threads = 2;
  EXPECT_NO_THROW(run_checked(
      [] {
        weft::event later;
        auto setter = weft::spawn({.on = 1}, [&] {
          weft::this_fiber::sleep_for(50ms);
          later.set();
        });
        later.wait();
        setter.join();
        auto from_thread = std::make_shared<weft::event>();
        std::thread([from_thread] {
          std::this_thread::sleep_for(50ms);
          from_thread->set();
        }).detach();
        weft::spawn({.on = 1}, [from_thread] { from_thread->wait(); }).join();
      },
      two));
}
