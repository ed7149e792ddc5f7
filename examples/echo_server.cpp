// echo_server [--threads N] PORT: a TCP echo server, one fiber per connection.
//
// With --threads N (default 1; 0: one per CPU) it runs N schedulers, each with its
// own listener on the same port (SO_REUSEPORT: the kernel spreads new connections
// over them) and its own accept loop (net::serve), so a connection lives on the thread that
// accepted it and no two threads share anything on the hot path.
//
// Serves until SIGINT or SIGTERM; then it closes its listeners, gives open
// connections a moment (1 s) to finish, cancels the rest and exits 0. PORT 0 lets
// the kernel choose; the first line printed says where it listens.
//
//   ./echo_server --threads 2 7000 &
//   printf 'hello\n' | ./echo_client 127.0.0.1 7000
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;
namespace net = weft::net;

namespace {

// echo serves one connection until the client closes it.
void echo(net::tcp_stream& conn) {
  conn.set_nodelay(true);
  char buf[16384];
  try {
    while (std::size_t n = conn.read_some(buf)) conn.write_all({buf, n});
  } catch (const weft::cancelled_error&) {
    std::printf("echo_server: cancelled a connection still open 1 s after stopping\n");
    std::fflush(stdout);
    throw;
  }
}

// listen_on binds the IPv6 wildcard (which takes IPv4 too) or, without IPv6, IPv4's.
net::tcp_listener listen_on(std::uint16_t port, bool shared) {
  net::listen_options options;
  options.reuse_port = shared;
  std::error_code ec;
  auto listener = net::tcp_listener::bind({net::ip_address::v6_any(), port}, options, ec);
  if (!ec) return listener;
  return net::tcp_listener::bind({net::ip_address::v4_any(), port}, options);
}

// serve_until_stopped runs one scheduler's share of the server: each connection
// accepted on `listener` is served in a fiber of this scheduler (net::serve) until
// `stopping` is set; then the listener closes, and open connections get 1 s.
void serve_until_stopped(net::tcp_listener& listener, weft::event& stopping) {
  auto closer = weft::spawn({.name = "closer"}, [&] {
    stopping.wait();
    listener.close();  // net::serve stops accepting and shuts down
  });
  net::serve_options options;
  options.shutdown_grace = 1s;
  options.on_error = [](std::exception_ptr e) {
    std::fprintf(stderr, "echo_server: connection: %s\n", weft::describe_exception(e).c_str());
  };
  try {
    net::serve(listener, echo, options);
  } catch (const std::system_error& e) {  // accept failed for good
    std::fprintf(stderr, "echo_server: %s; no longer accepting\n", e.what());
  }
  closer.join();
}

bool parse(std::string_view text, auto& value) {
  return std::from_chars(text.data(), text.data() + text.size(), value).ec == std::errc{} && !text.empty();
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  std::size_t threads = 1;
  const bool with_threads = argc == 4 && std::string_view(argv[1]) == "--threads";
  if (!(argc == 2 || with_threads) || (with_threads && !parse(argv[2], threads)) || !parse(argv[argc - 1], port)) {
    std::fprintf(stderr, "usage: %s [--threads N] PORT\n", argv[0]);
    return 2;
  }
  // Before any thread starts, so the signals come only to the signalfd.
  weft::signal_set stop_signals{SIGINT, SIGTERM};
  try {
    weft::run_options options;
    options.threads = threads;
    return weft::run(options, [&] {
      const std::size_t schedulers = weft::this_fiber::scheduler_count();
      // One listener per scheduler on one port; the first one's port is the port
      // (PORT 0: the kernel's choice) that the others bind too.
      std::vector<net::tcp_listener> listeners;
      listeners.push_back(listen_on(port, schedulers > 1));
      const auto where = listeners.front().local_endpoint();
      for (std::size_t i = 1; i < schedulers; ++i) listeners.push_back(listen_on(where.port(), true));
      std::printf("echo_server: %zu thread%s, listening on %s\n", schedulers, schedulers == 1 ? "" : "s",
                  where.to_string().c_str());
      std::fflush(stdout);

      // A listener is registered with a scheduler's epoll on its first wait, so each
      // one, moved into the fiber that accepts on it, belongs to that scheduler.
      weft::event stopping;
      std::vector<weft::fiber<void>> servers;
      for (std::size_t i = 0; i < schedulers; ++i)
        servers.push_back(weft::spawn({.name = "server", .on = i},
                                      [&stopping, l = std::move(listeners[i])]() mutable {
                                        serve_until_stopped(l, stopping);
                                      }));

      const int sig = stop_signals.wait();
      std::printf("echo_server: %s, stopping\n", strsignal(sig));
      std::fflush(stdout);
      stopping.set();
      for (auto& s : servers) s.join();
      return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "echo_server: %s\n", e.what());
    return 1;
  }
}
