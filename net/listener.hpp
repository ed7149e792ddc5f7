// listener.hpp: sockets that accept connections: tcp_listener and unix_listener.
//
//   auto listener = weft::net::tcp_listener::bind(weft::net::endpoint::parse("0.0.0.0:8080"));
//   for (;;) {
//     weft::net::tcp_stream conn = listener.accept();
//     weft::spawn([c = std::move(conn)]() mutable { serve(c); });
//   }
//
// accept() suspends only its fiber and follows stream.hpp's conventions (optional
// deadline, optional std::error_code&, cancellation throws). A connection the peer
// aborted before it was taken (ECONNABORTED, EPROTO, or a network error accept(2)
// passes on) is skipped and the next one taken. When the process runs out of
// descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), accept does not fail or
// spin: it backs off (1 ms doubling to 100 ms) until a descriptor is free or the
// deadline passes (timed_out), leaving the connection in the backlog meanwhile.
// close() wakes a fiber blocked in accept with errc::socket_closed, which is how a
// server stops accepting.
#pragma once

#include <sys/socket.h>

#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <weft/net/address.hpp>
#include <weft/net/deadline.hpp>
#include <weft/net/detail/socket_base.hpp>
#include <weft/net/stream.hpp>

namespace weft::net {

struct listen_options {
  int backlog = SOMAXCONN;     // pending connections the kernel queues (capped by net.core.somaxconn)
  bool reuse_address = true;   // SO_REUSEADDR: rebind at once after a restart
  bool reuse_port = false;     // SO_REUSEPORT: several listeners share the port
  bool v6_only = false;        // IPV6_V6ONLY for an IPv6 listener (false: IPv4 too)
};

class tcp_listener : public detail::socket_base {
 public:
  tcp_listener() noexcept = default;

  // bind creates a listening socket on `at` (port 0: the kernel picks one; see
  // local_endpoint()). Throws std::system_error (EADDRINUSE, EACCES, ...).
  static tcp_listener bind(const endpoint& at, const listen_options& options = {});
  static tcp_listener bind(const endpoint& at, const listen_options& options, std::error_code& ec);

  tcp_stream accept(deadline d = {}) {
    return detail::or_throw("weft::net::tcp_listener::accept", [&](std::error_code& ec) { return accept(d, ec); });
  }
  tcp_stream accept(std::error_code& ec) { return accept({}, ec); }
  tcp_stream accept(deadline d, std::error_code& ec);

  endpoint local_endpoint() const;
};

// unix_listener listens on a filesystem path (created by bind, removed again by
// close) or, for a path starting with '@', an abstract name.
class unix_listener : public detail::socket_base {
 public:
  unix_listener() noexcept = default;
  unix_listener(unix_listener&& other) noexcept
      : socket_base(std::move(other)), path_(std::move(other.path_)),
        owns_file_(std::exchange(other.owns_file_, false)) {}
  unix_listener& operator=(unix_listener&& other) noexcept;
  ~unix_listener() { close(); }

  // bind fails with EADDRINUSE if the path exists (a stale socket file included:
  // remove it first if you know it is yours).
  static unix_listener bind(std::string_view path, const listen_options& options = {});
  static unix_listener bind(std::string_view path, const listen_options& options, std::error_code& ec);

  unix_stream accept(deadline d = {}) {
    return detail::or_throw("weft::net::unix_listener::accept", [&](std::error_code& ec) { return accept(d, ec); });
  }
  unix_stream accept(std::error_code& ec) { return accept({}, ec); }
  unix_stream accept(deadline d, std::error_code& ec);

  // close stops listening and removes the socket file bind created.
  void close() noexcept;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  bool owns_file_ = false;
};

}  // namespace weft::net
