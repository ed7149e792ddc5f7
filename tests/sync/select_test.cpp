// select: readiness, fairness, default, deadline, cancellation, no double delivery.
#include <optional>
#include <string>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;
using weft::channel_status;

// Select's tests run with every fiber on one scheduler and spread over two
// (weft_test.hpp's spread_test).
class Select : public spread_test {};
WEFT_SPREAD_TEST_SUITE(Select);

TEST_P(Select, RunsTheReadyCase) {
  run([&] {
    weft::channel<int> a(1), b(1);
    b.send(2);
    int got = 0;
    auto index = weft::select(weft::on_recv(a, [&](std::optional<int> v) { got = *v; }),
                              weft::on_recv(b, [&](std::optional<int> v) { got = *v * 10; }));
    EXPECT_EQ(index, 1u);
    EXPECT_EQ(got, 20);
    EXPECT_EQ(a.try_recv().status, channel_status::empty);
  });
}

TEST_P(Select, ChannelsOfDifferentTypesSendAndReceive) {
  run([&] {
    weft::channel<std::string> words;
    weft::channel<int> numbers;
    auto peer = spawn([&] { return words.recv(); });
    settle();
    std::string w = "hello";
    auto index = weft::select(weft::on_recv(numbers), weft::on_send(words, w));
    EXPECT_EQ(index, 1u);
    EXPECT_EQ(peer.join(), "hello");
  });
}

TEST_P(Select, AConstValueIsCopiedIntoItsSendCase) {
  run([&] {
    weft::channel<std::string> words(1);
    const std::string w = "kept";
    EXPECT_EQ(weft::select(weft::on_send(words, w)), 0u);
    EXPECT_EQ(weft::select(weft::on_send(&words, w), weft::on_default([] {})), 1u);  // full: not sent
    EXPECT_EQ(words.recv(), "kept");
    EXPECT_EQ(w, "kept");
  });
}

TEST_P(Select, WaitsUntilACaseBecomesReady) {
  run([&] {
    weft::channel<int> a, b;
    auto sender = spawn([&] {
      weft::this_fiber::sleep_for(1ms);
      b.send(5);
    });
    std::optional<int> got;
    auto index = weft::select(weft::on_recv(a), weft::on_recv(b, [&](std::optional<int> v) { got = v; }));
    EXPECT_EQ(index, 1u);
    EXPECT_EQ(got, 5);
    sender.join();
  });
}

TEST_P(Select, DefaultRunsWhenNothingIsReady) {
  run([&] {
    weft::channel<int> a;
    bool defaulted = false;
    auto index = weft::select(weft::on_recv(a), weft::on_default([&] { defaulted = true; }));
    EXPECT_EQ(index, 1u);
    EXPECT_TRUE(defaulted);
  });
}

TEST(SelectOutsideAFiber, DefaultWorks) {
  weft::channel<int> a(1);
  a.try_send(3);
  int got = 0;
  auto index = weft::select(weft::on_recv(a, [&](std::optional<int> v) { got = *v; }), weft::on_default([] {}));
  EXPECT_EQ(index, 0u);
  EXPECT_EQ(got, 3);
}

TEST(SelectOutsideAFiber, BlockingSelectThrows) {
  weft::channel<int> a;
  EXPECT_THROW(weft::select(weft::on_recv(a)), weft::error);
}

TEST_P(Select, SelectForTimesOutAndWithdrawsEveryCase) {
  run([&] {
    weft::channel<int> a, b;
    int v = 1;
    auto r = weft::select_for(2ms, weft::on_recv(a), weft::on_send(b, v));
    EXPECT_FALSE(r.has_value());
    // Nothing is left queued: both channels have no waiters.
    EXPECT_EQ(a.try_send(1), channel_status::full);
    EXPECT_EQ(b.try_recv().status, channel_status::empty);
  });
}

TEST_P(Select, ClosedChannelIsReadyWithNullopt) {
  run([&] {
    weft::channel<int> a, b;
    a.close();
    bool saw_end = false;
    auto index = weft::select(weft::on_recv(a, [&](std::optional<int> v) { saw_end = !v; }), weft::on_recv(b));
    EXPECT_EQ(index, 0u);
    EXPECT_TRUE(saw_end);
  });
}

TEST_P(Select, SendCaseOnClosedChannelThrows) {
  run([&] {
    weft::channel<int> a;
    a.close();
    int v = 1;
    EXPECT_THROW(weft::select(weft::on_send(a, v)), weft::channel_closed_error);
    EXPECT_EQ(v, 1);
  });
}

TEST_P(Select, CloseWakesAWaitingSelect) {
  run([&] {
    weft::channel<int> a, b;
    auto selector = spawn([&] {
      bool ended = false;
      auto i = weft::select(weft::on_recv(a), weft::on_recv(b, [&](std::optional<int> v) { ended = !v; }));
      return i == 1 && ended;
    });
    settle();
    b.close();
    EXPECT_TRUE(selector.join());
  });
}

TEST_P(Select, ReadyCasesArePickedFairly) {
  run([&] {
    weft::channel<int> a(weft::unbounded), b(weft::unbounded);
    constexpr int rounds = 4000;
    for (int i = 0; i < rounds; ++i) {
      a.send(1);
      b.send(1);
    }
    int picked[2] = {0, 0};
    for (int i = 0; i < rounds; ++i) ++picked[weft::select(weft::on_recv(a), weft::on_recv(b))];
    // Random choice: each side far from starving (expected 2000 each).
    EXPECT_GT(picked[0], rounds / 4);
    EXPECT_GT(picked[1], rounds / 4);
  });
}

// A select waiting on two channels whose senders both arrive: exactly one value is
// taken, the other sender keeps waiting and its value goes to the next receiver.
TEST_P(Select, OnlyOneCaseCompletesWhenBothBecomeReady) {
  run([&] {
    weft::channel<int> a, b;
    std::vector<int> got;
    auto selector = spawn([&] {
      weft::select(weft::on_recv(a, [&](std::optional<int> v) { got.push_back(*v); }),
                   weft::on_recv(b, [&](std::optional<int> v) { got.push_back(*v); }));
    });
    settle();  // selector waits on both
    auto sa = spawn([&] { a.send(1); });
    auto sb = spawn([&] { b.send(2); });
    selector.join();
    ASSERT_EQ(got.size(), 1u);
    // The losing sender is still waiting with its value.
    if (got[0] == 1)
      EXPECT_EQ(b.recv(), 2);
    else
      EXPECT_EQ(a.recv(), 1);
    sa.join();
    sb.join();
  });
}

TEST_P(Select, CancelledSelectCompletesNothing) {
  run([&] {
    weft::channel<int> a, b;
    int v = 7;
    auto selector = spawn([&] { weft::select(weft::on_recv(a), weft::on_send(b, v)); });
    settle();
    selector.cancel();
    EXPECT_THROW(selector.join(), weft::cancelled_error);
    EXPECT_EQ(v, 7);
    EXPECT_EQ(a.try_send(1), channel_status::full);
    EXPECT_EQ(b.try_recv().status, channel_status::empty);
  });
}

TEST_P(Select, TwoCasesOnOneChannel) {
  run([&] {
    weft::channel<int> a(1);
    a.send(4);
    int v = 5;
    auto index = weft::select(weft::on_recv(a), weft::on_send(a, v));
    EXPECT_EQ(index, 0u);  // full buffer: only the receive is ready
  });
}

TEST_P(Select, TwoDefaultsAreMisuse) {
  run([&] {
    weft::channel<int> a;
    try {
      weft::select(weft::on_recv(a), weft::on_default([] {}), weft::on_default([] {}));
      FAIL();
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
    }
  });
}

TEST_P(Select, NullChannelCaseIsNeverReady) {
  run([&] {
    weft::channel<int> a, b(1);
    a.close();  // would be ready: a null pointer in its place is not
    b.send(7);
    weft::channel<int>* off = nullptr;
    int v = 3;
    std::optional<int> got;
    auto index = weft::select(weft::on_recv(off), weft::on_send(off, v),
                              weft::on_recv(&b, [&](std::optional<int> x) { got = x; }));
    EXPECT_EQ(index, 2u);
    EXPECT_EQ(got, 7);
    EXPECT_EQ(v, 3);
  });
}

TEST_P(Select, OnlyNullCasesWaitForTheDeadlineOrRunTheDefault) {
  run([&] {
    weft::channel<int>* off = nullptr;
    EXPECT_FALSE(weft::select_for(1ms, weft::on_recv(off), weft::on_send(off, 1)).has_value());
    bool defaulted = false;
    EXPECT_EQ(weft::select(weft::on_recv(off), weft::on_default([&] { defaulted = true; })), 1u);
    EXPECT_TRUE(defaulted);
  });
}

// The shape of a field hang: a loop selecting over two inputs and a forwarding
// send. Once an input closes, its receive case is always ready; left in the select
// the loop never waits, and the collector (on the loop's own scheduler) that the
// send waits for never runs. Switched off with a null pointer, every value arrives.
TEST_P(Select, ClosedInputsSwitchedOffLetAForwardingLoopFinish) {
  run([&] {
    constexpr int n = 200;
    weft::channel<int> left, right, out;  // unbuffered: a send waits for the collector
    auto feed = [&](weft::channel<int>& ch, int first) {
      return spawn([&ch, first] {
        for (int i = first; i < first + n; ++i) ch.send(i);
        ch.close();
      });
    };
    auto feed_left = feed(left, 0);
    auto feed_right = feed(right, n);
    auto collector = weft::spawn([&] {  // on the forwarding loop's scheduler
      std::vector<int> seen(2 * n, 0);
      while (auto v = out.recv()) ++seen.at(*v);
      return seen;
    });
    bool left_open = true, right_open = true;
    std::vector<int> pending;
    auto take = [&](bool& open) {
      return [&](std::optional<int> v) {
        if (v)
          pending.push_back(*v);
        else
          open = false;
      };
    };
    while (left_open || right_open || !pending.empty()) {
      weft::channel<int>* l = left_open ? &left : nullptr;
      weft::channel<int>* r = right_open ? &right : nullptr;
      weft::channel<int>* o = pending.empty() ? nullptr : &out;
      int next = pending.empty() ? 0 : pending.back();
      weft::select(weft::on_recv(l, take(left_open)), weft::on_recv(r, take(right_open)),
                   weft::on_send(o, next, [&] { pending.pop_back(); }));
    }
    out.close();
    feed_left.join();
    feed_right.join();
    EXPECT_EQ(collector.join(), std::vector<int>(2 * n, 1));
  });
}
