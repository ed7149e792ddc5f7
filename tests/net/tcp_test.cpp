// TCP streams and listeners: data integrity, EOF and half-close, resets, deadlines,
// cancellation and close while blocked, vectored writes, fd exhaustion, 1,000
// concurrent connections.
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net_test.hpp"

namespace {

using namespace weft_test;
using weft::net::tcp_listener;
using weft::net::tcp_stream;

TEST(Tcp, EchoRoundTripWithAddresses) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const auto at = listener.local_endpoint();
    EXPECT_NE(at.port(), 0);
    auto server = weft::spawn([&] {
      tcp_stream conn = listener.accept();
      echo_connection(conn);
    });
    tcp_stream client = tcp_stream::connect(at);
    EXPECT_EQ(client.peer_endpoint(), at);
    EXPECT_TRUE(client.local_endpoint().address().is_loopback());
    client.set_nodelay(true);
    EXPECT_TRUE(client.nodelay());
    for (std::uint32_t i = 0; i < 50; ++i) {
      const std::string msg = pattern(i, 1 + i * 37);
      client.write_all(msg);
      std::string back(msg.size(), '\0');
      client.read_exact(back);
      ASSERT_EQ(back, msg);
    }
    client.shutdown(weft::net::shutdown_type::write);
    char c;
    EXPECT_EQ(client.read_some({&c, 1}), 0u);  // the server saw EOF and closed
    server.join();
  });
}

TEST(Tcp, ConnectByNameAndIpv6Loopback) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    auto server = weft::spawn([&] { tcp_stream conn = listener.accept(); });
    tcp_stream client = tcp_stream::connect("127.0.0.1", std::to_string(listener.local_endpoint().port()));
    EXPECT_TRUE(client.is_open());
    server.join();

    std::error_code ec;
    auto v6 = tcp_listener::bind({weft::net::ip_address::v6_loopback(), 0}, {}, ec);
    if (ec) return;  // no IPv6 on this machine
    auto server6 = weft::spawn([&] { tcp_stream conn = v6.accept(); echo_connection(conn); });
    tcp_stream c6 = tcp_stream::connect(v6.local_endpoint());
    EXPECT_TRUE(c6.local_endpoint().address().is_v6());
    c6.write_all("six");
    char buf[3];
    c6.read_exact(buf);
    EXPECT_EQ(std::string(buf, 3), "six");
    c6.close();
    server6.join();
  });
}

TEST(Tcp, ConnectToClosedPortIsRefused) {
  run_checked([] {
    weft::net::endpoint closed;
    {
      auto l = tcp_listener::bind(loopback_any_port());
      closed = l.local_endpoint();
    }  // closed again: nobody listens there now
    try {
      tcp_stream::connect(closed);
      ADD_FAILURE() << "connect succeeded";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::connection_refused) << e.what();
    }
    std::error_code ec;
    tcp_stream s = tcp_stream::connect(closed, {}, ec);
    EXPECT_EQ(ec, std::errc::connection_refused);
    EXPECT_FALSE(s.is_open());
  });
}

TEST(Tcp, ReadExactReportsEarlyEndOfStream) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    auto server = weft::spawn([&] {
      tcp_stream conn = listener.accept();
      conn.write_all("abc");
    });  // closes after 3 bytes
    tcp_stream client = tcp_stream::connect(listener.local_endpoint());
    char buf[8];
    std::error_code ec;
    EXPECT_EQ(client.read_exact(buf, ec), 3u);
    EXPECT_EQ(ec, weft::errc::end_of_stream);
    EXPECT_EQ(std::string(buf, 3), "abc");
    EXPECT_EQ(client.read_some(buf), 0u);
    server.join();
  });
}

TEST(Tcp, HalfClosedPeerStillGetsItsAnswer) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    auto server = weft::spawn([&] {
      tcp_stream conn = listener.accept();
      std::string all;
      char buf[100];
      while (std::size_t n = conn.read_some(buf)) all.append(buf, n);  // until the client's FIN
      conn.write_all("got " + std::to_string(all.size()));
    });
    tcp_stream client = tcp_stream::connect(listener.local_endpoint());
    client.write_all(pattern(1, 1000));
    client.shutdown(weft::net::shutdown_type::write);
    std::string reply;
    char buf[100];
    while (std::size_t n = client.read_some(buf)) reply.append(buf, n);
    EXPECT_EQ(reply, "got 1000");
    server.join();
  });
}

TEST(Tcp, PeerResetMidStreamIsAnError) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    weft::event sent;
    auto server = weft::spawn([&] {
      tcp_stream conn = listener.accept();
      conn.write_all("partial");
      sent.wait();
      // SO_LINGER 0: close sends RST instead of FIN.
      linger lin{1, 0};
      ::setsockopt(conn.native_handle(), SOL_SOCKET, SO_LINGER, &lin, sizeof lin);
    });
    tcp_stream client = tcp_stream::connect(listener.local_endpoint());
    char buf[7];
    client.read_exact(buf);
    sent.set();
    server.join();
    std::error_code ec;
    char more[16];
    client.read_some(more, ec);
    EXPECT_EQ(ec, std::errc::connection_reset);
    // Writes after the reset fail too (EPIPE, not a SIGPIPE that kills the process).
    client.write_all("x", ec);
    EXPECT_TRUE(ec == std::errc::broken_pipe || ec == std::errc::connection_reset) << ec.message();
  });
}

TEST(Tcp, SlowPeerDoesNotHoldUpOthers) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    std::vector<weft::fiber<void>> handlers;
    auto acceptor = weft::spawn([&] {
      for (int i = 0; i < 2; ++i)
        handlers.push_back(weft::spawn([conn = listener.accept()]() mutable { echo_connection(conn); }));
    });
    const std::string slow_msg = pattern(7, 20);
    weft::event fast_done;
    auto slow = weft::spawn([&] {
      tcp_stream s = tcp_stream::connect(listener.local_endpoint());
      s.set_nodelay(true);
      s.write_all({slow_msg.data(), 1});  // the server's reader now waits mid-message
      fast_done.wait();                  // ... while the fast client is served in full
      for (std::size_t i = 1; i < slow_msg.size(); ++i) {
        s.write_all({slow_msg.data() + i, 1});
        weft::this_fiber::sleep_for(1ms);
      }
      std::string back(slow_msg.size(), '\0');
      s.read_exact(back);
      EXPECT_EQ(back, slow_msg);
    });
    weft::this_fiber::sleep_for(5ms);
    tcp_stream fast = tcp_stream::connect(listener.local_endpoint());
    for (std::uint32_t i = 0; i < 200; ++i) {
      const std::string msg = pattern(i, 64);
      fast.write_all(msg);
      std::string back(64, '\0');
      fast.read_exact(back);
      ASSERT_EQ(back, msg);
    }
    fast_done.set();
    slow.join();
    fast.close();
    acceptor.join();
    for (auto& h : handlers) h.join();
  });
}

TEST(Tcp, SilentPeerHitsTheDeadlineAndTheStreamStaysUsable) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    tcp_stream client = tcp_stream::connect(listener.local_endpoint());
    tcp_stream server = listener.accept();
    char buf[16];
    EXPECT_THROW(client.read_some(buf, 20ms), weft::timeout_error);
    std::error_code ec;
    EXPECT_EQ(client.read_some(buf, weft::clock::now() + 5ms, ec), 0u);
    EXPECT_EQ(ec, weft::errc::timed_out);
    // Nothing was consumed: data sent now is read in full.
    server.write_all("late");
    EXPECT_EQ(client.read_exact({buf, 4}, 10s), 4u);
    EXPECT_EQ(std::string(buf, 4), "late");
    EXPECT_THROW(listener.accept(10ms), weft::timeout_error);
  });
}

TEST(Tcp, CancelledReaderUnwindsAndClosesItsSocket) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const int fds_before = open_fd_count();
    bool unwound = false;
    auto reader = weft::spawn([&] {
      tcp_stream s = tcp_stream::connect(listener.local_endpoint());
      struct mark {
        bool& flag;
        ~mark() { flag = true; }
      } m{unwound};
      char buf[16];
      s.read_some(buf);  // never answered
      ADD_FAILURE() << "read returned";
    });
    tcp_stream peer = listener.accept();
    weft::this_fiber::sleep_for(2ms);
    reader.cancel();
    EXPECT_THROW(reader.join(), weft::cancelled_error);
    EXPECT_TRUE(unwound);
    peer.close();
    EXPECT_EQ(open_fd_count(), fds_before);
  });
}

TEST(Tcp, CloseWakesABlockedAcceptAndRead) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    auto acceptor = weft::spawn([&] {
      std::error_code ec;
      tcp_stream s = listener.accept(ec);
      EXPECT_EQ(ec, weft::errc::socket_closed);
      EXPECT_FALSE(s.is_open());
    });
    weft::this_fiber::yield();
    listener.close();
    acceptor.join();
    try {  // weft's own condition: a weft::error, like every misuse
      listener.accept();
      ADD_FAILURE() << "accepted on a closed listener";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::socket_closed);
      EXPECT_STREQ(e.what(), "weft::net::tcp_listener::accept: socket is closed");
    }

    auto [a, b] = weft::net::unix_stream::pair();
    auto reader = weft::spawn([&a = a] {
      char buf[4];
      EXPECT_THROW(a.read_some(buf), weft::error);
    });
    weft::this_fiber::yield();
    a.close();
    reader.join();
  });
}

TEST(Tcp, LargeAndVectoredWritesArriveIntact) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const std::string big = pattern(3, 8 << 20);  // far beyond the socket buffers
    const std::string head = "head:", tail = ":tail";
    auto writer = weft::spawn([&] {
      tcp_stream conn = listener.accept();
      const std::array<weft::net::const_buffer, 3> parts{head, big, tail};
      EXPECT_EQ(conn.write_all(parts), head.size() + big.size() + tail.size());
    });
    tcp_stream client = tcp_stream::connect(listener.local_endpoint());
    std::string got;
    std::vector<char> buf(100000);
    std::size_t n;
    while ((n = client.read_some(buf)) != 0) {
      got.append(buf.data(), n);
      if (got.size() % 7 == 0) weft::this_fiber::sleep_for(0ms);  // a slowish reader
    }
    writer.join();
    EXPECT_TRUE(got == head + big + tail) << "received " << got.size() << " bytes";
  });
}

TEST(Tcp, MisuseIsReported) {
  EXPECT_THROW(weft::net::endpoint::parse("1.2.3.4"), weft::error);
  run_checked([] {
    tcp_stream closed;
    char buf[4];
    std::error_code ec;
    closed.read_some(buf, ec);
    EXPECT_EQ(ec, weft::errc::socket_closed);
    EXPECT_THROW(closed.write_all("x"), std::system_error);
    EXPECT_THROW(tcp_listener::bind(loopback_any_port(), {.backlog = -1}), std::system_error);
    auto l = tcp_listener::bind(loopback_any_port());
    EXPECT_THROW(tcp_listener::bind(l.local_endpoint(), {.reuse_address = false}), std::system_error);
  });
  // bind never blocks and works anywhere; accept outside a fiber is refused.
  auto l = tcp_listener::bind(loopback_any_port());
  try {
    l.accept();
    ADD_FAILURE() << "accept outside a fiber";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::not_in_fiber);
  }
}

TEST(Tcp, ConnectDeadlineClosesTheHalfOpenSocket) {
  run_checked([] {
    // A listener that never accepts: once its queue is full, the kernel drops
    // further SYNs and connect can only wait.
    auto listener = tcp_listener::bind(loopback_any_port(), {.backlog = 0});
    std::vector<tcp_stream> queued;
    const int fds_before = open_fd_count();
    bool timed_out = false;
    for (int i = 0; i < 16 && !timed_out; ++i) {
      std::error_code ec;
      tcp_stream s = tcp_stream::connect(listener.local_endpoint(), 100ms, ec);
      if (ec == weft::errc::timed_out) {
        timed_out = true;
        EXPECT_FALSE(s.is_open());
      } else {
        ASSERT_FALSE(ec) << ec.message();
        queued.push_back(std::move(s));
      }
    }
    EXPECT_TRUE(timed_out) << "every connect completed";
    EXPECT_EQ(open_fd_count(), fds_before + static_cast<int>(queued.size()));
    EXPECT_THROW(tcp_stream::connect(listener.local_endpoint(), 50ms), weft::timeout_error);
  });
}

TEST(Tcp, WriteDeadlineReportsWhatWasSent) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    tcp_stream client = tcp_stream::connect(listener.local_endpoint());
    tcp_stream server = listener.accept();  // never reads
    const std::string big = pattern(5, 64 << 20);
    std::error_code ec;
    const std::size_t sent = client.write_all(big, 100ms, ec);
    EXPECT_EQ(ec, weft::errc::timed_out);
    EXPECT_GT(sent, 0u);
    EXPECT_LT(sent, big.size());
    // What was reported sent is exactly what arrives.
    client.close();
    std::string got;
    std::vector<char> buf(1 << 16);
    while (std::size_t n = server.read_some(buf)) got.append(buf.data(), n);
    EXPECT_EQ(got.size(), sent);
    EXPECT_TRUE(got == big.substr(0, sent));
  });
}

TEST(Tcp, ReusePortListenersShareAPort) {
  run_checked([] {
    auto first = tcp_listener::bind(loopback_any_port(), {.reuse_port = true});
    auto second = tcp_listener::bind(first.local_endpoint(), {.reuse_port = true});
    EXPECT_EQ(first.local_endpoint(), second.local_endpoint());
  });
}

TEST(Tcp, SocketsMoveAndCloseExactlyOnce) {
  run_checked([] {
    const int before = open_fd_count();
    auto listener = tcp_listener::bind(loopback_any_port());
    tcp_stream a = tcp_stream::connect(listener.local_endpoint());
    tcp_stream b = listener.accept();
    const int fd = a.native_handle();
    tcp_stream moved = std::move(a);
    EXPECT_FALSE(a.is_open());
    EXPECT_EQ(moved.native_handle(), fd);
    moved = std::move(b);  // closes the connected end it held
    EXPECT_FALSE(b.is_open());
    EXPECT_EQ(open_fd_count(), before + 2);  // listener + one stream
    moved.close();
    moved.close();  // idempotent
    listener.close();
    EXPECT_EQ(open_fd_count(), before);
  });
}

// EMFILE: the listener backs off instead of spinning, and serves again once
// descriptors are free.
TEST(Tcp, AcceptSurvivesDescriptorExhaustion) {
  fd_limit limit;
  run_checked([&] {
    auto listener = tcp_listener::bind(loopback_any_port());
    std::vector<tcp_stream> clients;
    // Connect first (the clients' fds exist before the limit bites); the
    // connections wait in the backlog.
    for (int i = 0; i < 3; ++i) clients.push_back(tcp_stream::connect(listener.local_endpoint()));
    ASSERT_TRUE(limit.lower_to(static_cast<rlim_t>(open_fd_count() + 8)));
    std::vector<int> filler;
    for (int fd; (fd = ::dup(0)) >= 0;) filler.push_back(fd);
    ASSERT_EQ(errno, EMFILE);

    std::vector<tcp_stream> accepted;
    auto acceptor = weft::spawn([&] {
      for (int i = 0; i < 3; ++i) accepted.push_back(listener.accept());
    });
    rusage before{}, after{};
    ::getrusage(RUSAGE_SELF, &before);
    weft::this_fiber::sleep_for(300ms);
    ::getrusage(RUSAGE_SELF, &after);
    EXPECT_TRUE(accepted.empty());
    auto cpu_us = [](const rusage& r) {
      return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1000000L + r.ru_utime.tv_usec + r.ru_stime.tv_usec;
    };
    // A spinning acceptor would burn the whole 300 ms; backing off costs almost none.
    EXPECT_LT(cpu_us(after) - cpu_us(before), 150000L) << "accept spins on EMFILE";

    for (int fd : filler) ::close(fd);
    limit.restore();
    ASSERT_TRUE(acceptor.wait_for(30s)) << "accept never recovered";
    acceptor.join();
    ASSERT_EQ(accepted.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
      clients[i].write_all("ok");
      char buf[2];
      accepted[i].read_exact(buf);
      EXPECT_EQ(std::string(buf, 2), "ok");
    }
  });
}

TEST(Tcp, ThousandConcurrentConnectionsLoseNoByte) {
  fd_limit limit;
  if (!limit.raise_to(4096)) GTEST_SKIP() << "RLIMIT_NOFILE cannot reach 4096";
  constexpr int connections = 1000;
  const int fds_before = open_fd_count();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port(), {.backlog = connections});
    std::vector<weft::fiber<void>> servers;
    auto acceptor = weft::spawn([&] {
      for (int i = 0; i < connections; ++i)
        servers.push_back(weft::spawn([conn = listener.accept()]() mutable { echo_connection(conn); }));
    });
    std::size_t verified = 0;
    std::vector<weft::fiber<void>> clients;
    for (int c = 0; c < connections; ++c) {
      clients.push_back(weft::spawn([&, c] {
        tcp_stream s = tcp_stream::connect(listener.local_endpoint());
        for (std::uint32_t round = 0; round < 4; ++round) {
          const std::string msg = pattern(c * 16 + round, 1 + (c * 131 + round * 977) % 3000);
          s.write_all(msg);
          std::string back(msg.size(), '\0');
          s.read_exact(back);
          if (back == msg) verified += msg.size();
          else ADD_FAILURE() << "connection " << c << " round " << round << " corrupted";
        }
      }));
    }
    std::size_t expected = 0;
    for (int c = 0; c < connections; ++c)
      for (std::uint32_t round = 0; round < 4; ++round) expected += 1 + (c * 131 + round * 977) % 3000;
    for (auto& f : clients) f.join();
    acceptor.join();
    for (auto& f : servers) f.join();
    EXPECT_EQ(verified, expected);
  });
  EXPECT_EQ(open_fd_count(), fds_before);
}

}  // namespace

namespace {

// A socket kept past its run() serves the next run() on this thread (whose
// scheduler may sit at the old one's address: the registration died with the old
// epoll, and a wait there used to park for good), and a socket handed to a fiber
// of another scheduler waits there: each registers again where it waits.
TEST(Tcp, ASocketWaitsWhereverItIsUsedLaterOnAnotherRunOrScheduler) {
  hang_guard guard;
  std::optional<tcp_stream> client, server;
  weft::run([&] {
    auto listener = tcp_listener::bind(loopback_any_port());
    auto accepted = weft::spawn([&] { return listener.accept(); });
    client.emplace(tcp_stream::connect(listener.local_endpoint()));
    server.emplace(accepted.join());
    char b[1];
    auto reader = weft::spawn([&] { return server->read_some(b); });  // waits: registers
    weft::this_fiber::sleep_for(1ms);
    client->write_all(std::string("a"));
    EXPECT_EQ(reader.join(), 1u);
  });
  for (int round = 0; round < 2; ++round) {
    weft::run([&] {
      char b[1];
      auto reader = weft::spawn([&] { return server->read_some(b); });
      weft::this_fiber::sleep_for(1ms);  // the reader waits first
      client->write_all(std::string("b"));
      EXPECT_EQ(reader.join(), 1u);
      EXPECT_EQ(b[0], 'b');
    });
  }
  weft::run_options two;
  two.threads = 2;
  weft::run(two, [&] {
    auto reader = weft::spawn({.on = 1}, [&] {
      char b[1];
      const std::size_t n = server->read_some(b);
      return n == 1 && b[0] == 'c';
    });
    weft::this_fiber::sleep_for(1ms);
    client->write_all(std::string("c"));
    EXPECT_TRUE(reader.join());
    server.reset();  // on scheduler 0, registered on scheduler 1: removed by it
  });
  client.reset();
}

// A bare fd_watch does not move: waiting on it where it was not made is refused
// with a message, never a park that nothing can end.
TEST(Tcp, AnFdWatchFromAnEndedRunIsRefusedWhereItCannotWait) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  std::optional<weft::fd_watch> kept;
  weft::run([&] { kept.emplace(fds[0]); });
  weft::run([&] {
    EXPECT_FALSE(kept->belongs_here());
    try {
      kept->wait_for(weft::fd_event::readable, 10s);
      ADD_FAILURE() << "waited on a watch of an ended run";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("run() that has ended"), std::string::npos) << e.what();
    }
  });
  kept.reset();
  ::close(fds[0]);
  ::close(fds[1]);
}

}  // namespace

namespace {

// A socket back on a scheduler whose unregistration of it has not landed yet (the
// request is in that scheduler's inbox, and it has not looked): the new watch
// takes the old registration over (the read used to fail with EEXIST, "File
// exists").
TEST(Tcp, ASocketBackOnItsFirstSchedulerBeforeItLooksAtItsInbox) {
  hang_guard guard;
  weft::run_options two;
  two.threads = 2;
  weft::run(two, [] {
    auto listener = tcp_listener::bind(loopback_any_port());
    auto accepted = weft::spawn([&] { return listener.accept(); });
    tcp_stream peer = tcp_stream::connect(listener.local_endpoint());
    tcp_stream s = accepted.join();
    char b[1];
    auto first = weft::spawn([&] { return s.read_some(b); });  // registers on scheduler 0
    weft::this_fiber::sleep_for(1ms);
    peer.write_all(std::string("a"));
    EXPECT_EQ(first.join(), 1u);

    std::atomic<bool> reading{false}, done{false};
    auto other = weft::spawn({.on = 1}, [&] {
      reading = true;
      char c[1];
      EXPECT_EQ(s.read_some(c), 1u);  // unregisters it from scheduler 0 (by request), registers on 1
      done = true;
    });
    // From here on this fiber does not yield until it reads again: scheduler 0
    // does not look at its inbox, where the request waits.
    while (!reading) {
    }
    const auto until = std::chrono::steady_clock::now() + 20ms;
    while (std::chrono::steady_clock::now() < until) {
    }
    weft::spawn({.on = 1}, [&] { peer.write_all(std::string("b")); }).detach();
    while (!done) {
    }
    auto writer = weft::spawn({.on = 1}, [&] {
      weft::this_fiber::sleep_for(5ms);
      peer.write_all(std::string("c"));
    });
    EXPECT_EQ(s.read_some(b), 1u);  // waits: registers on scheduler 0 again
    EXPECT_EQ(b[0], 'c');
    writer.join();
    other.join();
  });
}

// A socket destroyed while a fiber waits in it (its owner's frame unwound past
// it): the waiter ends with socket_closed and touches nothing of the socket (it
// used to read the descriptor back from the freed object and retry on it).
TEST(Tcp, AListenerDestroyedWhileAFiberAcceptsEndsTheAccept) {
  run_checked([] {
    auto listener = std::make_unique<tcp_listener>(tcp_listener::bind(loopback_any_port()));
    auto acceptor = weft::spawn([raw = listener.get()] {
      std::error_code ec;
      raw->accept(ec);
      return ec;
    });
    weft::this_fiber::sleep_for(1ms);
    listener.reset();
    EXPECT_EQ(acceptor.join(), weft::errc::socket_closed);
  });
}

}  // namespace
