// as_completed: results in completion order; cancelling the caller cancels the rest.
#include "structured_test.hpp"

namespace {

using namespace structured_test;

TEST(AsCompleted, DeliversInCompletionOrder) {
  run_checked([] {
    // The callables end in the order 1, 2, 0: each waits for the one before.
    weft::event ended_10, ended_20;
    std::vector<std::function<int()>> fns;
    fns.push_back([&] {
      ended_20.wait();
      return 30;
    });
    fns.push_back([&] {
      ended_10.set();
      return 10;
    });
    fns.push_back([&]() -> int {
      ended_10.wait();
      weft::this_fiber::sleep_for(std::chrono::milliseconds(1));
      ended_20.set();
      throw boom("twenty");
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

// breaker case as_completed_lost: a loop left early, after a callable failed but
// before its outcome was taken: the failure is reported once (it used to vanish
// with the set), and the cancelled callable is not reported at all.
TEST(AsCompleted, FailureNotTakenWhenTheLoopIsLeftIsReported) {
  hang_guard guard;
  collect_reports reports;
  run_checked([] {
    weft::event failed;
    std::vector<std::function<int()>> fns{[] { return 1; },
                                          [&]() -> int {
                                            failed.set();
                                            throw boom("not taken");
                                          },
                                          [] {
                                            weft::this_fiber::sleep_for(1h);
                                            return 3;
                                          }};
    std::optional<weft::as_completed_set<int>> set;
    set.emplace(fns);
    EXPECT_EQ(set->next()->index, 0u);
    failed.wait();
    weft::this_fiber::yield();  // its outcome is sent as the fiber ends
    set.reset();
  });
  ASSERT_EQ(reports.reported.size(), 1u);
  EXPECT_NE(reports.reported[0].find("not taken"), std::string::npos) << reports.reported[0];
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
    try {
      caller.join();
      ADD_FAILURE() << "not cancelled";
    } catch (const weft::cancelled_error& e) {  // names the loop, not the channel inside
      EXPECT_STREQ(e.what(), "weft::as_completed (waiting for the next result): fiber cancelled");
    }
    EXPECT_EQ(seen, 1);
    EXPECT_EQ(unwound, 3);
    // Under a deadline scope likewise.
    try {
      weft::with_timeout(2ms, [&] {
        for (auto& done : weft::as_completed(fns)) seen += done.value();
      });
      ADD_FAILURE() << "no timeout";
    } catch (const weft::timeout_error& e) {
      EXPECT_STREQ(e.what(), "weft::as_completed (waiting for the next result): deadline passed");
    }
  });
}

}  // namespace
