// wait_any and first_success: the first wins, the rest are cancelled and awaited.
#include <ranges>

#include "structured_test.hpp"

namespace {

using namespace structured_test;

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

// A view that yields its callables by value (a transform) works as a container does.
TEST(WaitAny, OverAViewThatYieldsCallables) {
  run_checked([] {
    auto fns = std::views::iota(0, 4) | std::views::transform([](int i) {
                 return [i] {
                   if (i != 2) weft::this_fiber::sleep_for(std::chrono::hours(1));  // cancelled
                   return i;
                 };
               });
    EXPECT_EQ(weft::wait_any(fns).index, 2u);
    auto failing = std::views::iota(0, 3) | std::views::transform([](int i) {
                     return [i] {
                       if (i != 1) throw std::runtime_error("no");
                       return i;
                     };
                   });
    EXPECT_EQ(weft::first_success(failing).value, 1);
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

}  // namespace

// breaker case first_success_empty: a callable that ends with a cancelled_error of
// its own (it joined a fiber that someone cancelled), while neither the race nor the
// caller cancelled anything, failed: first_success groups that failure (it used to
// drop it and throw an exception_group of none), wait_any rethrows it.
TEST(FirstSuccess, ACancelledErrorOfTheCallablesOwnIsAFailure) {
  hang_guard guard;
  run_checked([] {
    auto joins_a_cancelled_fiber = [] {
      auto f = weft::spawn([] { weft::this_fiber::sleep_for(1h); });
      f.cancel();
      f.join();  // rethrows f's cancelled_error
    };
    try {
      weft::first_success(joins_a_cancelled_fiber);
      ADD_FAILURE() << "first_success returned";
    } catch (const weft::exception_group& eg) {
      ASSERT_EQ(eg.exceptions().size(), 1u) << eg.what();
      EXPECT_THROW(std::rethrow_exception(eg.exceptions()[0]), weft::cancelled_error);
    }
    EXPECT_THROW(weft::wait_any(joins_a_cancelled_fiber), weft::cancelled_error);
    EXPECT_FALSE(weft::this_fiber::cancellation_requested());
  });
}
