// udp.hpp: UDP sockets, unconnected (send_to / recv_from) or connected (send / recv).
//
//   auto sock = weft::net::udp_socket::bind(weft::net::endpoint::parse("0.0.0.0:9000"));
//   char buf[1500];
//   auto got = sock.recv_from(buf, 1s);           // timeout_error after 1 s
//   sock.send_to({buf, got.size}, got.from);
//
// Conventions as in stream.hpp (deadline, std::error_code&, cancellation). A
// datagram is sent whole or not at all; one larger than the receive buffer is
// delivered cut short with `truncated` set, never silently.
#pragma once

#include <cstddef>
#include <system_error>

#include <weft/net/address.hpp>
#include <weft/net/buffer.hpp>
#include <weft/net/deadline.hpp>
#include <weft/net/detail/socket_base.hpp>

namespace weft::net {

enum class ip_version { v4, v6 };

// datagram describes one received datagram.
struct datagram {
  std::size_t size = 0;    // bytes stored in the buffer
  endpoint from;           // the sender
  bool truncated = false;  // the datagram was larger than the buffer; the rest is gone
};

class udp_socket : public detail::socket_base {
 public:
  udp_socket() noexcept = default;

  // open makes an unbound socket (the first send binds an ephemeral port).
  static udp_socket open(ip_version v = ip_version::v4);
  // bind makes a socket bound to `at` (port 0: the kernel picks one).
  static udp_socket bind(const endpoint& at, bool reuse_address = false);
  static udp_socket bind(const endpoint& at, bool reuse_address, std::error_code& ec);

  // connect fixes the peer: send/recv then talk to it only, and ICMP errors (e.g.
  // ECONNREFUSED when nobody listens) are reported by later calls. Does not block.
  void connect(const endpoint& peer) {
    detail::or_throw("weft::net::udp_socket::connect", [&](std::error_code& ec) { connect(peer, ec); });
  }
  void connect(const endpoint& peer, std::error_code& ec) noexcept;

  std::size_t send_to(const_buffer buf, const endpoint& to, deadline d = {}) {
    return detail::or_throw("weft::net::udp_socket::send_to", [&](std::error_code& ec) { return send_to(buf, to, d, ec); });
  }
  std::size_t send_to(const_buffer buf, const endpoint& to, std::error_code& ec) { return send_to(buf, to, {}, ec); }
  std::size_t send_to(const_buffer buf, const endpoint& to, deadline d, std::error_code& ec);

  datagram recv_from(mutable_buffer buf, deadline d = {}) {
    return detail::or_throw("weft::net::udp_socket::recv_from", [&](std::error_code& ec) { return recv_from(buf, d, ec); });
  }
  datagram recv_from(mutable_buffer buf, std::error_code& ec) { return recv_from(buf, {}, ec); }
  datagram recv_from(mutable_buffer buf, deadline d, std::error_code& ec);

  // send and recv: the connected forms.
  std::size_t send(const_buffer buf, deadline d = {}) {
    return detail::or_throw("weft::net::udp_socket::send", [&](std::error_code& ec) { return send(buf, d, ec); });
  }
  std::size_t send(const_buffer buf, std::error_code& ec) { return send(buf, {}, ec); }
  std::size_t send(const_buffer buf, deadline d, std::error_code& ec);

  datagram recv(mutable_buffer buf, deadline d = {}) { return recv_from(buf, d); }
  datagram recv(mutable_buffer buf, std::error_code& ec) { return recv_from(buf, {}, ec); }
  datagram recv(mutable_buffer buf, deadline d, std::error_code& ec) { return recv_from(buf, d, ec); }

  endpoint local_endpoint() const;
  endpoint peer_endpoint() const;

 private:
  explicit udp_socket(int fd) noexcept : socket_base(fd) {}
};

}  // namespace weft::net
