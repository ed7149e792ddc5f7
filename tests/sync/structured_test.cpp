// Structured concurrency, as asyncio tutorials use it: task groups, gather in both
// modes, wait_any then cancelling the rest, as_completed order, first_success,
// cancellation reaching every kind of blocking call with resources released.
#include <stdexcept>
#include <string>
#include <vector>

#include "../net/net_test.hpp"

namespace {

using namespace weft_test;

struct boom : std::runtime_error {
  explicit boom(const std::string& what) : std::runtime_error(what) {}
};

// ---- task_group ------------------------------------------------------------------------

TEST(TaskGroup, WaitsForEveryChild) {
  run_checked([] {
    std::vector<int> done;
    weft::with_task_group([&](weft::task_group& g) {
      for (int i = 0; i < 5; ++i)
        g.spawn([&done, i] {
          weft::this_fiber::sleep_for(std::chrono::milliseconds(5 - i));
          done.push_back(i);
        });
    });
    EXPECT_EQ(done, (std::vector<int>{4, 3, 2, 1, 0}));
  });
}

TEST(TaskGroup, FailureCancelsSiblingsBlockedInSocketsAndChannelsThenRethrows) {
  run_checked([] {
    auto listener = weft::net::tcp_listener::bind(loopback_any_port());
    weft::channel<int> never;
    weft::semaphore none(0);
    int unwound = 0;
    struct count_unwind {
      int& n;
      ~count_unwind() { ++n; }
    };
    try {
      weft::with_task_group([&](weft::task_group& g) {
        g.spawn([&] {
          count_unwind c{unwound};
          auto conn = weft::net::tcp_stream::connect(listener.local_endpoint());
          char buf[8];
          conn.read_some(buf);  // nobody writes
        });
        g.spawn([&] {
          count_unwind c{unwound};
          never.recv();
        });
        g.spawn([&] {
          count_unwind c{unwound};
          weft::semaphore_guard permit(none);
        });
        g.spawn([&] {
          count_unwind c{unwound};
          listener.accept();  // the first connection waits in the backlog: accepted
          listener.accept();  // the second never comes
        });
        g.spawn([] {
          weft::this_fiber::sleep_for(5ms);
          throw boom("child failed");
        });
      });
      ADD_FAILURE() << "no exception";
    } catch (const boom& e) {
      EXPECT_STREQ(e.what(), "child failed");
    }
    EXPECT_EQ(unwound, 4);  // every sibling unwound before the group returned
    // The cancelled acquirer left the semaphore's queue: a permit released now is
    // free, not handed to a fiber that no longer waits.
    none.release();
    EXPECT_TRUE(none.try_acquire());
  });
}

TEST(TaskGroup, SeveralFailuresAreAllKept) {
  run_checked([] {
    try {
      weft::with_task_group([](weft::task_group& g) {
        // Both fail before either's cancellation can land: no blocking call between.
        g.spawn([] { throw boom("one"); });
        g.spawn([] { throw boom("two"); });
      });
      ADD_FAILURE() << "no exception";
    } catch (const weft::exception_group& e) {
      ASSERT_EQ(e.exceptions().size(), 2u);
      EXPECT_THROW(e.rethrow_first(), boom);
      EXPECT_NE(std::string(e.what()).find("2 failures"), std::string::npos);
    }
  });
}

TEST(TaskGroup, BodyFailureCancelsChildrenAndComesFirst) {
  run_checked([] {
    bool child_unwound = false;
    EXPECT_THROW(weft::with_task_group([&](weft::task_group& g) {
                   g.spawn([&] {
                     struct mark {
                       bool& b;
                       ~mark() { b = true; }
                     } m{child_unwound};
                     weft::this_fiber::sleep_for(10s);
                   });
                   weft::this_fiber::yield();
                   throw boom("body");
                 }),
                 boom);
    EXPECT_TRUE(child_unwound);
  });
}

TEST(TaskGroup, CancellingTheWaiterCancelsTheGroup) {
  run_checked([] {
    int unwound = 0;
    auto parent = weft::spawn([&] {
      weft::with_task_group([&](weft::task_group& g) {
        for (int i = 0; i < 3; ++i)
          g.spawn([&] {
            struct mark {
              int& n;
              ~mark() { ++n; }
            } m{unwound};
            weft::this_fiber::sleep_for(10s);
          });
      });
    });
    weft::this_fiber::sleep_for(2ms);
    parent.cancel();
    EXPECT_THROW(parent.join(), weft::cancelled_error);
    EXPECT_EQ(unwound, 3);
  });
}

TEST(TaskGroup, NestsAndChildrenMaySpawnSiblings) {
  run_checked([] {
    int total = 0;
    weft::with_task_group([&](weft::task_group& outer) {
      outer.spawn([&] {
        weft::with_task_group([&](weft::task_group& inner) {
          for (int i = 0; i < 3; ++i) inner.spawn([&] { ++total; });
        });
        outer.spawn([&] { total += 10; });  // a sibling spawned by a child
      });
    });
    EXPECT_EQ(total, 13);
  });
}

TEST(TaskGroup, ObjectFormJoinsAndReportsUnjoinedFailures) {
  std::vector<std::string> reported;
  auto previous = weft::set_unhandled_exception_handler(
      [&](weft::fiber_id, std::string_view, std::exception_ptr e) { reported.push_back(weft::describe_exception(e)); });
  run_checked([] {
    weft::task_group g;
    g.spawn([] { weft::this_fiber::sleep_for(1ms); });
    EXPECT_EQ(g.running(), 1u);
    g.join();
    EXPECT_EQ(g.running(), 0u);
    g.spawn([] { throw boom("again"); });  // reusable after a join
    EXPECT_THROW(g.join(), boom);
    g.spawn([] { weft::this_fiber::sleep_for(5ms); });
    auto other = weft::spawn([&] { g.join(); });
    weft::this_fiber::yield();  // `other` waits in join
    EXPECT_THROW(g.join(), weft::error);  // a second joiner is refused
    other.join();
    g.spawn([] { throw boom("never joined"); });
    weft::this_fiber::yield();
  });  // the destructor reports what nobody joined
  weft::set_unhandled_exception_handler(previous);
  EXPECT_EQ(reported, (std::vector<std::string>{"never joined"}));
}

// Field case taskgroup_late_failure: a sibling, handling the cancellation that the
// first failure caused, spawns one child that fails and one that sleeps for an hour.
TEST(TaskGroup, ChildSpawnedAfterTheFirstFailureStartsCancelledAndItsFailureIsKept) {
  hang_guard guard;
  run_checked([] {
    auto f = weft::spawn([] {
      weft::with_task_group([](weft::task_group& g) {
        g.spawn([] { throw boom("first"); });
        g.spawn([&g] {
          try {
            weft::this_fiber::sleep_for(1h);
          } catch (const weft::cancelled_error&) {
            g.spawn([] { throw boom("second"); });
            g.spawn([] { weft::this_fiber::sleep_for(1h); });
            throw;
          }
        });
      });
    });
    ASSERT_TRUE(f.wait_for(10s)) << "the group is still joining";
    try {
      f.join();
      ADD_FAILURE() << "no exception";
    } catch (const weft::exception_group& e) {
      ASSERT_EQ(e.exceptions().size(), 2u);
      EXPECT_EQ(weft::describe_exception(e.exceptions()[0]), "first");
      EXPECT_EQ(weft::describe_exception(e.exceptions()[1]), "second");
    }
  });
}

TEST(TaskGroup, ChildSpawnedAfterTheJoinerWasCancelledStartsCancelled) {
  hang_guard guard;
  run_checked([] {
    bool late_started = false;
    auto parent = weft::spawn([&] {
      weft::with_task_group([&](weft::task_group& g) {
        g.spawn([&] {
          try {
            weft::this_fiber::sleep_for(1h);
          } catch (const weft::cancelled_error&) {
            g.spawn([&] {
              late_started = true;
              weft::this_fiber::sleep_for(1h);
            });
            throw;
          }
        });
      });
    });
    weft::this_fiber::sleep_for(2ms);
    parent.cancel();
    EXPECT_THROW(parent.join(), weft::cancelled_error);
    EXPECT_TRUE(late_started);
  });
}

TEST(TaskGroup, ChildSpawnedAfterTheBodyThrewStartsCancelled) {
  hang_guard guard;
  run_checked([] {
    EXPECT_THROW(weft::with_task_group([](weft::task_group& g) {
                   g.spawn([&g] {
                     try {
                       weft::this_fiber::sleep_for(1h);
                     } catch (const weft::cancelled_error&) {
                       g.spawn([] { weft::this_fiber::sleep_for(1h); });
                       throw;
                     }
                   });
                   weft::this_fiber::yield();
                   EXPECT_FALSE(g.cancelled());
                   throw boom("body");
                 }),
                 boom);
  });
}

TEST(TaskGroup, ExplicitCancelIsStickyUntilTheJoin) {
  hang_guard guard;
  run_checked([] {
    weft::task_group g;
    g.cancel();
    EXPECT_TRUE(g.cancelled());
    bool cancelled = false;
    g.spawn([&] {
      try {
        weft::this_fiber::sleep_for(1h);
      } catch (const weft::cancelled_error&) {
        cancelled = true;
        throw;
      }
    });
    g.join();  // a cancelled child is not a failure
    EXPECT_TRUE(cancelled);
    EXPECT_FALSE(g.cancelled());  // a new round
    int done = 0;
    g.spawn([&] {
      weft::this_fiber::sleep_for(1ms);
      ++done;
    });
    g.join();
    EXPECT_EQ(done, 1);
  });
}

// A reused group's next round: its first failure must cancel the siblings too (it
// used to cancel only on the group's first failure ever, so this joined forever).
TEST(TaskGroup, ReusedGroupCancelsOnTheFirstFailureOfEachRound) {
  hang_guard guard;
  run_checked([] {
    weft::task_group g;
    g.spawn([] { throw boom("round one"); });
    EXPECT_THROW(g.join(), boom);
    g.spawn([] { weft::this_fiber::sleep_for(1h); });
    g.spawn([] {
      weft::this_fiber::sleep_for(1ms);
      throw boom("round two");
    });
    try {
      g.join();
      ADD_FAILURE() << "no exception";
    } catch (const boom& e) {
      EXPECT_STREQ(e.what(), "round two");
    }
  });
}

// ---- gather ----------------------------------------------------------------------------

TEST(Gather, ResultsInInputOrder) {
  run_checked([] {
    auto [a, b, c] = weft::gather(
        [] {
          weft::this_fiber::sleep_for(6ms);
          return 1;
        },
        [] { return std::string("two"); }, [] { weft::this_fiber::sleep_for(1ms); });
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, "two");
    (void)c;  // std::monostate for a void callable
    std::vector<std::function<int()>> fns;
    for (int i = 0; i < 10; ++i)
      fns.push_back([i] {
        weft::this_fiber::sleep_for(std::chrono::milliseconds(10 - i));
        return i * i;
      });
    EXPECT_EQ(weft::gather(fns), (std::vector<int>{0, 1, 4, 9, 16, 25, 36, 49, 64, 81}));
    EXPECT_EQ(std::get<0>(weft::when_all([] { return 2; }, [] { return 3; })), 2);
    EXPECT_EQ(weft::when_any(fns).index, 9u);  // the shortest sleep
  });
}

TEST(Gather, FirstFailureCancelsTheRestAndIsRethrown) {
  run_checked([] {
    bool slow_unwound = false;
    try {
      weft::gather(
          [&] {
            struct mark {
              bool& b;
              ~mark() { b = true; }
            } m{slow_unwound};
            weft::this_fiber::sleep_for(10s);
          },
          [] {
            weft::this_fiber::sleep_for(2ms);
            throw boom("gather failed");
          });
      ADD_FAILURE() << "no exception";
    } catch (const boom& e) {
      EXPECT_STREQ(e.what(), "gather failed");
    }
    EXPECT_TRUE(slow_unwound);
  });
}

TEST(Gather, CollectingModeReturnsEveryOutcome) {
  run_checked([] {
    auto [ok, failed, nothing] = weft::gather(
        weft::return_exceptions, [] { return 5; }, []() -> int { throw boom("x"); }, [] {});
    EXPECT_EQ(ok.value(), 5);
    EXPECT_FALSE(failed.has_value());
    EXPECT_THROW(failed.value(), boom);
    EXPECT_TRUE(nothing.has_value());

    std::vector<std::function<int()>> fns{[] { return 1; }, []() -> int { throw boom("y"); }};
    auto all = weft::gather(weft::return_exceptions, fns);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].value(), 1);
    EXPECT_TRUE(all[1].error() != nullptr);
  });
}

TEST(Gather, OverHandles) {
  run_checked([] {
    auto a = weft::spawn([] { return 3; });
    auto b = weft::spawn([] {
      weft::this_fiber::sleep_for(1ms);
      return std::string("b");
    });
    auto [x, y] = weft::gather(a, b);
    EXPECT_EQ(x, 3);
    EXPECT_EQ(y, "b");
    EXPECT_FALSE(a.joinable());

    auto slow = weft::spawn([] { weft::this_fiber::sleep_for(10s); });
    auto bad = weft::spawn([] { throw boom("handle failed"); });
    EXPECT_THROW(weft::gather(slow, bad), boom);
    ASSERT_TRUE(slow.joinable());
    EXPECT_TRUE(slow.done());  // cancelled and finished before gather returned
    EXPECT_THROW(slow.join(), weft::cancelled_error);
  });
}

// ---- wait_any, first_success, as_completed ------------------------------------------

TEST(WaitAny, FirstCompletedWinsAndTheRestAreCancelled) {
  run_checked([] {
    int cancelled = 0;
    auto slow = [&] {
      try {
        weft::this_fiber::sleep_for(10s);
      } catch (const weft::cancelled_error&) {
        ++cancelled;
        throw;
      }
      return std::string("slow");
    };
    auto r = weft::wait_any(slow, [] {
      weft::this_fiber::sleep_for(2ms);
      return std::string("fast");
    }, slow);
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.value, "fast");
    EXPECT_EQ(cancelled, 2);

    // A failure that comes first is the race's outcome.
    EXPECT_THROW(weft::wait_any([]() -> int { throw boom("first"); },
                                [] {
                                  weft::this_fiber::sleep_for(10s);
                                  return 1;
                                }),
                 boom);
  });
}

TEST(WaitAny, OverHandlesLeavesTheFibersAlone) {
  run_checked([] {
    std::vector<weft::fiber<int>> fs;
    fs.push_back(weft::spawn([] {
      weft::this_fiber::sleep_for(10s);
      return 0;
    }));
    fs.push_back(weft::spawn([] {
      weft::this_fiber::sleep_for(1ms);
      return 1;
    }));
    const std::size_t first = weft::wait_any(fs);
    EXPECT_EQ(first, 1u);
    EXPECT_EQ(fs[1].join(), 1);
    EXPECT_FALSE(fs[0].done());  // still running: cancelling the rest is the caller's call
    fs[0].cancel();
    EXPECT_THROW(fs[0].join(), weft::cancelled_error);
  });
}

TEST(FirstSuccess, SkipsFailuresAndGroupsThemWhenAllFail) {
  run_checked([] {
    auto r = weft::first_success([]() -> int { throw boom("a"); },
                                 [] {
                                   weft::this_fiber::sleep_for(2ms);
                                   return 7;
                                 });
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.value, 7);
    try {
      weft::first_success([]() -> int { throw boom("a"); }, []() -> int { throw boom("b"); });
      ADD_FAILURE() << "no exception";
    } catch (const weft::exception_group& e) {
      EXPECT_EQ(e.exceptions().size(), 2u);
    }
  });
}

TEST(AsCompleted, DeliversInCompletionOrder) {
  run_checked([] {
    std::vector<std::function<int()>> fns;
    for (int delay : {30, 10, 20})
      fns.push_back([delay] {
        weft::this_fiber::sleep_for(std::chrono::milliseconds(delay));
        if (delay == 20) throw boom("twenty");
        return delay;
      });
    std::vector<std::size_t> order;
    for (auto& done : weft::as_completed(fns)) {
      order.push_back(done.index);
      if (done.index == 2)
        EXPECT_THROW(done.value(), boom);
      else
        EXPECT_EQ(done.value(), done.index == 0 ? 30 : 10);
    }
    EXPECT_EQ(order, (std::vector<std::size_t>{1, 2, 0}));

    // Leaving early cancels what is still running.
    bool unwound = false;
    {
      auto set = weft::as_completed([] { return 1; },
                                    [&] {
                                      struct mark {
                                        bool& b;
                                        ~mark() { b = true; }
                                      } m{unwound};
                                      weft::this_fiber::sleep_for(10s);
                                      return 2;
                                    });
      EXPECT_EQ(set.next()->index, 0u);
    }
    EXPECT_TRUE(unwound);
  });
}

// Failures after the first (here: raised while handling the first one's
// cancellation) reach the unhandled exception handler, never lost; the race ends.
struct collect_reports {
  std::vector<std::string> reported;
  weft::unhandled_exception_handler previous = weft::set_unhandled_exception_handler(
      [this](weft::fiber_id, std::string_view, std::exception_ptr e) {
        reported.push_back(weft::describe_exception(e));
      });
  ~collect_reports() { weft::set_unhandled_exception_handler(previous); }
};

auto fail_when_cancelled(const char* what) {
  return [what]() -> int {
    try {
      weft::this_fiber::sleep_for(1h);
    } catch (const weft::cancelled_error&) {
      throw boom(what);
    }
    return 0;
  };
}

TEST(Gather, FailuresAfterTheFirstAreReportedAndTheGatherEnds) {
  hang_guard guard;
  collect_reports reports;
  run_checked([] {
    try {
      weft::gather(fail_when_cancelled("late"), []() -> int {
        weft::this_fiber::sleep_for(1ms);
        throw boom("first");
      });
      ADD_FAILURE() << "no exception";
    } catch (const boom& e) {
      EXPECT_STREQ(e.what(), "first");
    }
  });
  EXPECT_EQ(reports.reported, (std::vector<std::string>{"late"}));
}

TEST(Gather, CancellingTheCallerCancelsEveryCallable) {
  hang_guard guard;
  run_checked([] {
    int unwound = 0;
    auto sleeper = [&] {
      struct mark {
        int& n;
        ~mark() { ++n; }
      } m{unwound};
      weft::this_fiber::sleep_for(1h);
      return 0;
    };
    auto caller = weft::spawn([&] { weft::gather(sleeper, sleeper, sleeper); });
    weft::this_fiber::sleep_for(2ms);
    caller.cancel();
    EXPECT_THROW(caller.join(), weft::cancelled_error);
    EXPECT_EQ(unwound, 3);
  });
}

TEST(WaitAny, LoserFailingInItsCancellationIsReportedAndTheRaceEnds) {
  hang_guard guard;
  collect_reports reports;
  run_checked([] {
    auto r = weft::wait_any(fail_when_cancelled("loser"), [] {
      weft::this_fiber::sleep_for(1ms);
      return 5;
    });
    EXPECT_EQ(r.index, 1u);
    EXPECT_EQ(r.value, 5);
  });
  EXPECT_EQ(reports.reported, (std::vector<std::string>{"loser"}));
}

TEST(FirstSuccess, LoserFailingInItsCancellationIsReportedAndTheRaceEnds) {
  hang_guard guard;
  collect_reports reports;
  run_checked([] {
    auto r = weft::first_success([]() -> int { throw boom("early"); }, fail_when_cancelled("loser"), [] {
      weft::this_fiber::sleep_for(1ms);
      return 9;
    });
    EXPECT_EQ(r.index, 2u);
    EXPECT_EQ(r.value, 9);
  });
  // The failure before the win is not the race's outcome and not an error either.
  EXPECT_EQ(reports.reported, (std::vector<std::string>{"loser"}));
}

TEST(AsCompleted, CancellingTheCallerWhileIteratingCancelsTheRest) {
  hang_guard guard;
  run_checked([] {
    int unwound = 0;
    std::vector<std::function<int()>> fns;
    fns.push_back([] { return 1; });
    for (int i = 0; i < 3; ++i)
      fns.push_back([&] {
        struct mark {
          int& n;
          ~mark() { ++n; }
        } m{unwound};
        weft::this_fiber::sleep_for(1h);
        return 2;
      });
    int seen = 0;
    auto caller = weft::spawn([&] {
      for (auto& done : weft::as_completed(fns)) seen += done.value();
    });
    weft::this_fiber::sleep_for(2ms);
    caller.cancel();
    EXPECT_THROW(caller.join(), weft::cancelled_error);
    EXPECT_EQ(seen, 1);
    EXPECT_EQ(unwound, 3);
  });
}

TEST(Structured, SlowOperationUnderWaitFor) {
  run_checked([] {
    weft::channel<int> ch;
    auto producer = weft::spawn([&] {
      weft::this_fiber::sleep_for(30ms);
      ch.try_send(1);  // too late for the first wait, no one is blocked then
    });
    EXPECT_THROW(weft::wait_for(5ms, [&] { return ch.recv(); }), weft::timeout_error);
    EXPECT_EQ(weft::wait_for(10s, [&] { return *ch.recv(); }), 1);
    producer.join();
  });
}

TEST(Structured, CancellationReleasesLocksPermitsAndSockets) {
  run_checked([] {
    weft::mutex m;
    weft::semaphore permits(2);
    const int fds_before = open_fd_count();
    auto worker = weft::spawn([&] {
      std::lock_guard lock(m);
      weft::semaphore_guard permit(permits);
      auto [a, b] = weft::net::unix_stream::pair();
      char buf[4];
      a.read_some(buf);  // blocks until cancelled
    });
    weft::this_fiber::sleep_for(2ms);
    EXPECT_FALSE(m.try_lock());
    worker.cancel();
    EXPECT_THROW(worker.join(), weft::cancelled_error);
    EXPECT_TRUE(m.try_lock());  // the guard ran
    m.unlock();
    EXPECT_TRUE(permits.try_acquire());  // both permits are free again
    EXPECT_TRUE(permits.try_acquire());
    permits.release(2);
    EXPECT_EQ(open_fd_count(), fds_before);  // both sockets closed
  });
}

TEST(Structured, DeadlineScopeAroundGroupsAndGather) {
  run_checked([] {
    int unwound = 0;
    auto sleeper = [&] {
      struct mark {
        int& n;
        ~mark() { ++n; }
      } m{unwound};
      weft::this_fiber::sleep_for(10s);
    };
    EXPECT_THROW(weft::with_timeout(5ms, [&] { weft::gather(sleeper, sleeper); }), weft::timeout_error);
    EXPECT_EQ(unwound, 2);
    EXPECT_THROW(weft::with_timeout(5ms,
                                    [&] {
                                      weft::with_task_group([&](weft::task_group& g) {
                                        g.spawn(sleeper);
                                        g.spawn(sleeper);
                                      });
                                    }),
                 weft::timeout_error);
    EXPECT_EQ(unwound, 4);
  });
}

TEST(Structured, EmptyRacesAreMisuse) {
  run_checked([] {
    std::vector<std::function<int()>> none;
    EXPECT_THROW(weft::wait_any(none), weft::error);
    EXPECT_TRUE(weft::gather(none).empty());
    // Each names the call the user made.
    auto what = [](auto call) {
      try {
        call();
      } catch (const weft::error& e) {
        EXPECT_EQ(e.code(), weft::errc::invalid_argument);
        return std::string(e.what());
      }
      return std::string("no exception");
    };
    EXPECT_EQ(what([&] { weft::wait_any(none); }).rfind("weft::wait_any: nothing to wait for", 0), 0u);
    EXPECT_EQ(what([&] { weft::first_success(none); }).rfind("weft::first_success: nothing to wait for", 0), 0u);
    std::vector<weft::fiber<int>> no_fibers;
    EXPECT_EQ(what([&] { weft::wait_any(no_fibers); }).rfind("weft::wait_any: nothing to wait for", 0), 0u);
    auto empty = weft::as_completed(none);  // nothing to deliver: not an error
    EXPECT_FALSE(empty.next().has_value());
  });
}

}  // namespace
