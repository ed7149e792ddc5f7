// Channels used from plain threads (threads that run no scheduler): the blocking
// forms block that thread alone, with deadlines, close and destruction reported as
// for a fiber; and on a scheduler's own context (outside its fibers) they refuse.
#include <atomic>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;
using weft::channel_status;


TEST(ChannelFromThread, PlainThreadSendsAndAFiberReceivesInOrder) {
  run_checked([] {
    weft::channel<int> ch;  // unbuffered: every send waits for the fiber
    constexpr int count = 2000;
    std::thread producer([&] {
      for (int i = 0; i < count; ++i) ch.send(i);
      ch.close();
    });
    int expected = 0;
    for (int& v : ch) EXPECT_EQ(v, expected++);
    EXPECT_EQ(expected, count);
    producer.join();
  });
}

TEST(ChannelFromThread, PlainThreadReceivesWithRangeForUntilClosed) {
  long sum = 0;
  run_checked([&] {
    weft::channel<int> ch(4);
    std::thread consumer([&] {
      for (int& v : ch) sum += v;
    });
    for (int i = 1; i <= 1000; ++i) ch.send(i);
    ch.close();
    while (!ch.closed() || ch.size() != 0) weft::this_fiber::sleep_for(1ms);
    consumer.join();  // it has seen the end, or sees it at once
  });
  EXPECT_EQ(sum, 1000L * 1001 / 2);
}

// No runtime at all: two plain threads hand values back and forth.
TEST(ChannelFromThread, TwoPlainThreadsPingPongWithoutARuntime) {
  weft::channel<int> ping, pong;
  std::thread echo([&] {
    while (auto v = ping.recv()) pong.send(*v + 1);
  });
  for (int i = 0; i < 1000; ++i) {
    ping.send(i);
    EXPECT_EQ(pong.recv(), i + 1);
  }
  ping.close();
  echo.join();
}

TEST(ChannelFromThread, DeadlinesEndAPlainThreadsWait) {
  weft::channel<std::unique_ptr<int>> ch(1);
  auto r = ch.recv_for(20ms);
  EXPECT_EQ(r.status, channel_status::timeout);
  EXPECT_EQ(ch.recv_until(weft::clock::now() - 1h).status, channel_status::timeout);  // already past
  EXPECT_EQ(ch.send_for(std::make_unique<int>(1), 1ms), channel_status::ok);
  auto kept = std::make_unique<int>(2);
  EXPECT_EQ(ch.send_for(std::move(kept), 20ms), channel_status::timeout);
  ASSERT_NE(kept, nullptr);  // a failed send leaves the value where it was
  EXPECT_EQ(*kept, 2);
  // A far deadline is a real wait that ends when served.
  std::thread later([&] {
    std::this_thread::sleep_for(10ms);
    (void)ch.recv();
  });
  EXPECT_EQ(ch.send_until(std::move(kept), weft::time_point::max()), channel_status::ok);
  later.join();
}

TEST(ChannelFromThread, CloseWakesWaitingPlainThreads) {
  weft::channel<int> in, out;
  std::optional<int> received{42};
  bool send_failed = false;
  std::thread receiver([&] { received = in.recv(); });
  std::thread sender([&] {
    try {
      out.send(1);
    } catch (const weft::channel_closed_error&) {
      send_failed = true;
    }
  });
  std::this_thread::sleep_for(10ms);  // both are waiting by now (or see the close at once)
  in.close();
  out.close();
  receiver.join();
  sender.join();
  EXPECT_EQ(received, std::nullopt);
  EXPECT_TRUE(send_failed);
}

TEST(ChannelFromThread, DestroyedWhileAPlainThreadWaits) {
  run_checked([] {
    auto ch = std::make_unique<weft::channel<int>>();
    std::atomic<int> code{-1};
    std::thread waiter([&code, raw = ch.get()] {
      try {
        (void)raw->recv();
      } catch (const weft::error& e) {
        code = e.code().value();
      }
    });
    weft::this_fiber::sleep_for(20ms);  // the thread waits by now
    ch.reset();  // returns once the thread has let go of the channel
    waiter.join();
    EXPECT_EQ(code.load(), static_cast<int>(weft::errc::destroyed_while_waiting));
  });
}

// Plain threads and fibers on two schedulers all sending into one small buffered
// channel, fibers on both schedulers and a plain thread receiving: every value once.
TEST(ChannelFromThread, PlainThreadsAndFibersShareAChannel) {
#if WEFT_TSAN
  constexpr int per_sender = 500;
#else
  constexpr int per_sender = 5000;
#endif
  std::multiset<int> got;
  std::mutex got_mutex;
  run_checked(
      [&] {
        weft::channel<int> ch(4);
        auto take = [&] {
          std::vector<int> mine;
          for (int& v : ch) mine.push_back(v);
          std::lock_guard lock(got_mutex);
          got.insert(mine.begin(), mine.end());
        };
        std::thread thread_receiver(take);
        auto r0 = weft::spawn(take);
        auto r1 = weft::spawn({.on = 1}, take);
        std::vector<std::thread> thread_senders;
        for (int t = 0; t < 2; ++t)
          thread_senders.emplace_back([&, t] {
            for (int i = 0; i < per_sender; ++i) ch.send(t * per_sender + i);
          });
        auto s0 = weft::spawn([&] {
          for (int i = 0; i < per_sender; ++i) ch.send(2 * per_sender + i);
        });
        auto s1 = weft::spawn({.on = 1}, [&] {
          for (int i = 0; i < per_sender; ++i) ch.send(3 * per_sender + i);
        });
        s0.join();
        s1.join();
        for (auto& t : thread_senders) weft::to_thread([&t] { t.join(); });
        ch.close();
        r0.join();
        r1.join();
        weft::to_thread([&] { thread_receiver.join(); });
      },
      threads(2));
  ASSERT_EQ(got.size(), 4u * per_sender);
  int expected = 0;
  for (int v : got) EXPECT_EQ(v, expected++);
}

// On a scheduler's thread but outside its fibers (here: the destructor of a
// detached fiber's result, which the scheduler's own context runs when it drops the
// finished fiber's record), a blocking call cannot block: not_in_fiber.
TEST(ChannelFromThread, BlockingOnASchedulersOwnContextIsRefused) {
  std::atomic<int> code{-1};
  run_checked([&] {
    weft::channel<int> ch;
    struct probe {
      weft::channel<int>* ch;
      std::atomic<int>* code;
      bool armed = true;
      probe(weft::channel<int>* c, std::atomic<int>* out) : ch(c), code(out) {}
      probe(probe&& o) noexcept : ch(o.ch), code(o.code), armed(std::exchange(o.armed, false)) {}
      ~probe() {
        if (!armed) return;
        try {
          (void)ch->recv_until(weft::clock::now() - 1h);  // in a fiber: a timeout
          code->store(0);
        } catch (const weft::error& e) {
          code->store(e.code().value());
        }
      }
    };
    weft::spawn([&] { return probe(&ch, &code); }).detach();
    weft::this_fiber::sleep_for(10ms);  // the fiber ends with nothing else runnable
  });
  EXPECT_EQ(code.load(), static_cast<int>(weft::errc::not_in_fiber));
}
