// gather: results in input order, first failure cancels the rest, collecting mode.
#include <ranges>
#include <sstream>

#include "structured_test.hpp"

namespace {

using namespace structured_test;

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
    std::vector<std::function<int()>> one_quick;
    for (int i = 0; i < 10; ++i)
      one_quick.push_back([i] {
        if (i != 9) weft::this_fiber::sleep_for(std::chrono::hours(1));  // cancelled
        return i;
      });
    EXPECT_EQ(weft::when_any(one_quick).index, 9u);
  });
}

// A single-pass range (an istream view) is walked once; every callable runs.
TEST(Gather, OverASinglePassRange) {
  run_checked([] {
    const auto callables = [](std::istringstream& in) {
      return std::views::istream<int>(in) | std::views::transform([](int i) { return [i] { return i * 10; }; });
    };
    std::istringstream in("1 2 3");
    auto fns = callables(in);
    static_assert(!std::ranges::forward_range<decltype(fns)>);
    EXPECT_EQ(weft::gather(fns), (std::vector<int>{10, 20, 30}));
    std::istringstream again("4 5");
    auto more = callables(again);
    auto outcomes = weft::gather(weft::return_exceptions, more);
    ASSERT_EQ(outcomes.size(), 2u);
    EXPECT_EQ(outcomes[1].value(), 50);
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

}  // namespace

namespace {

// A deadline scope around gather or wait_any ends with an error that names the
// call the user made (it used to name task_group::join, an internal detail).
TEST(Gather, ATimeoutNamesGatherAndWaitAny) {
  run_checked([] {
    auto slow = [] { weft::this_fiber::sleep_for(1h); };
    try {
      weft::with_timeout(5ms, [&] { weft::gather(slow, slow); });
      ADD_FAILURE() << "no timeout";
    } catch (const weft::timeout_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("weft::gather", 0), 0u) << e.what();
    }
    try {
      weft::with_timeout(5ms, [&] { weft::wait_any(slow, slow); });
      ADD_FAILURE() << "no timeout";
    } catch (const weft::timeout_error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("weft::wait_any", 0), 0u) << e.what();
    }
  });
}

}  // namespace
