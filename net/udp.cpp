#include <weft/net/udp.hpp>

#include <sys/socket.h>

namespace weft::net {

udp_socket udp_socket::open(ip_version v) {
  std::error_code ec;
  const int fd = open_fd(v == ip_version::v4 ? AF_INET : AF_INET6, SOCK_DGRAM, ec);
  if (fd < 0) detail::throw_error(ec, "weft::net::udp_socket::open");
  return udp_socket(fd);
}

udp_socket udp_socket::bind(const endpoint& at, bool reuse_address, std::error_code& ec) {
  ec.clear();
  const int fd = open_fd(at.family(), SOCK_DGRAM, ec);
  if (fd < 0) return {};
  udp_socket s(fd);
  const int on = 1;
  if (reuse_address && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) {
    ec = detail::errno_code();
    return {};
  }
  sockaddr_storage address;
  const socklen_t len = at.to_sockaddr(address);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), len) != 0) {
    ec = detail::errno_code();
    return {};
  }
  return s;
}

udp_socket udp_socket::bind(const endpoint& at, bool reuse_address) {
  std::error_code ec;
  udp_socket s = bind(at, reuse_address, ec);
  if (ec) detail::throw_error(ec, ("weft::net::udp_socket::bind on " + at.to_string()).c_str());
  return s;
}

void udp_socket::connect(const endpoint& peer, std::error_code& ec) noexcept {
  ec.clear();
  if (fd_ < 0) {
    ec = make_error_code(errc::socket_closed);
    return;
  }
  sockaddr_storage address;
  const socklen_t len = peer.to_sockaddr(address);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), len) != 0) ec = detail::errno_code();
}

std::size_t udp_socket::send_to(const_buffer buf, const endpoint& to, deadline d, std::error_code& ec) {
  if (!require_usable("weft::net::udp_socket::send_to", ec)) return 0;
  sockaddr_storage address;
  const socklen_t len = to.to_sockaddr(address);
  const long n = io("weft::net::udp_socket::send_to", fd_event::writable, d.at, false, ec, [&](int fd) {
    return static_cast<long>(
        ::sendto(fd, buf.data, buf.size, MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&address), len));
  });
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

std::size_t udp_socket::send(const_buffer buf, deadline d, std::error_code& ec) {
  if (!require_usable("weft::net::udp_socket::send", ec)) return 0;
  const long n = io("weft::net::udp_socket::send", fd_event::writable, d.at, false, ec,
                    [&](int fd) { return static_cast<long>(::send(fd, buf.data, buf.size, MSG_NOSIGNAL)); });
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

datagram udp_socket::recv_from(mutable_buffer buf, deadline d, std::error_code& ec) {
  datagram got;
  if (!require_usable("weft::net::udp_socket::recv_from", ec)) return got;
  sockaddr_storage address;
  iovec iov{buf.data, buf.size};
  msghdr msg{};
  const long n = io("weft::net::udp_socket::recv_from", fd_event::readable, d.at, false, ec, [&](int fd) {
    msg = msghdr{};
    msg.msg_name = &address;
    msg.msg_namelen = sizeof address;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    return static_cast<long>(::recvmsg(fd, &msg, 0));
  });
  if (n < 0) return got;
  got.size = static_cast<std::size_t>(n);
  got.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  got.from = endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&address), msg.msg_namelen).value_or(endpoint{});
  return got;
}

endpoint udp_socket::local_endpoint() const { return local_ip_endpoint("weft::net::udp_socket::local_endpoint"); }

endpoint udp_socket::peer_endpoint() const { return peer_ip_endpoint("weft::net::udp_socket::peer_endpoint"); }

}  // namespace weft::net
