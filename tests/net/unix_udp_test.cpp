// Unix domain streams (same stream API as TCP) and UDP sockets.
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "net_test.hpp"

namespace {

using namespace weft_test;
using weft::net::unix_listener;
using weft::net::unix_stream;
using weft::net::udp_socket;

std::string temp_socket_path() {
  return "/tmp/weft-test-" + std::to_string(::getpid()) + ".sock";
}

bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

TEST(Unix, ListenerEchoesAndRemovesItsFile) {
  const std::string path = temp_socket_path();
  ::unlink(path.c_str());
  run_checked([&] {
    auto listener = unix_listener::bind(path);
    EXPECT_TRUE(exists(path));
    EXPECT_THROW(unix_listener::bind(path), std::system_error);  // EADDRINUSE
    auto server = weft::spawn([&] {
      unix_stream conn = listener.accept();
      echo_connection(conn);
    });
    unix_stream client = unix_stream::connect(path, 5s);
    EXPECT_EQ(client.peer_path(), path);
    const std::string msg = pattern(9, 100000);
    auto writer = weft::spawn([&] { client.write_all(msg); });
    std::string back(msg.size(), '\0');
    client.read_exact(back);
    writer.join();
    EXPECT_TRUE(back == msg);
    client.close();
    server.join();
    listener.close();
    EXPECT_FALSE(exists(path));
  });
}

TEST(Unix, AbstractNamesAndPairs) {
  run_checked([] {
    const std::string name = "@weft-test-" + std::to_string(::getpid());
    auto listener = unix_listener::bind(name);
    auto server = weft::spawn([&] {
      unix_stream conn = listener.accept();
      conn.write_all("abstract");
    });
    unix_stream client = unix_stream::connect(name);
    char buf[8];
    client.read_exact(buf);
    EXPECT_EQ(std::string(buf, 8), "abstract");
    server.join();

    auto [a, b] = unix_stream::pair();
    a.write_all("ping");
    b.read_exact({buf, 4}, 5s);
    EXPECT_EQ(std::string(buf, 4), "ping");
    a.shutdown(weft::net::shutdown_type::write);
    EXPECT_EQ(b.read_some(buf), 0u);

    std::error_code ec;
    unix_stream::connect("/nonexistent/weft.sock", {}, ec);
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
    unix_stream::connect(std::string(200, 'x'), {}, ec);
    EXPECT_EQ(ec, std::errc::filename_too_long);
  });
}

// One socket, fibers of two schedulers: while a fiber of scheduler 0 waits in a
// read, a fiber of scheduler 1 that must wait on the same socket is refused with
// already_waited. It used to take the registration over, and the reader woke with
// "socket is closed" on a socket nobody closed. Once the reader is done, the
// socket may move to the other scheduler.
TEST(Unix, SocketWaitedOnByAnotherSchedulerIsRefusedNotClosed) {
  weft::run_options two;
  two.threads = 2;
  run_checked(
      [] {
        auto [a, b] = unix_stream::pair();
        weft::event reading;
        auto reader = weft::spawn({.on = 0}, [&, &a = a] {
          char buf[2];
          reading.set();
          a.read_exact(buf, 20s);
          return std::string(buf, 2);
        });
        reading.wait();
        weft::this_fiber::sleep_for(20ms);  // the reader parks in its read
        weft::spawn({.on = 1}, [&, &a = a] {
          std::string big(8 << 20, 'x');  // more than the socket buffer: write_all must wait
          try {
            a.write_all(big, 20s);
            ADD_FAILURE() << "the write waited on a socket another scheduler's fiber waits on";
          } catch (const weft::error& e) {
            EXPECT_EQ(e.code(), weft::errc::already_waited) << e.what();
            EXPECT_NE(std::string(e.what()).find("another scheduler"), std::string::npos) << e.what();
          }
        }).join();
        b.write_all("hi");
        EXPECT_EQ(reader.join(), "hi");
        auto moved = weft::spawn({.on = 1}, [&, &a = a] {  // nobody waits now: it moves
          char buf[2];
          a.read_exact(buf, 20s);
          return std::string(buf, 2);
        });
        weft::this_fiber::sleep_for(20ms);
        b.write_all("ok");
        EXPECT_EQ(moved.join(), "ok");
      },
      two);
}

TEST(Udp, SendToRecvFromAndTruncation) {
  run_checked([] {
    udp_socket server = udp_socket::bind(loopback_any_port());
    udp_socket client = udp_socket::bind(loopback_any_port());
    const auto to = server.local_endpoint();
    auto echo = weft::spawn([&] {
      char buf[2048];
      for (int i = 0; i < 2; ++i) {
        const auto got = server.recv_from(buf);
        server.send_to({buf, got.size}, got.from);
      }
    });
    const std::string msg = pattern(4, 1000);
    EXPECT_EQ(client.send_to(msg, to), msg.size());
    char buf[2048];
    auto got = client.recv_from(buf, 5s);
    EXPECT_EQ(got.from, to);
    EXPECT_FALSE(got.truncated);
    EXPECT_EQ(std::string(buf, got.size), msg);

    client.send_to(msg, to);
    char small[100];
    got = client.recv_from(small, 5s);
    EXPECT_TRUE(got.truncated);  // reported, not silently cut
    EXPECT_EQ(got.size, sizeof small);
    EXPECT_EQ(std::string(small, 100), msg.substr(0, 100));
    echo.join();

    EXPECT_THROW(client.recv_from(buf, 10ms), weft::timeout_error);
  });
}

TEST(Udp, ConnectedModeReportsRefusal) {
  run_checked([] {
    udp_socket a = udp_socket::bind(loopback_any_port());
    udp_socket b = udp_socket::open();
    b.connect(a.local_endpoint());
    b.send("hello");
    char buf[16];
    auto got = a.recv_from(buf, 5s);
    EXPECT_EQ(std::string(buf, got.size), "hello");
    EXPECT_EQ(got.from, b.local_endpoint());

    // A connected socket hears ICMP port-unreachable as ECONNREFUSED.
    weft::net::endpoint closed = a.local_endpoint();
    a.close();
    udp_socket c = udp_socket::open();
    c.connect(closed);
    EXPECT_EQ(c.peer_endpoint(), closed);
    c.send("anyone?");
    std::error_code ec;
    c.recv(buf, 5s, ec);
    EXPECT_EQ(ec, std::errc::connection_refused);
  });
}

TEST(Udp, CancelledReceiveReleasesTheSocket) {
  run_checked([] {
    const int before = open_fd_count();
    auto waiter = weft::spawn([] {
      udp_socket s = udp_socket::bind(loopback_any_port());
      char buf[16];
      s.recv_from(buf);
    });
    weft::this_fiber::sleep_for(2ms);
    waiter.cancel();
    EXPECT_THROW(waiter.join(), weft::cancelled_error);
    EXPECT_EQ(open_fd_count(), before);
  });
}

}  // namespace
