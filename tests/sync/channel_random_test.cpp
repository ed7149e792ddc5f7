// Randomized: many fibers send, receive and select on a few channels of every kind,
// with deadlines and cancellations mixed in; every value sent is received exactly
// once.
#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;
using weft::channel_status;

namespace {

constexpr int channel_count = 4;
using channels = std::array<std::unique_ptr<weft::channel<int>>, channel_count>;

// send_one delivers v through one randomly chosen form; a form that fails (full,
// timeout, cancelled) leaves v untouched, so the producer simply tries again.
void send_one(channels& chs, std::mt19937& rng, int v) {
  for (;;) {
    auto& a = *chs[rng() % channel_count];
    auto& b = *chs[rng() % channel_count];
    try {
      switch (rng() % 5) {
        case 0: a.send(int(v)); return;
        case 1:
          if (a.try_send(int(v)) == channel_status::ok) return;
          weft::this_fiber::yield();
          break;
        case 2:
          if (a.send_for(int(v), std::chrono::microseconds(rng() % 300)) == channel_status::ok) return;
          break;
        case 3: {
          int copy = v;
          weft::select(weft::on_send(a, copy), weft::on_send(b, copy));
          return;
        }
        case 4: {
          int copy = v;
          if (weft::select_for(std::chrono::microseconds(rng() % 300), weft::on_send(a, copy), weft::on_send(b, copy)))
            return;
          break;
        }
      }
    } catch (const weft::cancelled_error&) {
      // Chaos cancelled us mid-send: nothing was sent, try again.
    }
  }
}

}  // namespace

TEST(ChannelRandom, EveryValueSentIsReceivedExactlyOnce) {
  run_checked([] {
    channels chs;
    chs[0] = std::make_unique<weft::channel<int>>();       // unbuffered
    chs[1] = std::make_unique<weft::channel<int>>(1);
    chs[2] = std::make_unique<weft::channel<int>>(16);
    chs[3] = std::make_unique<weft::channel<int>>(weft::unbounded);
    constexpr int producers = 12, consumers = 9, per_producer = 1500;

    std::vector<int> received;
    std::vector<weft::fiber<void>> producer_fibers, consumer_fibers;
    for (int p = 0; p < producers; ++p)
      producer_fibers.push_back(weft::spawn([&chs, p] {
        std::mt19937 rng(p);
        for (int i = 0; i < per_producer; ++i) send_one(chs, rng, p * per_producer + i);
      }));
    for (int c = 0; c < consumers; ++c)
      consumer_fibers.push_back(weft::spawn([&chs, &received, c] {
        std::mt19937 rng(1000 + c);
        std::array<bool, channel_count> ended{};
        auto take = [&](int i, std::optional<int> v) {
          if (v)
            received.push_back(*v);
          else
            ended[i] = true;
        };
        while (!std::all_of(ended.begin(), ended.end(), [](bool e) { return e; })) {
          const int i = rng() % channel_count;
          auto& ch = *chs[i];
          try {
            switch (rng() % 4) {
              case 0: take(i, ch.recv()); break;
              case 1: {
                auto r = ch.try_recv();
                if (r.status == channel_status::empty) weft::this_fiber::yield();
                if (r.status == channel_status::ok || r.status == channel_status::closed) take(i, std::move(r.value));
                break;
              }
              case 2: {
                auto r = ch.recv_for(std::chrono::microseconds(rng() % 300));
                if (r.status != channel_status::timeout) take(i, std::move(r.value));
                break;
              }
              case 3:
                weft::select_for(std::chrono::microseconds(rng() % 300),
                                 weft::on_recv(*chs[0], [&](std::optional<int> v) { take(0, v); }),
                                 weft::on_recv(*chs[1], [&](std::optional<int> v) { take(1, v); }),
                                 weft::on_recv(*chs[2], [&](std::optional<int> v) { take(2, v); }),
                                 weft::on_recv(*chs[3], [&](std::optional<int> v) { take(3, v); }));
                break;
            }
          } catch (const weft::cancelled_error&) {
            // Cancelled mid-receive: nothing was taken.
          }
        }
      }));
    // Chaos: cancel random producers and consumers while they work.
    auto chaos = weft::spawn([&] {
      std::mt19937 rng(7);
      for (int i = 0; i < 400; ++i) {
        weft::this_fiber::sleep_for(std::chrono::microseconds(rng() % 200));
        if (rng() % 2)
          producer_fibers[rng() % producers].cancel();
        else
          consumer_fibers[rng() % consumers].cancel();
      }
    });
    chaos.join();
    for (auto& f : producer_fibers) f.join();
    for (auto& ch : chs) ch->close();
    for (auto& f : consumer_fibers) f.join();

    ASSERT_EQ(received.size(), std::size_t(producers * per_producer));
    std::sort(received.begin(), received.end());
    for (int i = 0; i < producers * per_producer; ++i) ASSERT_EQ(received[i], i) << "lost or duplicated";
  });
}
