#include <weft/net/stream.hpp>

#include <sys/uio.h>

#include <algorithm>
#include <climits>

#include <weft/net/detail/unix_path.hpp>
#include <weft/net/resolve.hpp>

namespace weft::net {

std::size_t stream_socket::read_exact(mutable_buffer buf, deadline d, std::error_code& ec) {
  std::size_t done = 0;
  while (done < buf.size) {
    const std::size_t n =
        read_some_as("weft::net::stream_socket::read_exact", mutable_buffer(static_cast<char*>(buf.data) + done, buf.size - done), d, ec);
    if (ec) return done;
    if (n == 0) {
      ec = make_error_code(errc::end_of_stream);
      return done;
    }
    done += n;
  }
  if (buf.size == 0) require_usable("weft::net::stream_socket::read_exact", ec);
  return done;
}

std::size_t stream_socket::write_all(std::span<const const_buffer> bufs, deadline d, std::error_code& ec) {
  if (!require_usable("weft::net::stream_socket::write_all", ec)) return 0;
  std::size_t total = 0;
  std::size_t index = 0;   // first buffer not fully written
  std::size_t offset = 0;  // bytes of bufs[index] already written
  for (;;) {
    while (index < bufs.size() && offset == bufs[index].size) {
      ++index;
      offset = 0;
    }
    if (index == bufs.size()) return total;
    // Up to 64 buffers per call: one sendmsg, without an allocation.
    iovec iov[64];
    std::size_t count = 0;
    for (std::size_t i = index; i < bufs.size() && count < std::size(iov); ++i) {
      const std::size_t skip = i == index ? offset : 0;
      if (bufs[i].size == skip) continue;
      iov[count].iov_base = const_cast<char*>(static_cast<const char*>(bufs[i].data) + skip);
      iov[count].iov_len = bufs[i].size - skip;
      ++count;
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    const long n = io("weft::net::stream_socket::write_all", fd_event::writable, d.at, false, ec,
                      [&](int fd) { return static_cast<long>(::sendmsg(fd, &msg, MSG_NOSIGNAL)); });
    if (n < 0) return total;
    total += static_cast<std::size_t>(n);
    // Advance over what was sent.
    std::size_t left = static_cast<std::size_t>(n);
    while (left > 0) {
      const std::size_t room = bufs[index].size - offset;
      if (left < room) {
        offset += left;
        left = 0;
      } else {
        left -= room;
        ++index;
        offset = 0;
      }
    }
  }
}

void stream_socket::shutdown(shutdown_type how, std::error_code& ec) noexcept {
  ec.clear();
  if (fd_ < 0) {
    ec = make_error_code(errc::socket_closed);
    return;
  }
  if (::shutdown(fd_, static_cast<int>(how)) != 0) ec = detail::errno_code();
}

tcp_stream tcp_stream::connect(const endpoint& to, deadline d, std::error_code& ec) {
  weft::detail::scheduler::require_fiber("weft::net::tcp_stream::connect");
  const int fd = open_fd(to.family(), SOCK_STREAM, ec);
  if (fd < 0) return {};
  tcp_stream s(fd);  // owns fd from here: closed on any failure, timeout or cancellation
  sockaddr_storage address;
  const socklen_t len = to.to_sockaddr(address);
  s.connect_fd("weft::net::tcp_stream::connect", reinterpret_cast<const sockaddr*>(&address), len, d.at, ec);
  if (ec) return {};
  return s;
}

tcp_stream tcp_stream::connect(const endpoint& to, deadline d) {
  std::error_code ec;
  tcp_stream s = connect(to, d, ec);
  if (ec) detail::throw_error(ec, ("weft::net::tcp_stream::connect to " + to.to_string()).c_str());
  return s;
}

tcp_stream tcp_stream::connect(std::string_view host, std::string_view service, deadline d, std::error_code& ec) {
  const std::vector<endpoint> candidates = resolve(host, service, d, ec);
  if (ec) return {};
  ec = std::make_error_code(std::errc::host_unreachable);  // if the list is empty
  for (const endpoint& to : candidates) {
    tcp_stream s = connect(to, d, ec);
    if (!ec) return s;
    if (ec == errc::timed_out) break;
  }
  return {};
}

tcp_stream tcp_stream::connect(std::string_view host, std::string_view service, deadline d) {
  std::error_code ec;
  tcp_stream s = connect(host, service, d, ec);
  if (ec)
    detail::throw_error(ec, ("weft::net::tcp_stream::connect to " + std::string(host) + ":" + std::string(service)).c_str());
  return s;
}

endpoint tcp_stream::local_endpoint() const { return local_ip_endpoint("weft::net::tcp_stream::local_endpoint"); }

endpoint tcp_stream::peer_endpoint() const { return peer_ip_endpoint("weft::net::tcp_stream::peer_endpoint"); }

unix_stream unix_stream::connect(std::string_view path, deadline d, std::error_code& ec) {
  weft::detail::scheduler::require_fiber("weft::net::unix_stream::connect");
  sockaddr_un address;
  const socklen_t len = detail::to_unix_address(path, address, ec);
  if (len == 0) return {};
  const int fd = open_fd(AF_UNIX, SOCK_STREAM, ec);
  if (fd < 0) return {};
  unix_stream s(fd);
  s.connect_fd("weft::net::unix_stream::connect", reinterpret_cast<const sockaddr*>(&address), len, d.at, ec);
  if (ec) return {};
  return s;
}

unix_stream unix_stream::connect(std::string_view path, deadline d) {
  std::error_code ec;
  unix_stream s = connect(path, d, ec);
  if (ec) detail::throw_error(ec, ("weft::net::unix_stream::connect to " + std::string(path)).c_str());
  return s;
}

std::pair<unix_stream, unix_stream> unix_stream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0)
    detail::throw_error(detail::errno_code(), "weft::net::unix_stream::pair");
  return {unix_stream(fds[0]), unix_stream(fds[1])};
}

std::string unix_stream::local_path() const {
  sockaddr_storage address;
  const socklen_t len = local_name(address, "weft::net::unix_stream::local_path");
  return detail::from_unix_address(address, len);
}

std::string unix_stream::peer_path() const {
  sockaddr_storage address;
  const socklen_t len = peer_name(address, "weft::net::unix_stream::peer_path");
  return detail::from_unix_address(address, len);
}

}  // namespace weft::net
