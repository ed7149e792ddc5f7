#include <weft/net/listener.hpp>

#include <netinet/in.h>
#include <unistd.h>

#include <weft/net/detail/unix_path.hpp>

namespace weft::net {
namespace {

// listen_on binds and listens fd; false with ec on failure.
bool listen_on(int fd, const sockaddr* at, socklen_t len, int backlog, std::error_code& ec) {
  if (::bind(fd, at, len) != 0 || ::listen(fd, backlog) != 0) {
    ec = detail::errno_code();
    return false;
  }
  return true;
}

bool set_flag(int fd, int level, int name, bool on, std::error_code& ec) {
  const int value = on ? 1 : 0;
  if (::setsockopt(fd, level, name, &value, sizeof value) == 0) return true;
  ec = detail::errno_code();
  return false;
}

}  // namespace

tcp_listener tcp_listener::bind(const endpoint& at, const listen_options& options, std::error_code& ec) {
  ec.clear();
  if (options.backlog < 0) {
    ec = make_error_code(errc::invalid_argument);
    return {};
  }
  const int fd = open_fd(at.family(), SOCK_STREAM, ec);
  if (fd < 0) return {};
  tcp_listener l;
  l.fd_ = fd;
  if (!set_flag(fd, SOL_SOCKET, SO_REUSEADDR, options.reuse_address, ec)) return {};
  if (options.reuse_port && !set_flag(fd, SOL_SOCKET, SO_REUSEPORT, true, ec)) return {};
  if (at.address().is_v6() && !set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY, options.v6_only, ec)) return {};
  sockaddr_storage address;
  const socklen_t len = at.to_sockaddr(address);
  if (!listen_on(fd, reinterpret_cast<const sockaddr*>(&address), len, options.backlog, ec)) return {};
  return l;
}

tcp_listener tcp_listener::bind(const endpoint& at, const listen_options& options) {
  std::error_code ec;
  tcp_listener l = bind(at, options, ec);
  if (ec) detail::throw_error(ec, ("weft::net::tcp_listener::bind on " + at.to_string()).c_str());
  return l;
}

tcp_stream tcp_listener::accept(deadline d, std::error_code& ec) {
  if (!require_usable("weft::net::tcp_listener::accept", ec)) return {};
  sockaddr_storage peer;
  socklen_t peer_len;
  const int fd = accept_fd("weft::net::tcp_listener::accept", &peer, &peer_len, d.at, ec);
  if (fd < 0) return {};
  return tcp_stream(fd);
}

endpoint tcp_listener::local_endpoint() const { return local_ip_endpoint("weft::net::tcp_listener::local_endpoint"); }

unix_listener& unix_listener::operator=(unix_listener&& other) noexcept {
  if (this != &other) {
    close();
    socket_base::operator=(std::move(other));
    path_ = std::move(other.path_);
    owns_file_ = std::exchange(other.owns_file_, false);
  }
  return *this;
}

unix_listener unix_listener::bind(std::string_view path, const listen_options& options, std::error_code& ec) {
  ec.clear();
  if (options.backlog < 0) {
    ec = make_error_code(errc::invalid_argument);
    return {};
  }
  sockaddr_un address;
  const socklen_t len = detail::to_unix_address(path, address, ec);
  if (len == 0) return {};
  const int fd = open_fd(AF_UNIX, SOCK_STREAM, ec);
  if (fd < 0) return {};
  unix_listener l;
  l.fd_ = fd;
  l.path_ = std::string(path);
  if (!listen_on(fd, reinterpret_cast<const sockaddr*>(&address), len, options.backlog, ec)) {
    // bind may have created the file before listen failed.
    l.owns_file_ = ec != std::errc::address_in_use && path.front() != '@';
    return {};
  }
  l.owns_file_ = path.front() != '@';
  return l;
}

unix_listener unix_listener::bind(std::string_view path, const listen_options& options) {
  std::error_code ec;
  unix_listener l = bind(path, options, ec);
  if (ec) detail::throw_error(ec, ("weft::net::unix_listener::bind on " + std::string(path)).c_str());
  return l;
}

unix_stream unix_listener::accept(deadline d, std::error_code& ec) {
  if (!require_usable("weft::net::unix_listener::accept", ec)) return {};
  sockaddr_storage peer;
  socklen_t peer_len;
  const int fd = accept_fd("weft::net::unix_listener::accept", &peer, &peer_len, d.at, ec);
  if (fd < 0) return {};
  return unix_stream(fd);
}

void unix_listener::close() noexcept {
  socket_base::close();
  if (std::exchange(owns_file_, false)) ::unlink(path_.c_str());
}

}  // namespace weft::net
