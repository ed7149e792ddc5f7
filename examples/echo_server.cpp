// echo_server PORT: a TCP echo server, one fiber per connection.
//
// Serves until SIGINT or SIGTERM; then it closes its listener, gives open
// connections a moment (1 s) to finish, cancels the rest and exits 0. PORT 0 lets
// the kernel choose; the first line printed says where it listens.
//
//   ./echo_server 7000 &
//   printf 'hello\n' | ./echo_client 127.0.0.1 7000
#include <charconv>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include <weft/weft.hpp>

using namespace std::chrono_literals;
namespace net = weft::net;

namespace {

// serve echoes one connection until the client closes it.
void serve(net::tcp_stream& conn) {
  char buf[16384];
  while (std::size_t n = conn.read_some(buf)) conn.write_all({buf, n});
}

// listen_on binds the IPv6 wildcard (which takes IPv4 too) or, without IPv6, IPv4's.
net::tcp_listener listen_on(std::uint16_t port) {
  std::error_code ec;
  auto listener = net::tcp_listener::bind({net::ip_address::v6_any(), port}, {}, ec);
  if (!ec) return listener;
  return net::tcp_listener::bind({net::ip_address::v4_any(), port});
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  if (argc != 2 || std::from_chars(argv[1], argv[1] + std::strlen(argv[1]), port).ec != std::errc{}) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  // Before any thread starts, so the signals come only to the signalfd.
  weft::signal_set stop_signals{SIGINT, SIGTERM};
  try {
    return weft::run([&] {
      net::tcp_listener listener = listen_on(port);
      std::printf("echo_server: listening on %s\n", listener.local_endpoint().to_string().c_str());
      std::fflush(stdout);

      std::unordered_map<weft::fiber_id, weft::fiber<void>> connections;
      weft::wait_group active;
      auto acceptor = weft::spawn({.name = "acceptor"}, [&] {
        for (;;) {
          std::error_code ec;
          net::tcp_stream conn = listener.accept(ec);
          if (ec == weft::errc::socket_closed) return;  // shutting down
          if (ec) {
            std::fprintf(stderr, "echo_server: accept: %s\n", ec.message().c_str());
            continue;
          }
          conn.set_nodelay(true);
          active.add();
          auto handler = weft::spawn({.name = "connection"}, [&, c = std::move(conn)]() mutable {
            try {
              serve(c);
            } catch (const weft::cancelled_error&) {
              // shutdown ran out of patience; closing the stream is all there is to do
            } catch (const std::exception& e) {
              std::fprintf(stderr, "echo_server: connection: %s\n", e.what());
            }
            c.close();
            active.done();
            connections.erase(weft::this_fiber::id());  // our own handle: detaches it
          });
          connections.emplace(handler.id(), std::move(handler));
        }
      });

      const int sig = stop_signals.wait();
      std::printf("echo_server: %s, stopping\n", strsignal(sig));
      std::fflush(stdout);
      listener.close();  // the acceptor wakes with socket_closed
      acceptor.join();
      if (!active.wait_for(1s)) {
        std::printf("echo_server: cancelling %zu open connection(s)\n", connections.size());
        for (auto& [id, f] : connections) f.cancel();
        active.wait();
      }
      return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
}
