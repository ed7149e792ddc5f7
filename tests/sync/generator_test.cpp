// weft::generator: a producer fiber iterated with range-for; stopped silently when
// the consumer stops early.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

// Generator's tests run with the producer on the consumer's scheduler and on the
// other of two (weft_test.hpp's spread_test).
class Generator : public spread_test {
 protected:
  weft::spawn_options named(std::string name) {
    weft::spawn_options o = placed();
    o.name = std::move(name);
    return o;
  }
};
WEFT_SPREAD_TEST_SUITE(Generator);

TEST_P(Generator, NormalEndEndsTheLoop) {
  run([&] {
    weft::generator<std::string> words(placed(), [](auto& out) {
      for (const char* w : {"one", "two", "three"}) {
        weft::this_fiber::sleep_for(1ms);
        out.yield(w);
      }
    });
    std::vector<std::string> got;
    for (std::string& w : words) got.push_back(w);
    EXPECT_EQ(got, (std::vector<std::string>{"one", "two", "three"}));
    for (std::string& w : words) ADD_FAILURE() << "a finished generator gave " << w;
  });
}

// The case generator_early_break, with the type made for it: the producer is
// cancelled, unwinds, and nothing is reported.
TEST_P(Generator, EarlyBreakCancelsTheProducerSilently) {
  hang_guard guard;
  collect_reports reports;
  bool unwound = false;
  const int rc = run([&] {
    int last = -1;
    {
      weft::generator<int> numbers(named("numbers"), [&](weft::generator<int>::sink& out) {
        struct mark {
          bool& b;
          ~mark() { b = true; }
        } m{unwound};
        for (int i = 0;; ++i) out.yield(i);
      });
      for (int v : numbers) {
        weft::this_fiber::sleep_for(1ms);
        last = v;
        if (v == 2) break;
      }
      EXPECT_FALSE(unwound);  // parked in yield until the generator goes
    }
    EXPECT_TRUE(unwound);  // the destructor waited for the producer to unwind
    EXPECT_EQ(last, 2);
    return 0;
  });
  EXPECT_EQ(rc, 0);
  EXPECT_TRUE(reports.reported.empty());
}

TEST_P(Generator, ProducerExceptionIsRethrownAfterItsValues) {
  run([&] {
    weft::generator<int> g(placed(), [](auto& out) {
      out.yield(1);
      out.yield(2);
      throw boom("producer failed");
    });
    std::vector<int> got;
    try {
      for (int v : g) got.push_back(v);
      ADD_FAILURE() << "no exception";
    } catch (const boom& e) {
      EXPECT_STREQ(e.what(), "producer failed");
    }
    EXPECT_EQ(got, (std::vector<int>{1, 2}));
    for (int v : g) ADD_FAILURE() << "after the end: " << v;  // rethrown once
  });
}

TEST_P(Generator, ConsumerCancelledWhileWaitingStopsTheProducer) {
  hang_guard guard;
  collect_reports reports;
  run([&] {
    bool producer_unwound = false;
    auto consumer = spawn([&] {
      weft::generator<int> slow(placed(), [&](auto& out) {
        struct mark {
          bool& b;
          ~mark() { b = true; }
        } m{producer_unwound};
        out.yield(1);
        weft::this_fiber::sleep_for(1h);  // the consumer waits for the second value
        out.yield(2);
      });
      for (int v : slow) (void)v;
    });
    weft::this_fiber::sleep_for(2ms);
    consumer.cancel();
    try {
      consumer.join();
      ADD_FAILURE() << "not cancelled";
    } catch (const weft::cancelled_error& e) {  // names the loop, not the channel inside
      EXPECT_STREQ(e.what(), "weft::generator (waiting for the next value): fiber cancelled");
    }
    EXPECT_TRUE(producer_unwound);
  });
  EXPECT_TRUE(reports.reported.empty());
}

TEST_P(Generator, DeadlineScopeAroundTheLoop) {
  hang_guard guard;
  run([&] {
    int seen = 0;
    // Three values at once, then the producer waits for good: only the scope's
    // deadline can end the loop, after exactly those three. The deadline leaves a
    // producer on another scheduler time to start on a loaded machine (at 20 ms it
    // had not, once, under ASan while CI shared the cores).
    try {
      weft::with_timeout(300ms, [&] {
        weft::generator<int> g(placed(), [](auto& out) {
          for (int i = 0; i < 3; ++i) out.yield(i);
          weft::this_fiber::sleep_until(weft::no_deadline);
        });
        for (int v : g) seen = v + 1;
      });
      ADD_FAILURE() << "no timeout";
    } catch (const weft::timeout_error& e) {
      EXPECT_STREQ(e.what(), "weft::generator (waiting for the next value): deadline passed");
    }
    EXPECT_EQ(seen, 3);
  });
}

TEST_P(Generator, DestroyedWithoutIteratingNeverRunsTheProducer) {
  run([&] {
    int calls = 0;
    {
      weft::generator<int> g(placed(), [&](auto& out) {
        ++calls;
        out.yield(1);
      });
      weft::this_fiber::yield();
    }
    EXPECT_EQ(calls, 0);
  });
  // Outside a fiber too (nothing started, nothing to stop).
  weft::generator<int> idle([](auto& out) { out.yield(0); });
}

TEST_P(Generator, MovesAndTakesMoveOnlyValuesAndProducers) {
  run([&] {
    auto make = [this] {
      auto start = std::make_unique<int>(10);
      return weft::generator<std::unique_ptr<int>>(placed(), [start = std::move(start)](auto& out) {
        for (int i = 0; i < 3; ++i) out.yield(std::make_unique<int>(*start + i));
      });
    };
    weft::generator<std::unique_ptr<int>> g = make();
    std::vector<int> got;
    for (auto& p : g) got.push_back(*p);
    EXPECT_EQ(got, (std::vector<int>{10, 11, 12}));
  });
}

TEST_P(Generator, ProducerFailingWhileStoppedIsReported) {
  collect_reports reports;
  run([&] {
    weft::generator<int> g(placed(), [](auto& out) {
      try {
        for (int i = 0;; ++i) out.yield(i);
      } catch (const weft::cancelled_error&) {
        throw boom("cleanup failed");
      }
    });
    for (int v : g)
      if (v == 1) break;
  });
  EXPECT_EQ(reports.reported, (std::vector<std::string>{"cleanup failed"}));
}
