// Addresses (parse/print/sockaddr), resolve off the scheduler thread, and the
// helper that runs blocking calls on another thread.
#include <chrono>
#include <thread>

#include <weft/runtime/detail/call_blocking.hpp>
#include "net_test.hpp"

namespace {

using namespace weft_test;
using weft::net::endpoint;
using weft::net::ip_address;

TEST(Address, ParsesAndPrintsBothFamilies) {
  const auto v4 = ip_address::parse("192.0.2.1");
  EXPECT_TRUE(v4.is_v4());
  EXPECT_EQ(v4.to_string(), "192.0.2.1");
  const auto v6 = ip_address::parse("2001:DB8::1");
  EXPECT_TRUE(v6.is_v6());
  EXPECT_EQ(v6.to_string(), "2001:db8::1");
  const auto scoped = ip_address::parse("fe80::1%3");
  EXPECT_EQ(scoped.scope_id(), 3u);
  EXPECT_EQ(scoped.to_string(), "fe80::1%3");
  EXPECT_NE(scoped, ip_address::parse("fe80::1"));
  EXPECT_TRUE(ip_address::v6_loopback().is_loopback());
  EXPECT_TRUE(ip_address::parse("127.3.4.5").is_loopback());
  EXPECT_TRUE(ip_address::v4_any().is_unspecified());
  for (const char* bad : {"", "1.2.3", "256.1.1.1", "::g", "example.com", "1.2.3.4%1", "fe80::1%"})
    EXPECT_FALSE(ip_address::try_parse(bad)) << bad;
  EXPECT_THROW(ip_address::parse("nope"), weft::error);
}

TEST(Address, EndpointsRoundTripThroughTextAndSockaddr) {
  for (const char* text : {"127.0.0.1:80", "[::1]:8080", "0.0.0.0:0", "[2001:db8::5]:65535"}) {
    const endpoint ep = endpoint::parse(text);
    EXPECT_EQ(ep.to_string(), text);
    sockaddr_storage ss;
    const socklen_t len = ep.to_sockaddr(ss);
    EXPECT_EQ(endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&ss), len), ep);
  }
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:80", "[127.0.0.1]:80",
                          "[::1]80", "host:80", "1.2.3.4:8x"})
    EXPECT_FALSE(endpoint::try_parse(bad)) << bad;
}

TEST(Resolve, NumericAndLocalNames) {
  run_checked([] {
    auto numeric = weft::net::resolve("::1", "443");
    ASSERT_EQ(numeric.size(), 1u);
    EXPECT_EQ(numeric[0], endpoint::parse("[::1]:443"));

    auto local = weft::net::resolve("localhost", "7");
    ASSERT_FALSE(local.empty());
    for (const endpoint& ep : local) {
      EXPECT_TRUE(ep.address().is_loopback()) << ep.to_string();
      EXPECT_EQ(ep.port(), 7);
    }

    std::error_code ec;
    EXPECT_TRUE(weft::net::resolve("127.0.0.1", "no-such-service-weft", {}, ec).empty());
    EXPECT_EQ(ec.category(), weft::net::resolve_category());
    EXPECT_THROW(weft::net::resolve("127.0.0.1", "no-such-service-weft"), std::system_error);
  });
}

// resolve's own deadline reaches the pool call (weft::to_thread has its tests in
// tests/runtime/to_thread_test.cpp).
TEST(CallBlocking, DeadlineReturnsNothing) {
  run_checked([] {
    auto late = weft::detail::call_blocking(
        [] {
          std::this_thread::sleep_for(100ms);
          return 1;
        },
        weft::deadline_after(5ms), "test");
    EXPECT_FALSE(late.has_value());
  });
}

TEST(SignalSet, DeliversASignalToTheWaitingFiber) {
  run_checked([] {
    weft::signal_set signals{SIGUSR1, SIGUSR2};
    EXPECT_FALSE(signals.wait_for(5ms).has_value());
    auto waiter = weft::spawn([&] { return signals.wait(); });
    weft::this_fiber::yield();
    ::raise(SIGUSR2);  // to this thread: helper threads of earlier tests may still run
    EXPECT_EQ(waiter.join(), SIGUSR2);
  });
}

}  // namespace
