// task_group: waits for every child, keeps every failure, sticky cancellation.
#include <unistd.h>

#include <memory>
#include <optional>

#include "structured_test.hpp"

namespace {

using namespace structured_test;

TEST(TaskGroup, WaitsForEveryChild) {
  run_checked([] {
    // Each child waits for the one after it, so they end in reverse order and
    // the last one only after a sleep: the group must wait for all of them.
    std::vector<int> done;
    weft::event finished[6];
    finished[5].set();
    weft::with_task_group([&](weft::task_group& g) {
      for (int i = 0; i < 5; ++i)
        g.spawn([&, i] {
          finished[i + 1].wait();
          if (i == 0) weft::this_fiber::sleep_for(std::chrono::milliseconds(2));
          done.push_back(i);
          finished[i].set();
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

// A child failure no caller sees (the group's joiner timed out) is reported naming
// the child that threw it, not the fiber that joined (breaker: "fiber 1 "main"").
TEST(TaskGroup, UnretrievedFailureNamesTheChildThatThrewIt) {
  hang_guard guard;
  std::vector<std::pair<weft::fiber_id, std::string>> reported;
  weft::fiber_id child_id = 0;
  auto previous = weft::set_unhandled_exception_handler(
      [&](weft::fiber_id id, std::string_view name, std::exception_ptr) { reported.emplace_back(id, name); });
  run_checked([&] {
    EXPECT_THROW(weft::with_timeout(5ms,
                                    [&] {
                                      weft::with_task_group([&](weft::task_group& g) {
                                        g.spawn({.name = "worker-a"}, [&] {
                                          child_id = weft::this_fiber::id();
                                          try {
                                            weft::this_fiber::sleep_for(1h);
                                          } catch (const weft::cancelled_error&) {
                                            throw boom("child boom");
                                          }
                                        });
                                      });
                                    }),
                 weft::timeout_error);
  });
  weft::set_unhandled_exception_handler(previous);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].first, child_id);
  EXPECT_EQ(reported[0].second, "worker-a");
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

}  // namespace

namespace {

// A group's state belongs to its scheduler's thread: a child placed elsewhere, or a
// join from a fiber of another scheduler, is refused with a message (they used to
// corrupt the group: double frees, hangs). Its own scheduler's index is fine.
TEST(TaskGroup, ChildrenElsewhereAndCallsFromAnotherSchedulerAreRefused) {
  weft::run_options two;
  two.threads = 2;
  run_checked(
      [] {
        weft::task_group g;
        auto refused = [](auto&& call, const char* says) {
          try {
            call();
            ADD_FAILURE() << "accepted: " << says;
          } catch (const weft::error& e) {
            EXPECT_EQ(e.code(), weft::errc::invalid_argument);
            EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
          }
        };
        refused([&] { g.spawn({.on = 1}, [] {}); }, "spawn_options::on is 1, but a task group's children run on its own scheduler (0)");
        refused([&] { g.spawn({.on = weft::on_any}, [] {}); }, "spawn_options::on is weft::on_any");
        int ran = 0;
        g.spawn({.on = weft::this_fiber::scheduler_index()}, [&] { ++ran; });
        g.spawn({.on = weft::on_caller}, [&] { ++ran; });
        weft::spawn({.on = 1}, [&] {
          refused([&] { g.join(); }, "weft::task_group::join: called on another thread");
          refused([&] { g.spawn([] {}); }, "weft::task_group::spawn: called on another thread");
          refused([&] { g.cancel(); }, "weft::task_group::cancel: called on another thread");
        }).join();
        g.join();
        EXPECT_EQ(ran, 2);
      },
      two);
}

// Destroyed on another scheduler's thread while a child runs, a group cannot wait
// for its children there (that would park a fiber of the other thread's
// scheduler): it says so and terminates, instead of corrupting both schedulers.
TEST(TaskGroupDeathTest, DestroyedOnAnotherSchedulerWithChildrenRunningTerminatesWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        weft::run_options two;
        two.threads = 2;
        weft::run(two, [] {
          auto g = std::make_unique<weft::task_group>();
          g->spawn([] { weft::this_fiber::sleep_for(std::chrono::seconds(5)); });
          weft::spawn({.on = 1}, [g = std::move(g)]() mutable { g.reset(); }).join();
        });
      },
      "weft::task_group destroyed on another scheduler's thread while 1 of its children still run");
}

// With no child left, where the group goes does not matter: nothing waits.
TEST(TaskGroup, DestroyedOnAnotherSchedulerAfterItsJoinIsFine) {
  weft::run_options two;
  two.threads = 2;
  int ran = 0;
  run_checked(
      [&] {
        auto g = std::make_unique<weft::task_group>();
        g->spawn([&] { ++ran; });
        g->join();
        weft::spawn({.on = 1}, [g = std::move(g)]() mutable { g.reset(); }).join();
      },
      two);
  EXPECT_EQ(ran, 1);
}

}  // namespace

// breaker case tg_destroy_while_joined: a group destroyed by its owner while another
// fiber joins it. The joiner wakes with destroyed_while_waiting and never touches the
// group again (it used to stay parked: the destructor's own wait took its wake-up
// slot, and a later cancel had it read the freed group).
TEST(TaskGroup, DestroyedWhileAnotherFiberJoinsWakesTheJoiner) {
  hang_guard guard;
  run_checked([] {
    auto g = std::make_unique<weft::task_group>();
    bool child_cancelled = false;
    g->spawn([&] {
      try {
        weft::this_fiber::sleep_for(10s);
      } catch (const weft::cancelled_error&) {
        child_cancelled = true;
        throw;
      }
    });
    std::optional<weft::errc> joiner_got;
    auto joiner = weft::spawn([&] {
      try {
        g->join();
      } catch (const weft::error& e) {
        joiner_got = static_cast<weft::errc>(e.code().value());
      }
    });
    weft::this_fiber::yield();  // the joiner parks in join
    g.reset();                  // cancels the child, waits for it, releases the joiner
    joiner.join();
    EXPECT_TRUE(child_cancelled);
    ASSERT_TRUE(joiner_got.has_value());
    EXPECT_EQ(*joiner_got, weft::errc::destroyed_while_waiting);
  });
}

// The joiner was woken by the last child's end but has not run yet when the group
// goes: it must not read the group either (ASan would see it).
TEST(TaskGroup, DestroyedAfterItsLastChildWokeTheJoinerBeforeItRan) {
  hang_guard guard;
  run_checked([] {
    auto g = std::make_unique<weft::task_group>();
    weft::event go;
    g->spawn([&] { go.wait(); });
    std::optional<weft::errc> joiner_got;
    bool joiner_returned = false;
    auto joiner = weft::spawn([&] {
      try {
        g->join();
        joiner_returned = true;
      } catch (const weft::error& e) {
        joiner_got = static_cast<weft::errc>(e.code().value());
      }
    });
    weft::this_fiber::yield();  // the joiner parks in join
    go.set();
    weft::this_fiber::yield();  // the child ends and wakes the joiner, which is queued behind us
    g.reset();
    joiner.join();
    EXPECT_FALSE(joiner_returned);
    EXPECT_EQ(joiner_got, weft::errc::destroyed_while_waiting);
  });
}

// breaker case tg_destroy_from_child: a child that destroys its own group would wait
// for its own end (the group waits for every child): it says so and terminates,
// instead of hanging with no report.
TEST(TaskGroupDeathTest, DestroyedByItsOwnChildTerminatesWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        ::alarm(30);  // hang guard: a hang ends the child by SIGALRM, not by the message
        weft::run([] {
          auto g = std::make_unique<weft::task_group>();
          weft::event done;
          g->spawn([&] {
            g.reset();
            done.set();
          });
          done.wait();
        });
      },
      "weft::task_group destroyed by one of its own children");
}
