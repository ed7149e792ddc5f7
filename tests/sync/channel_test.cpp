// Channels: buffering kinds, FIFO, close, deadlines, cancellation, misuse.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;
using weft::channel_status;

// Channel's tests run with every fiber on one scheduler and spread over two
// (weft_test.hpp's spread_test); ChannelFifo and ChannelOneScheduler hold the ones
// whose point is an order only one scheduler fixes.
class Channel : public spread_test {
 protected:
  template <class T>
  void expect_values_arrive_whole(T a, T b, T c);
};
WEFT_SPREAD_TEST_SUITE(Channel);

TEST_P(Channel, UnbufferedSendWaitsForReceiver) {
  run([&] {
    weft::channel<int> ch;
    std::atomic<bool> sent{false};
    auto sender = spawn([&] {
      ch.send(7);
      sent = true;
    });
    settle();
    EXPECT_FALSE(sent);  // rendezvous: no receiver yet
    EXPECT_EQ(ch.recv(), 7);
    sender.join();
    EXPECT_TRUE(sent);
  });
}

TEST_P(Channel, BoundedBuffersUpToCapacityThenTrySendIsFull) {
  run([&] {
    weft::channel<int> ch(3);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(ch.try_send(i), channel_status::ok);
    EXPECT_EQ(ch.try_send(99), channel_status::full);
    EXPECT_EQ(ch.size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(*ch.try_recv(), i);
    EXPECT_EQ(ch.try_recv().status, channel_status::empty);
  });
}

TEST_P(Channel, UnboundedNeverMakesSenderWait) {
  run([&] {
    weft::channel<int> ch(weft::unbounded);
    for (int i = 0; i < 100000; ++i) ch.send(int(i));
    for (int i = 0; i < 100000; ++i) ASSERT_EQ(ch.recv(), i);
  });
}

TEST(ChannelFifo, SendersAreServedInFifoOrder) {
  run_checked([] {
    weft::channel<int> ch;
    std::vector<weft::fiber<void>> senders;
    for (int i = 0; i < 5; ++i) senders.push_back(weft::spawn([&ch, i] { ch.send(int(i)); }));
    weft::this_fiber::yield();  // all five queue up in spawn order
    for (int i = 0; i < 5; ++i) EXPECT_EQ(ch.recv(), i);
    for (auto& f : senders) f.join();
  });
}

TEST(ChannelFifo, ReceiversAreServedInFifoOrder) {
  run_checked([] {
    weft::channel<int> ch(2);
    std::vector<int> got(4, -1);
    std::vector<weft::fiber<void>> receivers;
    for (int i = 0; i < 4; ++i) receivers.push_back(weft::spawn([&, i] { got[i] = *ch.recv(); }));
    weft::this_fiber::yield();
    for (int i = 0; i < 4; ++i) ch.send(i * 10);
    for (auto& f : receivers) f.join();
    EXPECT_EQ(got, (std::vector<int>{0, 10, 20, 30}));
  });
}

TEST_P(Channel, BlockedSenderRefillsBufferInOrder) {
  run([&] {
    weft::channel<int> ch(2);
    auto producer = spawn([&] {
      for (int i = 0; i < 10; ++i) ch.send(int(i));
    });
    settle();
    for (int i = 0; i < 10; ++i) EXPECT_EQ(ch.recv(), i);
    producer.join();
  });
}

TEST_P(Channel, CloseDrainsBufferedValuesThenEnds) {
  run([&] {
    weft::channel<std::string> ch(4);
    ch.send("a");
    ch.send("b");
    EXPECT_TRUE(ch.close());
    EXPECT_FALSE(ch.close());  // idempotent
    EXPECT_TRUE(ch.closed());
    EXPECT_EQ(ch.recv(), "a");
    EXPECT_EQ(ch.recv(), "b");
    EXPECT_EQ(ch.recv(), std::nullopt);
    EXPECT_EQ(ch.try_recv().status, channel_status::closed);
    EXPECT_EQ(ch.recv_for(1h).status, channel_status::closed);
  });
}

TEST_P(Channel, SendOnClosedThrowsAndKeepsValue) {
  run([&] {
    weft::channel<std::string> ch(1);
    ch.close();
    std::string v = "keep me";
    EXPECT_THROW(ch.send(std::move(v)), weft::channel_closed_error);
    EXPECT_EQ(v, "keep me");
    EXPECT_EQ(ch.try_send(std::move(v)), channel_status::closed);
    EXPECT_EQ(v, "keep me");
    try {
      ch.send("x");
      FAIL();
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::channel_closed);
    }
  });
}

TEST_P(Channel, CloseWakesWaitingReceiversAndSenders) {
  run([&] {
    weft::channel<int> in, out;
    auto receiver = spawn([&] { return in.recv(); });
    auto sender = spawn([&] {
      int v = 5;
      channel_status st = out.send_for(std::move(v), 1h);
      return std::make_pair(st, v);
    });
    settle();
    in.close();
    out.close();
    EXPECT_EQ(receiver.join(), std::nullopt);
    auto [st, v] = sender.join();
    EXPECT_EQ(st, channel_status::closed);
    EXPECT_EQ(v, 5);  // nothing lost: the value stayed with the sender
  });
}

TEST_P(Channel, RangeForReceivesUntilClosed) {
  run([&] {
    weft::channel<int> ch(8);
    auto producer = spawn([&] {
      for (int i = 1; i <= 100; ++i) ch.send(int(i));
      ch.close();
    });
    int sum = 0;
    for (int& v : ch) sum += v;
    EXPECT_EQ(sum, 5050);
    producer.join();
  });
}

// Every way a value reaches a receiver (from the buffer, from a waiting sender, to a
// waiting receiver, through the range-for's slot) gives an engaged, equal value.
template <class T>
void Channel::expect_values_arrive_whole(T a, T b, T c) {
  run([&] {
    weft::channel<T> buffered(4), unbuffered;
    buffered.send(T(a));  // from the buffer
    auto v = buffered.recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, a);
    auto sender = spawn([&] { unbuffered.send(T(b)); });
    settle();  // the sender waits: recv takes from it
    v = unbuffered.recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, b);
    sender.join();
    auto receiver = spawn([&] { return unbuffered.recv(); });
    settle();  // the receiver waits: send hands to it
    unbuffered.send(T(c));
    const std::optional<T> got = receiver.join();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, c);
    buffered.send(T(c));
    buffered.send(T(a));
    buffered.close();
    std::vector<T> seen;
    for (T& x : buffered) seen.push_back(x);  // the iterator reuses its slot
    EXPECT_EQ(seen, (std::vector<T>{c, a}));
  });
}

TEST_P(Channel, ValuesArriveWholeByEveryPath) {
  expect_values_arrive_whole<int>(-1, 0, 0x7fffffff);
  expect_values_arrive_whole<float>(1.5f, -0.0f, 3e38f);
  expect_values_arrive_whole<double>(-2.25, 1e300, 0.0);
  expect_values_arrive_whole<std::int64_t>(-1, INT64_MIN, 42);
  static int x, y;
  expect_values_arrive_whole<int*>(&x, nullptr, &y);
  expect_values_arrive_whole<char>('a', '\0', 'z');
  expect_values_arrive_whole<std::string>("a", std::string(100, 'x'), "");
}

// The range-for's slot owns its value: a break, a select case that lost, and a
// select handler that throws leave nothing behind (ASan's leak check).
TEST_P(Channel, ReceivedValuesAreDestroyedOnEveryExit) {
  run([&] {
    weft::channel<std::string> ch(4);
    for (int i = 0; i < 3; ++i) ch.send(std::string(64, char('a' + i)));
    std::vector<std::string> seen;
    for (std::string& v : ch) {
      seen.push_back(v);
      if (seen.size() == 2) break;  // the iterator still holds "bbb..."
    }
    EXPECT_EQ(seen.size(), 2u);
    EXPECT_EQ(ch.recv(), std::string(64, 'c'));
    ch.send(std::string(64, 'd'));
    EXPECT_THROW(weft::select(weft::on_recv(ch, [](std::optional<std::string> v) {
                   EXPECT_EQ(v, std::string(64, 'd'));
                   throw std::runtime_error("handler");
                 })),
                 std::runtime_error);
    EXPECT_EQ(ch.try_recv().status, weft::channel_status::empty);
  });
}

TEST_P(Channel, MoveOnlyValues) {
  run([&] {
    weft::channel<std::unique_ptr<int>> ch;
    auto producer = spawn([&] { ch.send(std::make_unique<int>(42)); });
    auto v = ch.recv();
    ASSERT_TRUE(v && *v);
    EXPECT_EQ(**v, 42);
    producer.join();
  });
}

TEST_P(Channel, RecvForTimesOut) {
  run([&] {
    weft::channel<int> ch;
    auto r = ch.recv_for(5ms);
    EXPECT_EQ(r.status, channel_status::timeout);
    EXPECT_FALSE(r);
    EXPECT_EQ(ch.send_for(1, 5ms), channel_status::timeout);
  });
}

TEST_P(Channel, SendForTimeoutLeavesQueueAndValue) {
  run([&] {
    weft::channel<std::string> ch;
    std::string v = "mine";
    EXPECT_EQ(ch.send_for(std::move(v), 2ms), channel_status::timeout);
    EXPECT_EQ(v, "mine");
    // The timed-out sender left the queue: a receiver finds nothing.
    EXPECT_EQ(ch.try_recv().status, channel_status::empty);
  });
}

TEST_P(Channel, CancelledReceiverLeavesQueueWithoutSkippingOthers) {
  run([&] {
    weft::channel<int> ch;
    auto first = spawn([&] { return ch.recv(); });
    auto second = spawn([&] { return ch.recv(); });
    settle();
    first.cancel();
    EXPECT_THROW(first.join(), weft::cancelled_error);
    ch.send(1);  // goes to the second, not into the void
    EXPECT_EQ(second.join(), 1);
  });
}

TEST_P(Channel, CancelledSenderKeepsItsValueAndOthersGoOn) {
  run([&] {
    weft::channel<int> ch;
    auto a = spawn([&] { ch.send(1); });
    auto b = spawn([&] { ch.send(2); });
    settle();
    a.cancel();
    EXPECT_THROW(a.join(), weft::cancelled_error);
    EXPECT_EQ(ch.recv(), 2);
    b.join();
    EXPECT_EQ(ch.try_recv().status, channel_status::empty);  // 1 was never sent
  });
}

// Served and cancelled in the same instant: the value is delivered (not lost), and
// the cancellation reaches the fiber's next blocking call.
TEST(ChannelOneScheduler, ValueHandedToCancelledReceiverIsKeptAndCancelStaysPending) {
  run_checked([] {
    weft::channel<int> ch;
    auto receiver = weft::spawn([&] {
      auto v = ch.recv();
      EXPECT_EQ(v, 9);
      EXPECT_THROW(weft::this_fiber::sleep_for(1h), weft::cancelled_error);
      return *v;
    });
    weft::this_fiber::yield();
    receiver.cancel();  // woken "cancelled", but it has not run yet: still queued
    EXPECT_EQ(ch.try_send(9), channel_status::ok);
    EXPECT_EQ(receiver.join(), 9);
  });
}

TEST(ChannelThreads, TrySendFromAnotherThreadWakesReceiver) {
  run_checked([] {
    weft::channel<int> ch(1);
    auto handle = weft::this_scheduler();  // the other thread is a way in: no deadlock
    std::thread t([&ch, handle] {
      while (ch.try_send(5) != channel_status::ok) std::this_thread::yield();
    });
    EXPECT_EQ(ch.recv(), 5);
    t.join();
  });
}

// Two scheduler threads on one channel: one is the lock's home, the other takes the
// remote path, and wake-ups cross threads through the inboxes. Every value arrives
// exactly once.
TEST(ChannelThreads, SharedBetweenTwoSchedulerThreads) {
  weft::channel<int> ch(8);
  constexpr int per_sender = 5000, senders = 4;
  std::vector<int> got;
  std::thread consumer([&] {
    weft::run([&] {
      auto keep_open = weft::this_scheduler();  // woken from another thread: not a deadlock
      std::vector<weft::fiber<void>> fs;
      for (int i = 0; i < 4; ++i)
        fs.push_back(weft::spawn([&] {
          for (int& v : ch) got.push_back(v);
        }));
      for (auto& f : fs) f.join();
    });
  });
  weft::run([&] {
    auto keep_open = weft::this_scheduler();
    std::vector<weft::fiber<void>> fs;
    for (int s = 0; s < senders; ++s)
      fs.push_back(weft::spawn([&ch, s] {
        for (int i = 0; i < per_sender; ++i) ch.send(s * per_sender + i);
      }));
    for (auto& f : fs) f.join();
    ch.close();
  });
  consumer.join();
  ASSERT_EQ(got.size(), std::size_t(senders * per_sender));
  std::sort(got.begin(), got.end());
  for (int i = 0; i < senders * per_sender; ++i) ASSERT_EQ(got[i], i);
}

// channel<int>(-1) used to be an unbounded channel (the -1 converted to SIZE_MAX).
TEST(ChannelArguments, NegativeOrAbsurdCapacityIsInvalidArgument) {
  auto expect_invalid = [](auto make, const std::string& what) {
    try {
      make();
      ADD_FAILURE() << "accepted: " << what;
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).rfind("weft::channel: capacity ", 0), 0u) << e.what();
    }
  };
  expect_invalid([] { weft::channel<int> ch(-1); }, "-1 is negative");
  expect_invalid([] { weft::channel<int> ch(static_cast<long long>(-5)); }, "-5 is negative");
  expect_invalid([] { weft::channel<int> ch(static_cast<std::size_t>(-1)); }, "more than memory can hold");
  expect_invalid([] { weft::channel<std::string> ch(SIZE_MAX / 2); }, "more than memory can hold");
  weft::channel<int> zero(0), some(16), many(std::size_t{1} << 40), endless(weft::unbounded);
  EXPECT_EQ(some.capacity(), 16u);
  EXPECT_EQ(many.capacity(), std::size_t{1} << 40);  // bounded, memory taken as values come
  EXPECT_EQ(endless.capacity(), SIZE_MAX);
}
