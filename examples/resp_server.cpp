// resp_server PORT: an in-memory key-value server that speaks the Redis protocol
// (RESP2), so redis-cli, redis-benchmark and every Redis client library can use it.
//
// Commands (examples/resp/commands.hpp): PING ECHO GET SET DEL EXISTS INCR DECR
// EXPIRE PEXPIRE TTL PTTL KEYS MGET MSET QUIT, and CONFIG GET. Replies, errors
// included, are byte for byte what redis-server 7 sends for the same input
// (examples/resp_example_test.py checks that against a real redis-server).
//
// One fiber per client; pipelined commands are answered with one write per read.
// Like redis-server it runs on one thread, so the keyspace needs no locks; a
// protocol error is answered, then the connection closes. SIGINT or SIGTERM closes
// the listener and the clients, and exits 0. PORT 0 lets the kernel choose; the
// first line printed says where it listens.
//
//   ./resp_server 6380 &
//   redis-cli -p 6380 set greeting hello
#include <charconv>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <weft/weft.hpp>

#include "resp/commands.hpp"
#include "resp/keyspace.hpp"
#include "resp/request_parser.hpp"

using namespace std::chrono_literals;
namespace net = weft::net;

namespace {

// send_replies writes every byte of out. A client that takes nothing for 30 s is
// dropped; one that reads a large reply slowly gets all of it (the deadline is
// renewed while bytes go out).
void send_replies(net::tcp_stream& conn, std::string_view out) {
  while (!out.empty()) {
    std::error_code ec;
    const std::size_t sent = conn.write_all(out, 30s, ec);
    out.remove_prefix(sent);
    if (ec && (ec != weft::errc::timed_out || sent == 0)) throw std::system_error(ec, "resp_server: writing replies");
  }
}

// serve_client answers one client until it closes, sends QUIT or breaks the protocol.
void serve_client(net::tcp_stream& conn, resp::keyspace& db) {
  net::read_buffer in;
  std::string out;
  std::vector<std::string> argv;
  resp::parse_progress progress;  // of a request not yet whole
  for (;;) {
    if (in.read_from(conn) == 0) return;
    bool close = false;
    while (!close) {  // every whole command that came: a pipeline is answered in one write
      const resp::parse_result r = resp::parse_request(in.unparsed(), argv, progress);
      if (r.what == resp::parse_result::need_more) break;
      if (r.what == resp::parse_result::protocol_error) {
        resp::append_error(out, r.error);
        close = true;
        break;
      }
      in.consume(r.consumed);
      // The clock per command, as redis reads it: a slow command (KEYS over many
      // keys) ahead of a GET in one pipeline lets a key expire in between.
      if (r.what == resp::parse_result::command) close = !resp::execute(argv, db, out, resp::now_ms());
    }
    if (!out.empty()) {
      send_replies(conn, out);
      out.clear();
    }
    // What a large value made the buffers grow to goes back once it has gone: an
    // idle connection keeps what an ordinary command needs (redis's client buffers
    // shrink so too).
    if (out.capacity() > 1 << 20) std::string().swap(out);
    in.shrink();
    if (close) return;
  }
}

net::tcp_listener listen_on(std::uint16_t port) {
  std::error_code ec;
  auto listener = net::tcp_listener::bind({net::ip_address::v6_any(), port}, {}, ec);
  if (!ec) return listener;
  return net::tcp_listener::bind({net::ip_address::v4_any(), port});
}

}  // namespace

int main(int argc, char** argv) {
  std::uint16_t port = 0;
  const std::string_view port_text = argc == 2 ? argv[1] : "";
  if (argc != 2 || std::from_chars(port_text.data(), port_text.data() + port_text.size(), port).ec != std::errc{}) {
    std::fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  weft::signal_set stop_signals{SIGINT, SIGTERM};
  try {
    return weft::run([&] {
      resp::keyspace db;
      net::tcp_listener listener = listen_on(port);
      std::printf("resp_server: listening on %s\n", listener.local_endpoint().to_string().c_str());
      std::fflush(stdout);

      auto expirer = weft::spawn({.name = "expirer"}, [&] {
        for (;;) {  // removes expired keys nobody reads (redis's active expiry)
          weft::this_fiber::sleep_for(100ms);
          while (db.sweep(resp::now_ms(), 10'000) == 10'000) weft::this_fiber::yield();
        }
      });
      // One fiber per client (net::serve); closing the listener ends it. Clients
      // are closed at once then, as redis-server closes them when it stops.
      auto server = weft::spawn({.name = "server"}, [&] {
        net::serve_options options;
        options.shutdown_grace = 0ms;
        options.connection_name = "client";
        options.on_error = [](std::exception_ptr e) {  // this client's stream failed: only it goes
          std::fprintf(stderr, "resp_server: client: %s\n", weft::describe_exception(e).c_str());
        };
        net::serve(listener, [&db](net::tcp_stream& conn) {
          conn.set_nodelay(true);
          serve_client(conn, db);
        }, options);
      });

      const int sig = stop_signals.wait();
      std::printf("resp_server: %s, stopping\n", strsignal(sig));
      std::fflush(stdout);
      listener.close();
      server.join();
      expirer.cancel();
      try {
        expirer.join();
      } catch (const weft::cancelled_error&) {
      }
      return 0;
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resp_server: %s\n", e.what());
    return 1;
  }
}
