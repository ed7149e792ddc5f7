// Buffered channels shared between schedulers, which switch to the lock-free ring
// (channel.hpp, "Shared between threads"): every value received exactly once and in
// each sender's order, close racing sends, the try and deadline forms, select,
// cancellation, destruction and plain threads, all on the ring.
#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "../weft_test.hpp"
#include <weft/sync/select.hpp>

using namespace weft_test;
using weft::channel_status;

namespace {

bool uses_ring(const weft::channel<int>& ch) { return weft::detail::channel_access::uses_shared_ring(ch); }

// share makes `ch` (buffered, empty) switch to its ring: this fiber (on scheduler
// 0) waits in recv while a fiber on scheduler 1 sends, until the lock is shared
// and a wait has made the switch. Bounded: a few thousand rounds at most.
void share(weft::channel<int>& ch) {
  for (int round = 0; round < 5000 && !uses_ring(ch); ++round) {
    auto producer = weft::spawn({.on = 1}, [&ch, round] { ch.send(round); });
    EXPECT_EQ(ch.recv(), round);  // usually waits: the producer starts a little later
    producer.join();
  }
  ASSERT_TRUE(uses_ring(ch)) << "the channel did not switch to its shared ring";
  ASSERT_EQ(ch.size(), 0u);
}

}  // namespace

TEST(SharedChannel, SwitchesWhenTwoSchedulersTakeTurnsAndKeepsOrder) {
  run_checked(
      [] {
        weft::channel<int> ch(8);
        share(ch);
        constexpr int count = 100000;
        auto consumer = weft::spawn({.on = 1}, [&] {
          int expected = 0;
          for (int& v : ch) {
            EXPECT_EQ(v, expected);
            expected = v + 1;
          }
          EXPECT_EQ(expected, count);
        });
        for (int i = 0; i < count; ++i) ch.send(i);
        ch.close();
        consumer.join();
      },
      threads(2));
}

TEST(SharedChannel, ValuesBufferedBeforeTheSwitchComeFirst) {
  run_checked(
      [] {
        weft::channel<int> ch(16);
        // The switch comes at a sender's wait on a full buffer: what it holds moves
        // to the ring in order, and the waiting sender tries again behind it.
        for (int round = 0; round < 5000 && !uses_ring(ch); ++round) {
          for (int i = 0; i < 16; ++i) ch.send(i);
          auto consumer = weft::spawn({.on = 1}, [&] {
            for (int i = 0; i <= 16; ++i) EXPECT_EQ(ch.recv(), i);
          });
          ch.send(16);  // usually waits: the consumer starts a little later
          consumer.join();
        }
        ASSERT_TRUE(uses_ring(ch));
        EXPECT_EQ(ch.size(), 0u);
        for (int i = 0; i < 16; ++i) ASSERT_EQ(ch.try_send(i), channel_status::ok);
        EXPECT_EQ(ch.try_send(99), channel_status::full);
        EXPECT_EQ(ch.size(), 16u);
        for (int i = 0; i < 16; ++i) {
          auto r = ch.try_recv();
          ASSERT_TRUE(r);
          EXPECT_EQ(*r, i);
        }
        EXPECT_EQ(ch.try_recv().status, channel_status::empty);
      },
      threads(2));
}

TEST(SharedChannel, ManySendersAndReceiversOnTwoSchedulersGetEveryValueOnce) {
  constexpr int senders = 4, receivers = 4, per_sender = 20000;
  std::vector<std::atomic<int>> seen(senders * per_sender);
  run_checked(
      [&] {
        weft::channel<int> ch(4);
        share(ch);
        std::vector<weft::fiber<void>> fibers;
        std::atomic<int> senders_left{senders};
        for (int p = 0; p < senders; ++p)
          fibers.push_back(weft::spawn({.on = static_cast<std::size_t>(p % 2)}, [&, p] {
            for (int i = 0; i < per_sender; ++i) ch.send(p * per_sender + i);
            if (senders_left.fetch_sub(1) == 1) ch.close();
          }));
        for (int c = 0; c < receivers; ++c)
          fibers.push_back(weft::spawn({.on = static_cast<std::size_t>(c % 2)}, [&] {
            std::vector<int> last(senders, -1);  // each sender's values arrive in its order
            for (int& v : ch) {
              seen[v].fetch_add(1);
              EXPECT_GT(v % per_sender, last[v / per_sender]);
              last[v / per_sender] = v % per_sender;
            }
          }));
        for (auto& f : fibers) f.join();
      },
      threads(2));
  for (int v = 0; v < senders * per_sender; ++v) ASSERT_EQ(seen[v].load(), 1) << "value " << v;
}

TEST(SharedChannel, CloseRacingSendsLosesNoValueThatWasSent) {
  run_checked(
      [] {
        for (int round = 0; round < 200; ++round) {
          weft::channel<int> ch(3);
          share(ch);
          std::atomic<long> sent{0}, received{0};
          auto sender = [&] {
            for (int i = 1;; ++i) {
              if (ch.send_for(i, 1s) != channel_status::ok) return;  // closed
              sent += i;
            }
          };
          auto s0 = weft::spawn({.on = 0}, sender);
          auto s1 = weft::spawn({.on = 1}, sender);
          auto r1 = weft::spawn({.on = 1}, [&] {
            for (int& v : ch) received += v;
          });
          for (int i = 0; i < round % 5; ++i) weft::this_fiber::yield();
          ch.close();
          s0.join();
          s1.join();
          r1.join();
          EXPECT_EQ(sent.load(), received.load()) << "round " << round;
        }
      },
      threads(2));
}

TEST(SharedChannel, TryAndDeadlineFormsOnTheRing) {
  run_checked(
      [] {
        weft::channel<int> ch(2);
        share(ch);
        EXPECT_EQ(ch.try_recv().status, channel_status::empty);
        EXPECT_EQ(ch.recv_for(5ms).status, channel_status::timeout);
        EXPECT_EQ(ch.send_for(1, 5ms), channel_status::ok);
        EXPECT_EQ(ch.send_for(2, 5ms), channel_status::ok);
        int kept = 3;
        EXPECT_EQ(ch.send_for(std::move(kept), 5ms), channel_status::timeout);
        EXPECT_EQ(ch.try_send(4), channel_status::full);
        // A receiver on the other scheduler makes room for a sender that waits.
        auto receiver = weft::spawn({.on = 1}, [&] {
          weft::this_fiber::sleep_for(2ms);
          EXPECT_EQ(ch.recv(), 1);
        });
        EXPECT_EQ(ch.send_for(5, 10s), channel_status::ok);
        receiver.join();
        EXPECT_EQ(ch.recv(), 2);
        EXPECT_EQ(ch.recv(), 5);
        ch.close();
        EXPECT_EQ(ch.try_send(6), channel_status::closed);
        EXPECT_THROW(ch.send(7), weft::channel_closed_error);
        EXPECT_EQ(ch.recv(), std::nullopt);
        EXPECT_EQ(ch.try_recv().status, channel_status::closed);
      },
      threads(2));
}

TEST(SharedChannel, AWaitingReceiverIsCancelledAndTheNextValueIsNotLost) {
  run_checked(
      [] {
        weft::channel<int> ch(4);
        share(ch);
        auto waiter = weft::spawn({.on = 1}, [&] { (void)ch.recv(); });
        weft::this_fiber::sleep_for(2ms);
        waiter.cancel();
        EXPECT_THROW(waiter.join(), weft::cancelled_error);
        ch.send(42);
        EXPECT_EQ(ch.size(), 1u);
        auto r = weft::spawn({.on = 1}, [&] { return ch.recv(); });
        EXPECT_EQ(r.join(), 42);
      },
      threads(2));
}

TEST(SharedChannel, SelectOverSharedChannelsSendsAndReceives) {
  run_checked(
      [] {
        weft::channel<int> a(2), b(2);
        share(a);
        share(b);
        constexpr int count = 20000;
        // The other scheduler feeds a and b; select here takes from both.
        auto feeder = weft::spawn({.on = 1}, [&] {
          for (int i = 0; i < count; ++i) (i % 2 ? a : b).send(i);
          a.close();
          b.close();
        });
        long sum = 0;
        int open = 2, got = 0;
        while (open > 0) {
          auto take = [&](std::optional<int> v) {
            if (v) {
              sum += *v;
              ++got;
            } else {
              --open;
            }
          };
          if (open == 2)
            weft::select(weft::on_recv(a, take), weft::on_recv(b, take));
          else
            weft::select(weft::on_recv(a.closed() && a.size() == 0 ? b : a, take));
        }
        feeder.join();
        EXPECT_EQ(got, count);
        EXPECT_EQ(sum, long{count} * (count - 1) / 2);

        // A select's send case waits for room on the ring.
        weft::channel<int> c(1);
        share(c);
        c.send(1);
        auto drain = weft::spawn({.on = 1}, [&] {
          weft::this_fiber::sleep_for(2ms);
          EXPECT_EQ(c.recv(), 1);
          EXPECT_EQ(c.recv(), 2);
        });
        EXPECT_EQ(weft::select(weft::on_send(c, 2)), 0u);
        drain.join();
      },
      threads(2));
}

TEST(SharedChannel, DestroyedWhileAReceiverWaitsOnTheRing) {
  run_checked(
      [] {
        auto ch = std::make_unique<weft::channel<int>>(4);
        share(*ch);
        auto waiter = weft::spawn({.on = 1}, [c = ch.get()] { (void)c->recv(); });
        for (int i = 0; i < 10000 && weft::detail::channel_access::waiting_receivers(*ch) < 1; ++i)
          weft::this_fiber::sleep_for(std::chrono::microseconds(50));
        ch.reset();
        try {
          waiter.join();
          ADD_FAILURE() << "recv returned from a destroyed channel";
        } catch (const weft::error& e) {
          EXPECT_EQ(e.code(), weft::errc::destroyed_while_waiting);
        }
      },
      threads(2));
}

// close() then destruction at once, while receivers on the other scheduler were
// woken to try again: the destructor waits until they are done with it (ASan).
TEST(SharedChannel, DestroyedRightAfterCloseWhileWokenReceiversLookAgain) {
  run_checked(
      [] {
        for (int round = 0; round < 300; ++round) {
          auto ch = std::make_unique<weft::channel<int>>(2);
          share(*ch);
          std::atomic<int> ends{0};
          auto r1 = weft::spawn({.on = 1}, [&, c = ch.get()] {
            if (!c->recv()) ++ends;
          });
          auto r2 = weft::spawn({.on = 1}, [&, c = ch.get()] {
            if (!c->recv()) ++ends;
          });
          // Both parked (a receiver still on its way in would be using a channel
          // its owner destroys: the owner's bug, not this test's point).
          for (int i = 0; i < 10000 && weft::detail::channel_access::waiting_receivers(*ch) < 2; ++i)
            weft::this_fiber::sleep_for(std::chrono::microseconds(50));
          ASSERT_EQ(weft::detail::channel_access::waiting_receivers(*ch), 2u);
          ch->close();
          ch.reset();
          r1.join();
          r2.join();
          EXPECT_EQ(ends.load(), 2);
        }
      },
      threads(2));
}

TEST(SharedChannel, PlainThreadAndFibersShareTheRing) {
  run_checked(
      [] {
        weft::channel<int> ch(8);
        share(ch);
        constexpr int count = 50000;
        std::thread producer([&] {
          for (int i = 0; i < count; ++i) ch.send(i);
          ch.close();
        });
        long sum = 0;
        int expected = 0;
        for (int& v : ch) {
          EXPECT_EQ(v, expected++);
          sum += v;
        }
        producer.join();
        EXPECT_EQ(sum, long{count} * (count - 1) / 2);
      },
      threads(2));
}

// Channels the ring is not for keep the lock: unbuffered, unbounded, and one whose
// slots would take more than 1 MiB.
TEST(SharedChannel, UnbufferedUnboundedAndHugeChannelsKeepTheLock) {
  run_checked(
      [] {
        weft::channel<int> unbuffered, unbounded(weft::unbounded), huge(1 << 20);
        for (weft::channel<int>* ch : {&unbuffered, &unbounded, &huge}) {
          for (int round = 0; round < 200; ++round) {
            auto consumer = weft::spawn({.on = 1}, [&] { (void)ch->recv(); });
            weft::this_fiber::yield();
            ch->send(round);
            consumer.join();
          }
          EXPECT_FALSE(uses_ring(*ch));
        }
      },
      threads(2));
}

// A select woken to try again owes its channel a count until it is done with it;
// it settles that before the handler runs, which may destroy the channel (ASan).
TEST(SharedChannel, SelectHandlerMayDestroyTheChannelItWasWokenFrom) {
  run_checked(
      [] {
        for (int round = 0; round < 50; ++round) {
          auto ch = std::make_unique<weft::channel<int>>(2);
          share(*ch);
          auto feeder = weft::spawn({.on = 1}, [c = ch.get()] {
            weft::this_fiber::sleep_for(std::chrono::microseconds(500));
            c->send(7);
          });
          int got = 0;
          weft::select(weft::on_recv(*ch, [&](std::optional<int> v) {
            got = v.value_or(-1);
            feeder.join();
            ch.reset();
          }));
          EXPECT_EQ(got, 7);
        }
      },
      threads(2));
}
