// Field cases for buffered channels on their shared ring (channel.hpp), first
// found by a breaker helper: destruction right after the last value, a select
// woken to try again beside a destroyed channel or a ready other case, move-only
// values, and a stress of every form at once across both schedulers.
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../weft_test.hpp"
#include <weft/sync/select.hpp>

using namespace weft_test;
using weft::channel_status;

namespace {
template <class T>
bool uses_ring(const weft::channel<T>& ch) { return weft::detail::channel_access::uses_shared_ring(ch); }

template <class T, class Make>
void share(weft::channel<T>& ch, Make make) {
  for (int round = 0; round < 5000 && !uses_ring(ch); ++round) {
    auto producer = weft::spawn({.on = 1}, [&ch, &make, round] { ch.send(make(round)); });
    (void)ch.recv();
    producer.join();
  }
  ASSERT_TRUE(uses_ring(ch));
}
void share(weft::channel<int>& ch) { share(ch, [](int r) { return r; }); }
}  // namespace

// A: receiver gets the last value and destroys the channel; the sender is still inside send().
TEST(SharedChannelField, DestroyAfterLastValueWhileSenderReturns) {
  run_checked(
      [] {
        for (int round = 0; round < 200; ++round) {
          auto ch = std::make_unique<weft::channel<int>>(4);
          share(*ch);
          auto* c = ch.get();
          auto producer = weft::spawn({.on = 1}, [c] { c->send(7); });
          EXPECT_EQ(c->recv(), 7);
          ch.reset();
          producer.join();
        }
      },
      threads(2));
}

// A2: same, with a stale receivers_waiting flag (a receiver timed out earlier): the
// sender takes the lock after its push.
TEST(SharedChannelField, DestroyAfterLastValueStaleFlag) {
  run_checked(
      [] {
        for (int round = 0; round < 200; ++round) {
          auto ch = std::make_unique<weft::channel<int>>(4);
          share(*ch);
          auto* c = ch.get();
          EXPECT_EQ(c->recv_for(std::chrono::microseconds(100)).status, channel_status::timeout);
          std::atomic<bool> go{false};
          auto producer = weft::spawn({.on = 1}, [c, &go] {
            while (!go.load()) {}
            c->send(7);
          });
          go = true;
          std::optional<int> v;
          for (int i = 0; i < 100000000 && !v; ++i) {
            auto r = c->try_recv();
            if (r) v = *r;
          }
          EXPECT_EQ(v, 7);
          ch.reset();
          producer.join();
        }
      },
      threads(2));
}

// B: select waits on a (shared) and b (heap); a's send wakes it to try again and b is
// destroyed before the select runs: the select must not touch b again.
TEST(SharedChannelField, SelectTryAgainAfterOtherCaseChannelDestroyed) {
  run_checked(
      [] {
        weft::channel<int> a(2);
        share(a);
        auto b = std::make_unique<weft::channel<int>>(2);
        auto sel = weft::spawn({.on = 0}, [&a, pb = b.get()] {
          std::optional<int> got;
          try {
            weft::select(weft::on_recv(a, [&](std::optional<int> v) { got = v; }),
                         weft::on_recv(*pb, [&](std::optional<int> v) { got = v; }));
          } catch (const weft::error& e) {
            return -1;
          }
          return got.value_or(-2);
        });
        for (int i = 0; i < 10000 && weft::detail::channel_access::waiting_receivers(a) < 1; ++i)
          weft::this_fiber::sleep_for(std::chrono::microseconds(50));
        ASSERT_EQ(weft::detail::channel_access::waiting_receivers(a), 1u);
        a.send(1);   // wakes the select to try again (not run yet: same scheduler)
        EXPECT_EQ(*a.try_recv(), 1);  // another receiver overtakes it (allowed on the ring)
        b.reset();   // abandons the select's waiter in b; waits for its acknowledgement
        weft::this_fiber::sleep_for(1ms);
        a.send(2);
        int r = sel.join();
        EXPECT_EQ(r, 2);
      },
      threads(2));
}

// A3: receiver spins on try_recv (never waits), gets the only value and destroys the
// channel; the sender still looks at receivers_waiting after its push.
TEST(SharedChannelField, DestroyAfterLastValueNoWaiter) {
  run_checked(
      [] {
        for (int round = 0; round < 200; ++round) {
          auto ch = std::make_unique<weft::channel<int>>(4);
          share(*ch);
          auto* c = ch.get();
          std::atomic<bool> go{false};
          auto producer = weft::spawn({.on = 1}, [c, &go] {
            while (!go.load()) {}
            c->send(7);
          });
          go = true;
          std::optional<int> v;
          for (int i = 0; i < 100000000 && !v; ++i) {
            auto r = c->try_recv();
            if (r) v = *r;
          }
          EXPECT_EQ(v, 7);
          ch.reset();
          producer.join();
        }
      },
      threads(2));
}

// Control for A3: the same on a channel that keeps its lock (not shared yet).
TEST(SharedChannelField, ControlDestroyAfterLastValueLocked) {
  run_checked(
      [] {
        for (int round = 0; round < 200; ++round) {
          auto ch = std::make_unique<weft::channel<int>>(4);
          auto* c = ch.get();
          std::atomic<bool> go{false};
          auto producer = weft::spawn({.on = 1}, [c, &go] {
            while (!go.load()) {}
            c->send(7);
          });
          go = true;
          std::optional<int> v;
          for (int i = 0; i < 100000000 && !v; ++i) {
            auto r = c->try_recv();
            if (r) v = *r;
          }
          EXPECT_EQ(v, 7);
          ch.reset();
          producer.join();
        }
      },
      threads(2));
}

// F: a select woken to try again by close() completes its case (closed) and the
// handler drops the channel: the destructor waits for the select's retry debt,
// which is paid only after the handler returns.
TEST(SharedChannelField, SelectHandlerDestroysClosedSharedChannel) {
  run_checked(
      [] {
        auto a = std::make_unique<weft::channel<int>>(2);
        share(*a);
        auto* pa = a.get();
        auto sel = weft::spawn({.on = 0}, [&a, pa] {
          weft::select(weft::on_recv(*pa, [&](std::optional<int> v) {
            if (!v) a.reset();  // closed: drop it
          }));
        });
        for (int i = 0; i < 10000 && weft::detail::channel_access::waiting_receivers(*pa) < 1; ++i)
          weft::this_fiber::sleep_for(std::chrono::microseconds(50));
        ASSERT_EQ(weft::detail::channel_access::waiting_receivers(*pa), 1u);
        pa->close();
        sel.join();
        EXPECT_EQ(a, nullptr);
      },
      threads(2));
}

// F: a select woken to try again by close() completes its case (closed) and the
// handler drops the channel: the destructor waits for the select's retry debt,
// which is paid only after the handler returns.
TEST(SharedChannelField, ControlSelectHandlerDestroysClosedLockedChannel) {
  run_checked(
      [] {
        auto a = std::make_unique<weft::channel<int>>(2);
        auto* pa = a.get();
        auto sel = weft::spawn({.on = 0}, [&a, pa] {
          weft::select(weft::on_recv(*pa, [&](std::optional<int> v) {
            if (!v) a.reset();  // closed: drop it
          }));
        });
        for (int i = 0; i < 10000 && weft::detail::channel_access::waiting_receivers(*pa) < 1; ++i)
          weft::this_fiber::sleep_for(std::chrono::microseconds(50));
        ASSERT_EQ(weft::detail::channel_access::waiting_receivers(*pa), 1u);
        pa->close();
        sel.join();
        EXPECT_EQ(a, nullptr);
      },
      threads(2));
}

// S1: fresh channels each round (so the switch happens mid-traffic, with waiters
// queued and values buffered), move-only values, mixed forms, fibers on both
// schedulers and plain threads; every value exactly once, per-sender order kept.
namespace {
struct stress_params {
  std::size_t capacity;
  int senders_per_sched;
  int receivers_per_sched;
  int per_sender;
};
}  // namespace

class SharedChannelStress : public ::testing::TestWithParam<std::size_t> {};

TEST_P(SharedChannelStress, ExactlyOnceMixedForms) {
  const std::size_t cap = GetParam();
  const auto t_end = std::chrono::steady_clock::now() + std::chrono::seconds(8);  // a hang guard
  int rounds = 0, switched = 0;
  for (int round = 0; round < 20 && std::chrono::steady_clock::now() < t_end; ++round, ++rounds) {
    constexpr int fsenders = 4, tsenders = 1, per = 3000;
    constexpr int total_senders = fsenders + tsenders;
    std::vector<std::atomic<int>> seen(total_senders * per);
    std::atomic<long> received{0};
    run_checked(
        [&] {
          weft::channel<std::unique_ptr<int>> ch(cap);
          std::atomic<int> senders_left{total_senders};
          auto send_one = [&](int id, int i, int mode) {
            auto p = std::make_unique<int>(id * per + i);
            switch (mode % 4) {
              case 0: ch.send(std::move(p)); break;
              case 1:
                while (ch.send_for(std::move(p), std::chrono::microseconds(30)) == channel_status::timeout)
                  ASSERT_TRUE(p);  // untouched on timeout
                break;
              case 2: {
                int spins = 0;
                while (ch.try_send(std::move(p)) == channel_status::full) {
                  ASSERT_TRUE(p);
                  if (++spins % 16 == 0) {
                    if (weft::detail::this_fiber_scheduler) weft::this_fiber::yield();
                    else std::this_thread::yield();
                  }
                }
                break;
              }
              case 3:
                if (weft::detail::this_fiber_scheduler) {
                  weft::select(weft::on_send(ch, p));
                } else {
                  ch.send(std::move(p));
                }
                break;
            }
          };
          auto done_sender = [&] {
            if (senders_left.fetch_sub(1) == 1) ch.close();
          };
          auto take = [&](std::unique_ptr<int>& p, std::vector<int>& last) {
            ASSERT_TRUE(p);
            int v = *p;
            seen[v].fetch_add(1);
            EXPECT_GT(v % per, last[v / per]) << "order";
            last[v / per] = v % per;
            received.fetch_add(1);
          };
          auto receiver = [&](int mode) {
            std::vector<int> last(total_senders, -1);
            for (int n = 0;; ++n) {
              switch ((mode + n) % 4) {
                case 0: {
                  auto v = ch.recv();
                  if (!v) return;
                  take(*v, last);
                  break;
                }
                case 1: {
                  auto r = ch.recv_for(std::chrono::microseconds(30));
                  if (r.status == channel_status::closed) return;
                  if (r) take(*r.value, last);
                  else ASSERT_EQ(r.status, channel_status::timeout);
                  break;
                }
                case 2: {
                  auto r = ch.try_recv();
                  if (r.status == channel_status::closed) return;
                  if (r) take(*r.value, last);
                  else if (weft::detail::this_fiber_scheduler) weft::this_fiber::yield();
                  else std::this_thread::yield();
                  break;
                }
                case 3: {
                  if (!weft::detail::this_fiber_scheduler) break;
                  bool closed = false;
                  weft::select(weft::on_recv(ch, [&](std::optional<std::unique_ptr<int>> v) {
                    if (!v) closed = true;
                    else take(*v, last);
                  }));
                  if (closed) return;
                  break;
                }
              }
            }
          };
          std::vector<weft::fiber<void>> fibers;
          for (int id = 0; id < fsenders; ++id)
            fibers.push_back(weft::spawn({.on = static_cast<std::size_t>(id % 2)}, [&, id] {
              for (int i = 0; i < per; ++i) send_one(id, i, id + i / 7);
              done_sender();
            }));
          for (int r = 0; r < 4; ++r)
            fibers.push_back(weft::spawn({.on = static_cast<std::size_t>(r % 2)}, [&, r] { receiver(r); }));
          std::thread ts([&] {
            for (int i = 0; i < per; ++i) send_one(fsenders, i, i / 5);
            done_sender();
          });
          std::thread tr([&] { receiver(1); });
          for (auto& f : fibers) f.join();
          ts.join();
          tr.join();
          if (uses_ring(ch)) ++switched;
          EXPECT_EQ(ch.size(), 0u);
        },
        threads(2));
    for (int v = 0; v < total_senders * per; ++v) ASSERT_EQ(seen[v].load(), 1) << "value " << v << " round " << round;
    if (HasFailure()) break;
  }
  EXPECT_GT(switched, 0) << "no round switched to the shared ring, of " << rounds;
}

INSTANTIATE_TEST_SUITE_P(Caps, SharedChannelStress, ::testing::Values(1, 2, 3, 5, 8));

// G: a push to a shared channel wakes one waiter to try again; if that waiter is a
// select that then completes another ready case, the value stays in the ring and
// the next waiting receiver is never woken.
TEST(SharedChannelField, SelectWokenToTryAgainTakesOtherCaseAndWakeIsLost) {
  run_checked(
      [] {
        weft::channel<int> a(4);
        share(a);
        int lost = 0, rounds = 0;
        for (int round = 0; round < 12; ++round, ++rounds) {
          weft::channel<int> b(1);
          auto sel = weft::spawn({.on = 0}, [&] {
            return weft::select(weft::on_recv(a), weft::on_recv(b));
          });
          for (int i = 0; i < 10000 && weft::detail::channel_access::waiting_receivers(a) < 1; ++i)
            weft::this_fiber::sleep_for(std::chrono::microseconds(50));
          auto r = weft::spawn({.on = 0}, [&] { return a.recv_for(100ms); });
          for (int i = 0; i < 10000 && weft::detail::channel_access::waiting_receivers(a) < 2; ++i)
            weft::this_fiber::sleep_for(std::chrono::microseconds(50));
          ASSERT_EQ(weft::detail::channel_access::waiting_receivers(a), 2u);
          a.send(1);  // wakes the select (first in line) to try again
          b.send(2);  // b is ready too when the select looks again
          const std::size_t chosen = sel.join();
          auto got = r.join();
          if (chosen == 1) {
            // the select took b's value; a's 1 is in the ring and r waits on a
            if (got.status != channel_status::ok) {
              ++lost;
              EXPECT_EQ(a.size(), 1u);
              (void)a.try_recv();
            }
          } else {
            // the select took a's 1; r times out; b holds 2
            EXPECT_EQ(got.status, channel_status::timeout);
            (void)b.try_recv();
          }
        }
        EXPECT_EQ(lost, 0) << "of " << rounds << " rounds, a receiver timed out while a value sat in the channel";
      },
      threads(2));
}

TEST(SharedChannelField, MoveOnlyValuesLeftInRingAtDestructionAndDefaultSelect) {
  run_checked(
      [] {
        {
          weft::channel<std::string> ch(3);
          share(ch, [](int r) { return std::string(100, char('a' + r % 26)); });
          ASSERT_EQ(ch.try_send(std::string(200, 'x')), channel_status::ok);
          ASSERT_EQ(ch.try_send(std::string(200, 'y')), channel_status::ok);
          // select with on_default on the ring
          std::optional<std::string> got;
          EXPECT_EQ(weft::select(weft::on_recv(ch, [&](std::optional<std::string> v) { got = std::move(v); }),
                                 weft::on_default([] {})), 0u);
          EXPECT_EQ(got, std::string(200, 'x'));
          std::string s(300, 'z');
          EXPECT_EQ(weft::select(weft::on_send(ch, s), weft::on_default([] {})), 0u);
          EXPECT_TRUE(s.empty() || s == std::string());  // moved
          std::string t(300, 'w');
          ASSERT_EQ(ch.try_send(std::string(1, 'q')), channel_status::ok);
          EXPECT_EQ(weft::select(weft::on_send(ch, t), weft::on_default([] {})), 1u);
          EXPECT_EQ(t, std::string(300, 'w'));
          EXPECT_EQ(ch.size(), 3u);
          // values left in the ring at destruction: freed (ASan leak check)
        }
        {
          weft::channel<std::unique_ptr<int>> ch(1);
          share(ch, [](int r) { return std::make_unique<int>(r); });
          ASSERT_EQ(ch.try_send(std::make_unique<int>(5)), channel_status::ok);
          auto p = std::make_unique<int>(6);
          EXPECT_EQ(ch.try_send(std::move(p)), channel_status::full);
          ASSERT_TRUE(p);
          EXPECT_EQ(ch.send_for(std::move(p), 1ms), channel_status::timeout);
          ASSERT_TRUE(p);
          ch.close();
          EXPECT_EQ(ch.try_send(std::move(p)), channel_status::closed);
          ASSERT_TRUE(p);
          EXPECT_EQ(ch.size(), 1u);
          auto r = ch.try_recv();
          ASSERT_TRUE(r);
          EXPECT_EQ(**r, 5);
          EXPECT_EQ(ch.try_recv().status, channel_status::closed);
          EXPECT_EQ(ch.recv_for(1ms).status, channel_status::closed);
        }
        {
          weft::channel<std::unique_ptr<int>> ch(3);
          share(ch, [](int r) { return std::make_unique<int>(r); });
          for (int i = 0; i < 3; ++i) ASSERT_EQ(ch.try_send(std::make_unique<int>(i)), channel_status::ok);
          ch.close();
        }
      },
      threads(2));
}

// G2: the sender side of G: a pop wakes one waiting sender to try again; a select
// that takes another case leaves the room unused and the next sender asleep.
TEST(SharedChannelField, SelectSendWokenToTryAgainTakesOtherCaseAndWakeIsLost) {
  run_checked(
      [] {
        weft::channel<int> a(1);
        share(a);
        int lost = 0, rounds = 0;
        for (int round = 0; round < 12; ++round, ++rounds) {
          ASSERT_EQ(a.try_send(0), channel_status::ok);  // full
          weft::channel<int> b(1);
          auto sel = weft::spawn({.on = 0}, [&] { return weft::select(weft::on_send(a, 1), weft::on_recv(b)); });
          weft::this_fiber::sleep_for(2ms);  // the select waits in a
          auto s = weft::spawn({.on = 0}, [&] { return a.send_for(2, 100ms); });
          weft::this_fiber::sleep_for(2ms);  // both queued as senders of a, select first
          EXPECT_EQ(*a.try_recv(), 0);  // room: wakes the select to try again
          b.send(9);                    // b is ready too when it looks again
          const std::size_t chosen = sel.join();
          const channel_status st = s.join();
          if (chosen == 1 && st != channel_status::ok) {
            ++lost;
            EXPECT_EQ(a.size(), 0u);
          }
          while (a.try_recv()) {}
          while (b.try_recv()) {}
        }
        EXPECT_EQ(lost, 0) << "of " << rounds << " rounds, a sender timed out while the channel had room";
      },
      threads(2));
}
