// Deadline scopes (with_timeout, deadline_scope) and shields: every kind of blocking
// call ends at the scope's deadline with timeout_error and releases what it held;
// cancellation stays distinct; shields defer it.
#include <unistd.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <weft/runtime/scope.hpp>
#include "../net/net_test.hpp"

namespace {

using namespace weft_test;
using weft::timeout_error;

TEST(Scope, WithTimeoutEndsASlowCallAndPassesAFastOne) {
  run_checked([] {
    const auto start = weft::clock::now();
    EXPECT_THROW(weft::with_timeout(20ms, [] { weft::this_fiber::sleep_for(10s); }), timeout_error);
    EXPECT_GE(weft::clock::now() - start, 20ms);
    EXPECT_LT(weft::clock::now() - start, 5s);  // hang guard
    EXPECT_EQ(weft::wait_for(10s, [] { return 42; }), 42);
    // The scope is gone: sleeping past its deadline is fine now.
    weft::this_fiber::sleep_for(25ms);
  });
}

TEST(Scope, NestedScopesTakeTheEarliestDeadline) {
  run_checked([] {
    // Outer first: the inner, longer scope cannot extend it.
    EXPECT_THROW(weft::with_timeout(20ms, [] {
                   weft::with_timeout(10s, [] { weft::this_fiber::sleep_for(10s); });
                 }),
                 timeout_error);
    // Inner first: caught inside, the outer scope goes on.
    int outer_done = weft::with_timeout(10s, [] {
      EXPECT_THROW(weft::with_timeout(10ms, [] { weft::this_fiber::sleep_for(10s); }), timeout_error);
      weft::this_fiber::sleep_for(5ms);
      return 1;
    });
    EXPECT_EQ(outer_done, 1);
  });
}

TEST(Scope, ExpiredScopeFailsEveryLaterCallInsideIt) {
  run_checked([] {
    weft::deadline_scope scope(10ms);
    EXPECT_THROW(weft::this_fiber::sleep_for(1s), timeout_error);
    EXPECT_TRUE(scope.expired());
    weft::channel<int> ch(1);
    EXPECT_THROW(ch.recv(), timeout_error);
    EXPECT_THROW(weft::this_fiber::check_cancelled(), timeout_error);
    EXPECT_EQ(ch.try_send(1), weft::channel_status::ok);  // non-blocking calls still work
  });
}

// Inside with_timeout its expiry is a cancelled_error (asyncio.timeout, Trio's
// fail_after), so a retry loop's `catch (timeout_error&)` around each attempt
// cannot swallow the overall budget's: breaker case scope_retry_outer_in_attempt,
// whose loop never ended when the budget expired during an attempt.
TEST(Scope, RetryLoopEndsWhenItsBudgetExpiresDuringAnAttempt) {
  hang_guard guard;
  run_checked([] {
    int attempts = 0;
    int timed_out_attempts = 0;
    const auto start = weft::clock::now();
    EXPECT_THROW(weft::with_timeout(45ms,
                                    [&] {
                                      for (; attempts < 50; ++attempts) {
                                        try {
                                          weft::with_timeout(10ms, [] { weft::this_fiber::sleep_for(1s); });
                                        } catch (const timeout_error&) {
                                          ++timed_out_attempts;
                                          weft::this_fiber::sleep_for(30ms);  // back-off
                                        }
                                      }
                                    }),
                 timeout_error);
    EXPECT_EQ(attempts, 1);  // the first back-off ends at 40 ms, the second attempt at 45 ms
    EXPECT_EQ(timed_out_attempts, 1);
    EXPECT_LT(weft::clock::now() - start, 5s);  // hang guard
  });
}

// Nested, the outermost expired scope decides: a deadline_scope object (no exit to
// turn anything at) makes the call throw timeout_error, which an inner with_timeout
// lets through; a with_timeout around an expired deadline_scope reaches the code
// inside as a cancellation and leaves as timeout_error.
TEST(Scope, OutermostExpiredScopeDecidesWhatTheCallThrows) {
  hang_guard guard;
  run_checked([] {
    {
      weft::deadline_scope outer(5ms);
      EXPECT_THROW(weft::with_timeout(10s, [] { weft::this_fiber::sleep_for(1s); }), timeout_error);
    }
    bool cancelled_inside = false;
    EXPECT_THROW(weft::with_timeout(5ms,
                                    [&] {
                                      weft::deadline_scope inner(5ms);
                                      try {
                                        weft::this_fiber::sleep_for(1s);
                                      } catch (const weft::cancelled_error&) {
                                        cancelled_inside = true;
                                        throw;
                                      }
                                    }),
                 timeout_error);
    EXPECT_TRUE(cancelled_inside);
    // The inner one alone expired: it is the inner call's timeout_error, which the
    // outer with_timeout lets through unchanged.
    EXPECT_THROW(weft::with_timeout(10s,
                                    [] {
                                      weft::deadline_scope inner(5ms);
                                      weft::this_fiber::sleep_for(1s);
                                    }),
                 timeout_error);
  });
}

// A scope past its deadline expires at a call whose own deadline is past or "due at
// once" too: a polling loop of sleep_for(0) inside with_timeout used to spin on.
TEST(Scope, ExpiredScopeEndsCallsThatAreDueAtOnce) {
  hang_guard guard;
  run_checked([] {
    const auto expired_at = [](auto call) {
      try {
        weft::deadline_scope scope(weft::clock::now() - 1s);
        call();
      } catch (const timeout_error&) {
        return true;
      }
      return false;
    };
    EXPECT_TRUE(expired_at([] { weft::this_fiber::sleep_for(0ms); }));
    EXPECT_TRUE(expired_at([] { weft::this_fiber::sleep_for(-1ms); }));
    EXPECT_TRUE(expired_at([] { weft::this_fiber::sleep_until(weft::time_point::min()); }));
    EXPECT_TRUE(expired_at([] { weft::this_fiber::sleep_until(weft::clock::now() - 1h); }));
    EXPECT_TRUE(expired_at([] {
      weft::semaphore sem(0);
      (void)sem.acquire_for(0ms);
    }));
    std::size_t polls = 0;
    EXPECT_THROW(weft::with_timeout(5ms,
                                    [&] {
                                      for (; polls < 100'000'000; ++polls) weft::this_fiber::sleep_for(0ms);
                                    }),
                 timeout_error);
    EXPECT_LT(polls, 100'000'000u);
    // Not expired: a zero sleep inside a scope just lets the others run.
    weft::with_timeout(10s, [] { weft::this_fiber::sleep_for(0ms); });
  });
}

TEST(Scope, OwnShorterDeadlineStillReportsAsAValue) {
  run_checked([] {
    weft::with_timeout(10s, [] {
      weft::channel<int> ch;
      EXPECT_EQ(ch.recv_for(5ms).status, weft::channel_status::timeout);
      weft::semaphore sem(0);
      EXPECT_FALSE(sem.acquire_for(5ms));
    });
  });
}

TEST(Scope, EveryBlockingCallEndsAndReleasesWhatItHeld) {
  run_checked([] {
    weft::channel<int> ch;
    EXPECT_THROW(weft::with_timeout(5ms, [&] { ch.recv(); }), timeout_error);
    EXPECT_THROW(weft::with_timeout(5ms, [&] { ch.send(1); }), timeout_error);

    weft::semaphore sem(1);
    sem.acquire();
    EXPECT_THROW(weft::with_timeout(5ms, [&] { sem.acquire(); }), timeout_error);
    sem.release();
    EXPECT_TRUE(sem.try_acquire());  // the timed-out waiter took nothing
    sem.release();

    weft::mutex m;
    auto holder = weft::spawn([&] {
      std::lock_guard lock(m);
      weft::this_fiber::sleep_for(50ms);
    });
    weft::this_fiber::yield();
    EXPECT_THROW(weft::with_timeout(5ms, [&] { std::lock_guard lock(m); }), timeout_error);
    holder.join();
    EXPECT_TRUE(m.try_lock());  // not left locked by the waiter that gave up
    m.unlock();

    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_for(10s); });
    EXPECT_THROW(weft::with_timeout(5ms, [&] { sleeper.join(); }), timeout_error);
    sleeper.cancel();
    EXPECT_THROW(sleeper.join(), weft::cancelled_error);

    weft::channel<int> a, b;
    EXPECT_THROW(weft::with_timeout(5ms, [&] {
                   weft::select(weft::on_recv(a, [](std::optional<int>) {}),
                                weft::on_recv(b, [](std::optional<int>) {}));
                 }),
                 timeout_error);

    auto [x, y] = weft::net::unix_stream::pair();
    char buf[4];
    EXPECT_THROW(weft::with_timeout(5ms, [&, &x = x] { x.read_some(buf); }), timeout_error);
    y.write_all("data");  // nothing was consumed by the read that timed out
    EXPECT_EQ(x.read_exact(buf), 4u);

    weft::event ev;
    EXPECT_THROW(weft::with_timeout(5ms, [&] { ev.wait(); }), timeout_error);
    weft::condition_variable cv;
    std::unique_lock lock(m);
    EXPECT_THROW(weft::with_timeout(5ms, [&] { cv.wait(lock); }), timeout_error);
    EXPECT_TRUE(lock.owns_lock());  // re-taken despite the expired scope
  });
}

TEST(Scope, CancellationStaysDistinctFromTimeout) {
  run_checked([] {
    auto f = weft::spawn([] { weft::with_timeout(10s, [] { weft::this_fiber::sleep_for(10s); }); });
    weft::this_fiber::sleep_for(2ms);
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
  });
}

TEST(Shield, DefersCancellationToItsEnd) {
  run_checked([] {
    bool finished = false;
    auto f = weft::spawn([&] {
      weft::shield([&] {
        weft::this_fiber::sleep_for(20ms);  // not interrupted
        EXPECT_TRUE(weft::this_fiber::cancellation_requested());
        finished = true;
      });
      ADD_FAILURE() << "shield returned although a cancellation was pending";
    });
    weft::this_fiber::sleep_for(2ms);
    f.cancel();
    try {
      f.join();
      ADD_FAILURE() << "no cancellation";
    } catch (const weft::cancelled_error& e) {  // names the call the user made
      EXPECT_EQ(std::string(e.what()).rfind("weft::shield", 0), 0u) << e.what();
    }
    EXPECT_TRUE(finished);

    // Without a cancellation, shield returns fn's value.
    EXPECT_EQ(weft::shield([] { return 7; }), 7);
  });
}

TEST(Shield, OuterScopesDoNotApplyInnerOnesDo) {
  run_checked([] {
    bool inner_done = false;
    weft::with_timeout(10s, [&] {
      weft::deadline_scope outer(5ms);
      // The shielded part runs past the outer deadline unharmed; the expiry is
      // delivered when it ends, like a cancellation.
      EXPECT_THROW(weft::shield([&] {
                     weft::this_fiber::sleep_for(20ms);
                     EXPECT_THROW(weft::with_timeout(5ms, [] { weft::this_fiber::sleep_for(10s); }),
                                  timeout_error);
                     inner_done = true;
                   }),
                   timeout_error);
      EXPECT_THROW(weft::this_fiber::sleep_for(1s), timeout_error);  // outside the shield again
    });
    EXPECT_TRUE(inner_done);
  });
}

// ---- cleanup while unwinding from a timeout or a cancellation ---------------------------
// (runtime/scope.hpp: the scopes a fiber is in when a timeout_error or cancelled_error
// is thrown do not interrupt it again while that exception lives.)

// Field case cleanup_blocks_under_timeout (issue 12): RAII cleanup that sleeps while
// with_timeout unwinds called std::terminate (its sleep threw timeout_error again).
TEST(ScopeCleanup, DestructorThatSleepsWhileWithTimeoutUnwinds) {
  hang_guard guard;
  run_checked([] {
    std::vector<std::string> trace;
    weft::duration cleanup_slept{};
    struct goodbye {
      std::vector<std::string>& trace;
      weft::duration& slept;
      ~goodbye() {
        const auto start = weft::clock::now();
        weft::this_fiber::sleep_for(10ms);
        slept = weft::clock::now() - start;
        trace.push_back("cleanup: done");
      }
    };
    try {
      weft::with_timeout(20ms, [&] {
        goodbye g{trace, cleanup_slept};
        weft::this_fiber::sleep_for(10s);
      });
      trace.push_back("returned");
    } catch (const timeout_error&) {
      trace.push_back("with_timeout: timeout_error");
    }
    EXPECT_EQ(trace, (std::vector<std::string>{"cleanup: done", "with_timeout: timeout_error"}));
    EXPECT_GE(cleanup_slept, 10ms) << "the cleanup's sleep was cut short";
  });
}

// A cancelled fiber's destructors may receive, wait and sleep, also inside a deadline
// scope that expires while they do; join reports the cancellation, not a timeout.
TEST(ScopeCleanup, DestructorThatReceivesAndWaitsWhileACancelUnwinds) {
  hang_guard guard;
  run_checked([] {
    struct drain {
      weft::channel<int>& ch;
      weft::event& ev;
      std::optional<int>& received;
      bool& event_seen;
      ~drain() {
        received = ch.recv_for(5s).value;
        event_seen = ev.wait_for(5s);
        weft::this_fiber::sleep_for(30ms);  // outlives the 20 ms scope around it
      }
    };
    for (const bool in_scope : {false, true}) {
      SCOPED_TRACE(in_scope ? "inside with_timeout" : "outside any scope");
      weft::channel<int> ch;
      weft::event ev;
      std::optional<int> received;
      bool event_seen = false;
      auto f = weft::spawn([&] {
        auto body = [&] {
          drain d{ch, ev, received, event_seen};
          weft::event never;
          never.wait();
        };
        if (in_scope)
          weft::with_timeout(20ms, body);
        else
          body();
      });
      weft::this_fiber::sleep_for(2ms);
      f.cancel();
      weft::this_fiber::sleep_for(2ms);
      ch.send(42);
      ev.set();
      EXPECT_THROW(f.join(), weft::cancelled_error);
      EXPECT_EQ(received, 42);
      EXPECT_TRUE(event_seen);
    }
  });
}

// A catch block is cleanup too: it may block, then rethrow. Inside with_timeout the
// expiry is a cancelled_error; the caller gets timeout_error naming the same call.
TEST(ScopeCleanup, CatchBlockThatBlocksThenRethrows) {
  hang_guard guard;
  run_checked([] {
    bool handler_finished = false;
    std::string inside;
    std::string outside;
    weft::channel<int> ch(1);
    try {
      weft::with_timeout(10ms, [&] {
        try {
          weft::this_fiber::sleep_for(10s);
        } catch (const weft::cancelled_error& e) {
          inside = e.what();
          weft::this_fiber::sleep_for(15ms);
          EXPECT_EQ(ch.send_for(1, 1s), weft::channel_status::ok);
          EXPECT_EQ(ch.recv(), 1);
          handler_finished = true;
          throw;
        }
      });
    } catch (const timeout_error& e) {
      outside = e.what();
    }
    EXPECT_TRUE(handler_finished);
    EXPECT_EQ(inside, "weft::this_fiber::sleep_for: the deadline of an enclosing weft::with_timeout passed");
    EXPECT_EQ(outside, "weft::this_fiber::sleep_for: deadline passed");
  });
}

// Inside the cleanup, scopes opened by the cleanup itself still time out (a way to
// bound it) and a call's own deadline still ends the call. A new cancel() waits
// while the fiber unwinds (a throw out of the destructor would be std::terminate;
// breaker: catching it there lost it): the destructor's wait runs to its own
// deadline, and the cancellation comes out of with_timeout instead of its timeout.
TEST(ScopeCleanup, NestedScopesAndOwnDeadlinesCountANewCancelWaitsForTheUnwinding) {
  hang_guard guard;
  run_checked([] {
    bool inner_timed_out = false, past_scope_timed_out = false, own_deadline = false;
    bool cancel_waited = false;
    weft::event cleanup_waiting;
    struct cleanup {
      bool& inner_timed_out;
      bool& past_scope_timed_out;
      bool& own_deadline;
      bool& cancel_waited;
      weft::event& waiting;
      ~cleanup() {
        try {
          weft::with_timeout(5ms, [] { weft::this_fiber::sleep_for(10s); });
        } catch (const timeout_error&) {
          inner_timed_out = true;
        }
        try {
          weft::with_deadline(weft::time_point::min(), [] { weft::this_fiber::sleep_for(10s); });
        } catch (const timeout_error&) {
          past_scope_timed_out = true;
        }
        weft::channel<int> idle;
        own_deadline = idle.recv_for(5ms).status == weft::channel_status::timeout;
        waiting.set();
        cancel_waited = idle.recv_for(30ms).status == weft::channel_status::timeout;  // cancelled meanwhile
        cancel_waited = cancel_waited && weft::this_fiber::cancellation_requested();
      }
    };
    auto f = weft::spawn([&] {
      weft::with_timeout(5ms, [&] {
        cleanup c{inner_timed_out, past_scope_timed_out, own_deadline, cancel_waited, cleanup_waiting};
        weft::this_fiber::sleep_for(10s);
      });
      ADD_FAILURE() << "with_timeout returned";
    });
    cleanup_waiting.wait();
    f.cancel();  // a new cancellation, while the timeout unwinds
    EXPECT_THROW(f.join(), weft::cancelled_error);  // not turned into a timeout
    EXPECT_TRUE(inner_timed_out);
    EXPECT_TRUE(past_scope_timed_out);
    EXPECT_TRUE(own_deadline);
    EXPECT_TRUE(cancel_waited);
  });
}

// The mask lasts as long as the exception: swallowed, the expired scope fails the
// next call again (Trio's level-triggered scopes); and one fiber's cleanup leaves the
// scopes of the others alone.
TEST(ScopeCleanup, MaskEndsWithTheExceptionAndStaysInItsFiber) {
  hang_guard guard;
  run_checked([] {
    weft::event in_cleanup, other_done;
    auto slow_cleanup = weft::spawn([&] {
      struct slow {
        weft::event& in_cleanup;
        weft::event& other_done;
        ~slow() {
          in_cleanup.set();
          EXPECT_TRUE(other_done.wait_for(5s));
        }
      };
      EXPECT_THROW(weft::with_timeout(2ms, [&] {
                     slow s{in_cleanup, other_done};
                     weft::this_fiber::sleep_for(10s);
                   }),
                   timeout_error);
    });
    in_cleanup.wait();
    // Another fiber's scope, while the first is parked in its cleanup.
    EXPECT_THROW(weft::with_timeout(5ms, [] { weft::this_fiber::sleep_for(10s); }), timeout_error);
    other_done.set();
    slow_cleanup.join();

    weft::deadline_scope scope(5ms);
    try {
      weft::this_fiber::sleep_for(10s);
    } catch (const timeout_error&) {
      weft::this_fiber::sleep_for(1ms);  // handling it: not interrupted
    }
    EXPECT_THROW(weft::this_fiber::sleep_for(10s), timeout_error);  // handled: fails again
    EXPECT_THROW(weft::this_fiber::check_cancelled(), timeout_error);
  });
}

// breaker cases scope_mask_retry / scope_mask_collector: a retry loop with a
// per-attempt timeout inside an overall budget. The budget, not yet expired when an
// attempt timed out, still ends the back-off: in the catch block, and after it
// while the last error is kept in an exception_ptr (it used to stay quiet, and the
// loop ran all its attempts, ~1 s against a 100 ms budget).
TEST(ScopeCleanup, OuterScopeExpiringWhileAnInnerTimeoutIsHandledStillInterrupts) {
  hang_guard guard;
  run_checked([] {
    for (const bool back_off_in_catch : {true, false}) {
      SCOPED_TRACE(back_off_in_catch ? "back-off in the catch block" : "back-off after it, error kept");
      int attempts = 0;
      bool budget_ended_it = false;
      try {
        weft::with_timeout(100ms, [&] {
          std::exception_ptr last;
          for (int i = 0; i < 3; ++i) {
            ++attempts;
            try {
              weft::with_timeout(20ms, [] { weft::this_fiber::sleep_for(10s); });
              return;
            } catch (const timeout_error&) {
              if (back_off_in_catch)
                weft::this_fiber::sleep_for(10s);
              else
                last = std::current_exception();
            }
            if (!back_off_in_catch) weft::this_fiber::sleep_for(10s);
          }
        });
      } catch (const timeout_error&) {
        budget_ended_it = true;
      }
      EXPECT_TRUE(budget_ended_it);
      EXPECT_EQ(attempts, 1);
    }
  });
}

// While an inner timeout unwinds through a destructor that blocks, an outer scope
// that expires meanwhile stays quiet (a throw there would end the program); the
// inner timeout goes on, and the outer one fails the next call after it.
TEST(ScopeCleanup, OuterScopeExpiringDuringUnwindingWaitsForTheDestructor) {
  hang_guard guard;
  run_checked([] {
    bool cleanup_done = false;
    bool next_call_timed_out = false;
    struct slow_goodbye {
      bool& done;
      ~slow_goodbye() {
        weft::this_fiber::sleep_for(40ms);  // the outer 20 ms scope expires meanwhile
        done = true;
      }
    };
    try {
      weft::with_timeout(20ms, [&] {
        try {
          weft::with_timeout(5ms, [&] {
            slow_goodbye g{cleanup_done};
            weft::this_fiber::sleep_for(10s);
          });
        } catch (const timeout_error&) {
        }
        try {
          weft::this_fiber::sleep_for(10s);
        } catch (const weft::cancelled_error&) {  // the outer with_timeout's expiry, inside it
          next_call_timed_out = true;
          throw;
        }
      });
    } catch (const timeout_error&) {
    }
    EXPECT_TRUE(cleanup_done);
    EXPECT_TRUE(next_call_timed_out);
  });
}

// breaker cases scope_translated_unwind / scope_plain_unwind: a destructor that
// blocks while the program's own exception unwinds past an expired scope (a catch
// block turned the timeout into another exception; or the scope expired and then
// the code threw) runs to completion, and that exception reaches the caller (a new
// timeout thrown there used to end the program in std::terminate). A scope the
// destructor opens itself still times out.
TEST(ScopeCleanup, DestructorThatBlocksWhileTheProgramsOwnExceptionUnwindsPastAnExpiredScope) {
  hang_guard guard;
  run_checked([] {
    struct sleeper {
      int& finished;
      bool& own_scope_timed_out;
      ~sleeper() {
        weft::this_fiber::sleep_for(5ms);
        try {
          weft::with_timeout(1ms, [] { weft::this_fiber::sleep_for(10s); });
        } catch (const timeout_error&) {
          own_scope_timed_out = true;
        }
        ++finished;
      }
    };
    for (const bool translated : {true, false}) {
      SCOPED_TRACE(translated ? "timeout translated in a catch block" : "thrown after the scope expired");
      int finished = 0;
      bool own_scope_timed_out = false;
      std::string caught;
      try {
        weft::with_timeout(10ms, [&] {
          sleeper s{finished, own_scope_timed_out};
          if (translated) {
            try {
              weft::this_fiber::sleep_for(10s);
            } catch (const weft::cancelled_error&) {  // the expiry, inside with_timeout
              throw std::runtime_error("translated");
            }
          }
          std::this_thread::sleep_for(15ms);  // the scope expires; no blocking call sees it
          throw std::runtime_error("thrown");
        });
      } catch (const std::runtime_error& e) {
        caught = e.what();
      }
      EXPECT_EQ(caught, translated ? "translated" : "thrown");
      EXPECT_EQ(finished, 1);
      EXPECT_TRUE(own_scope_timed_out);
    }
  });
}

// Breaker cases: retry loops that catch more than they should. A scope's expiry
// keeps catch blocks quiet the first time only: once one was swallowed, the next
// one interrupts a handler that blocks, so the loop still ends at the budget.
TEST(ScopeCleanup, RetryLoopThatCatchesEverythingStillEndsAtTheBudget) {
  hang_guard guard;
  run_checked([] {
    for (const bool object_budget : {false, true}) {
      SCOPED_TRACE(object_budget ? "deadline_scope budget, with_timeout attempts" : "with_timeout budget, catch std::exception");
      int attempts = 0;
      auto retry = [&] {
        for (; attempts < 1000; ++attempts) {
          try {
            if (object_budget) weft::with_timeout(20ms, [] { weft::this_fiber::sleep_for(1s); });
            weft::this_fiber::sleep_for(20ms);
            throw std::runtime_error("503 from upstream");
          } catch (const std::exception&) {  // takes the budget's expiry too
            weft::this_fiber::sleep_for(10ms);  // back-off, in the handler
          }
        }
      };
      if (object_budget) {
        EXPECT_THROW(
            {
              weft::deadline_scope budget(50ms);
              retry();
            },
            timeout_error);
      } else {
        EXPECT_THROW(weft::with_timeout(50ms, retry), timeout_error);
      }
      EXPECT_LT(attempts, 10);
    }
  });
}

// An expiry kept in an exception_ptr (a retry loop's last error) masks nothing once
// its catch block is left: the next attempt's wait ends at once (it used to wait for
// good).
TEST(ScopeCleanup, KeptExpiryDoesNotQuietTheScopeOutsideItsHandler) {
  hang_guard guard;
  run_checked([] {
    weft::channel<int> replies;  // never answers
    int attempts = 0;
    EXPECT_THROW(weft::with_timeout(20ms,
                                    [&] {
                                      std::exception_ptr last;
                                      for (; attempts < 3; ++attempts) {
                                        try {
                                          return replies.recv();
                                        } catch (...) {
                                          last = std::current_exception();
                                        }
                                      }
                                      std::rethrow_exception(last);
                                    }),
                 timeout_error);
    EXPECT_EQ(attempts, 3);
  });
}

// A cancel() that comes while a catch block cleans up after it, and the scope expires
// during that cleanup: the cancellation is not lost in the timeout; with_timeout
// lets it out as cancelled_error (asyncio.timeout does the same).
TEST(ScopeCleanup, CancelOutlivesAnExpiryDuringItsCleanup) {
  hang_guard guard;
  run_checked([] {
    weft::event waiting;
    auto f = weft::spawn([&] {
      try {
        weft::with_timeout(30ms, [&] {
          try {
            waiting.set();
            weft::this_fiber::sleep_for(1h);
          } catch (const weft::cancelled_error&) {
            weft::this_fiber::sleep_for(100ms);  // cleanup; the scope expires meanwhile
            throw;
          }
        });
      } catch (const timeout_error&) {
        ADD_FAILURE() << "the cancellation became a timeout";
      }
      weft::this_fiber::sleep_for(1h);  // a retry would wait here: must not
    });
    waiting.wait();  // it is about to park, well before its 30 ms
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
  });
}

// A cancel() that comes while a destructor blocks during the unwinding of an expiry
// neither ends the program (a throw out of the destructor) nor is lost (caught
// there): the destructor finishes, and the cancellation ends the fiber.
TEST(ScopeCleanup, CancelDuringUnwindingWaitsAndIsDelivered) {
  hang_guard guard;
  run_checked([] {
    bool goodbye_sent = false;
    weft::event in_goodbye;
    struct connection {
      bool& sent;
      weft::event& in_goodbye;
      ~connection() {
        in_goodbye.set();
        weft::this_fiber::sleep_for(30ms);  // a goodbye
        sent = true;
      }
    };
    int attempts = 0;
    auto f = weft::spawn([&] {
      for (; attempts < 3; ++attempts) {
        try {
          weft::with_timeout(5ms, [&] {
            connection c{goodbye_sent, in_goodbye};
            weft::this_fiber::sleep_for(1h);
          });
        } catch (const timeout_error&) {
          weft::this_fiber::sleep_for(1ms);  // back-off
        }
      }
    });
    in_goodbye.wait();  // the fiber unwinds attempt 0's expiry, in ~connection()
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
    EXPECT_TRUE(goodbye_sent);
    EXPECT_EQ(attempts, 0);
  });
}

// A destructor in a cancellation's catch block that bounds its own flush with a
// with_timeout: the flush's expiry is the destructor's timeout_error to handle, not
// the cancellation coming back out of a noexcept destructor (std::terminate, found
// 2026-12-07). As with asyncio.timeout, a scope the cleanup opens reports its own
// expiry; the handler here swallows the cancellation, so the fiber ends normally.
TEST(ScopeCleanup, DestructorBoundingItsFlushInACancellationsCatchBlockGetsItsOwnTimeout) {
  hang_guard guard;
  run_checked([] {
    for (bool inside_a_scope : {false, true}) {
      int flushes_timed_out = 0;
      bool slept_after = false;
      struct flusher {
        int& timed_out;
        bool& slept_after;
        ~flusher() {
          try {
            weft::with_timeout(5ms, [] { weft::this_fiber::sleep_for(1h); });
          } catch (const timeout_error&) {
            ++timed_out;
          }
          weft::this_fiber::sleep_for(1ms);  // another blocking call: not cancelled either
          slept_after = true;
        }
      };
      weft::event waiting;
      auto body = [&] {
        try {
          waiting.set();
          weft::this_fiber::sleep_for(1h);
        } catch (const weft::cancelled_error&) {
          flusher f{flushes_timed_out, slept_after};
        }
      };
      auto f = weft::spawn([&] {
        if (inside_a_scope)
          weft::with_timeout(1h, body);  // the cancellation is delivered with a mask
        else
          body();  // outside every scope
      });
      waiting.wait();
      f.cancel();
      EXPECT_NO_THROW(f.join()) << "inside a scope: " << inside_a_scope;
      EXPECT_EQ(flushes_timed_out, 1) << "inside a scope: " << inside_a_scope;
      EXPECT_TRUE(slept_after) << "inside a scope: " << inside_a_scope;
    }
  });
}

// The same flush in the catch block itself, which rethrows: the handler sees the
// flush's timeout_error, and the cancellation goes on.
TEST(ScopeCleanup, WithTimeoutOpenedInACancellationsCleanupReportsItsOwnExpiry) {
  hang_guard guard;
  run_checked([] {
    for (bool inside_a_scope : {false, true}) {
      bool flush_timed_out = false;
      weft::event waiting;
      auto body = [&] {
        try {
          waiting.set();
          weft::this_fiber::sleep_for(1h);
        } catch (const weft::cancelled_error&) {
          try {
            weft::with_timeout(5ms, [] { weft::this_fiber::sleep_for(1h); });
          } catch (const timeout_error&) {
            flush_timed_out = true;
          }
          throw;
        }
      };
      auto f = weft::spawn([&] {
        if (inside_a_scope)
          weft::with_timeout(1h, body);
        else
          body();
      });
      waiting.wait();
      f.cancel();
      EXPECT_THROW(f.join(), weft::cancelled_error) << "inside a scope: " << inside_a_scope;
      EXPECT_TRUE(flush_timed_out) << "inside a scope: " << inside_a_scope;
    }
  });
}

// A scope that was open when the cancellation came expires while a destructor in
// the catch block blocks: the destructor gets the expiry (as the cancelled_error a
// with_timeout's expiry is inside it) and handles it; the catch block swallows the
// cancellation, and the next blocking call in the scope lets the cancellation out
// of the with_timeout as cancelled_error, not timeout_error: not lost.
TEST(ScopeCleanup, ScopeExpiringInACleanupDestructorKeepsTheCancellation) {
  hang_guard guard;
  run_checked([] {
    bool expiry_seen = false;
    struct goodbye {
      bool& expiry_seen;
      ~goodbye() {
        try {
          weft::this_fiber::sleep_for(1h);  // the scope (30 ms) expires here
        } catch (const weft::error&) {
          expiry_seen = true;
        }
      }
    };
    weft::event waiting;
    bool went_on = false;
    auto f = weft::spawn([&] {
      weft::with_timeout(30ms, [&] {
        try {
          waiting.set();
          weft::this_fiber::sleep_for(1h);
        } catch (const weft::cancelled_error&) {
          goodbye g{expiry_seen};
        }  // swallowed
        weft::this_fiber::sleep_for(1h);  // must not wait here
      });
      went_on = true;
    });
    waiting.wait();
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
    EXPECT_TRUE(expiry_seen);
    EXPECT_FALSE(went_on);
  });
}

// breaker: a deferred cancellation is taken once its handler has ended, also inside
// the catch block of another exception around the scope (it waited there for good:
// "any exception being handled" was taken for the cancellation's cleanup).
TEST(ScopeCleanup, DeferredCancellationIsTakenInsideAnUnrelatedCatchBlock) {
  hang_guard guard;
  run_checked([] {
    weft::event waiting;
    bool cancelled_in_recovery = false;
    auto f = weft::spawn([&] {
      try {
        throw std::runtime_error("db down");
      } catch (const std::runtime_error&) {  // recovery runs in this catch block
        weft::with_timeout(20ms, [&] {
          try {
            waiting.set();
            weft::this_fiber::sleep_for(1h);
          } catch (const weft::cancelled_error&) {
            try {
              weft::this_fiber::sleep_for(1h);  // the scope expires: the cancellation is deferred
            } catch (const weft::cancelled_error&) {
            }
          }  // both swallowed
        });
        EXPECT_TRUE(weft::this_fiber::cancellation_requested());
        try {
          weft::this_fiber::sleep_for(1h);
        } catch (const weft::cancelled_error&) {
          cancelled_in_recovery = true;
        }
      }
    });
    waiting.wait();
    f.cancel();
    f.join();
    EXPECT_TRUE(cancelled_in_recovery);
  });
}

// breaker: one cancel(), one cancelled_error. A handler that rethrows the
// cancellation after a cleanup the scope's expiry interrupted lets the cancellation
// out as itself; the deferred copy must not come back at the next attempt.
TEST(ScopeCleanup, RethrownCancellationIsDeliveredOnceAfterAnInterruptedCleanup) {
  hang_guard guard;
  run_checked([] {
    weft::event waiting;
    int deliveries = 0;
    int attempts = 0;
    auto f = weft::spawn([&] {
      for (; attempts < 3; ++attempts) {
        try {
          weft::with_timeout(20ms, [&] {
            try {
              waiting.set();
              weft::this_fiber::sleep_for(1h);
            } catch (const weft::cancelled_error&) {
              try {
                weft::this_fiber::sleep_for(50ms);  // goodbye; the scope expires meanwhile
              } catch (...) {
              }
              throw;
            }
          });
        } catch (const weft::cancelled_error&) {
          ++deliveries;  // the caller carries on
        } catch (const timeout_error&) {
        }
      }
    });
    waiting.wait();
    f.cancel();
    f.join();
    EXPECT_EQ(deliveries, 1);
    EXPECT_EQ(attempts, 3);
  });
}

// breaker: a request loop that swallows a cancellation whose goodbye its
// with_timeout cuts: the cancellation is deferred and comes back once, at the next
// request; cut again there, it is not deferred a second time (one cancel() used to
// cancel every later request).
TEST(ScopeCleanup, DeferredCancellationComesBackAtMostOnce) {
  hang_guard guard;
  run_checked([] {
    weft::event waiting;
    int handled = 0;
    int completed = 0;
    auto f = weft::spawn([&] {
      for (int i = 0; i < 4; ++i) {
        try {
          weft::with_timeout(20ms, [&] {
            try {
              if (i == 0) waiting.set();
              weft::this_fiber::sleep_for(i == 0 ? 1h : 1ms);
            } catch (const weft::cancelled_error&) {
              ++handled;
              try {
                weft::this_fiber::sleep_for(50ms);  // goodbye, cut by the scope
              } catch (const weft::error&) {
              }
              return;  // request dropped, the loop goes on
            }
          });
          ++completed;
        } catch (const weft::error&) {
        }
      }
    });
    waiting.wait();
    f.cancel();
    f.join();
    EXPECT_LE(handled, 2);
    EXPECT_GE(completed, 2);
  });
}

// Breaker's finding: a cancellation delivered as the with_timeout leaves (its
// cleanup was cut by the scope, and a destructor blocked in its own with_timeout
// while that unwound) left the redelivery flag set, so the next cancel() was not
// deferred when its cleanup was cut too: the scope's timeout replaced it.
TEST(ScopeCleanup, EveryCancelIsDeliveredAfterCleanupsWithABlockingDestructor) {
  hang_guard guard;
  struct blocking_destructor {
    ~blocking_destructor() {
      try {
        weft::with_timeout(2ms, [] { weft::this_fiber::sleep_for(50ms); });
      } catch (const weft::timeout_error&) {
      }
    }
  };
  run_checked([] {
    weft::channel<int> started(4);
    std::vector<std::string> outcomes;
    auto f = weft::spawn([&] {
      for (int i = 0; i < 3; ++i) {
        started.send(i);
        try {
          weft::with_timeout(100ms, [&] {
            blocking_destructor d;
            try {
              weft::this_fiber::sleep_for(1h);
            } catch (const weft::cancelled_error&) {
              weft::this_fiber::sleep_for(1s);  // cleanup, cut by the scope
              throw;
            }
          });
          outcomes.push_back("returned");
        } catch (const weft::cancelled_error&) {
          outcomes.push_back("cancelled");
        } catch (const weft::timeout_error&) {
          outcomes.push_back("timeout");
        }
      }
    });
    for (int i = 0; i < 3; ++i) {
      (void)started.recv();  // f parks in its sleep before this fiber runs again
      f.cancel();
    }
    f.join();
    EXPECT_EQ(outcomes, (std::vector<std::string>{"cancelled", "cancelled", "cancelled"}));
  });
}

TEST(Scope, MisuseOutsideAFiber) {
  EXPECT_THROW(weft::deadline_scope(1s), weft::error);
  EXPECT_THROW(weft::shield([] {}), weft::error);
  // Each names the function called (wait_for used to say "weft::with_timeout").
  auto message = [](auto call) {
    try {
      call();
    } catch (const weft::error& e) {
      const std::string what = e.what();
      return what.substr(0, what.find(" ("));  // without the hint (ErrorMessage tests it)
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([] { weft::wait_for(1s, [] {}); }), "weft::wait_for: called outside a weft fiber");
  EXPECT_EQ(message([] { weft::with_deadline(weft::no_deadline, [] {}); }),
            "weft::with_deadline: called outside a weft fiber");
  EXPECT_EQ(message([] { weft::with_timeout(1s, [] {}); }), "weft::with_timeout: called outside a weft fiber");
}

// Inside, the expiry names the function whose deadline it is.
TEST(Scope, ExpiryInsideNamesTheScopesFunction) {
  run_checked([] {
    std::string inside;
    EXPECT_THROW(weft::wait_for(1ms,
                                [&] {
                                  try {
                                    weft::this_fiber::sleep_for(1h);
                                  } catch (const weft::cancelled_error& e) {
                                    inside = e.what();
                                    throw;
                                  }
                                }),
                 timeout_error);
    EXPECT_EQ(inside, "weft::this_fiber::sleep_for: the deadline of an enclosing weft::wait_for passed");
  });
}

// breaker: check_cancelled() in a CPU loop ignored a with_timeout opened inside a
// shield (sleep_for there did end); scopes opened inside a shield count for both.
TEST(Scope, CheckCancelledInsideAShieldSeesTheScopesOpenedInIt) {
  hang_guard guard;
  run_checked([] {
    EXPECT_THROW(weft::shield([] {
                   weft::with_timeout(5ms, [] {
                     const auto give_up = weft::clock::now() + 10s;  // hang guard
                     while (weft::clock::now() < give_up) weft::this_fiber::check_cancelled();
                   });
                 }),
                 timeout_error);
  });
}

// breaker case reuse: an expiry kept by one fiber and rethrown by a later one (which
// may get the first one's record, and counts its scopes from 0 again) inside a
// with_timeout that has not expired passes through it as the cancelled_error it is.
TEST(Scope, AnotherFibersExpiryPassesThroughAScopeThatHasNotExpired) {
  run_checked([] {
    std::exception_ptr kept;
    weft::spawn([&] {
      EXPECT_THROW(weft::with_timeout(1ms,
                                      [&] {
                                        try {
                                          weft::this_fiber::sleep_for(1h);
                                        } catch (...) {
                                          kept = std::current_exception();
                                          throw;
                                        }
                                      }),
                   timeout_error);
    }).join();
    for (int i = 0; i < 3; ++i) {
      auto later = weft::spawn([&] { weft::with_timeout(1h, [&] { std::rethrow_exception(kept); }); });
      try {
        later.join();
        ADD_FAILURE() << "nothing thrown";
      } catch (const timeout_error& e) {
        ADD_FAILURE() << "taken for the later fiber's own expiry: " << e.what();
      } catch (const weft::cancelled_error&) {
      }
    }
  });
}

}  // namespace
