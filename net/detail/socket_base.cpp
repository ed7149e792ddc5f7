#include <weft/net/detail/socket_base.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include <weft/runtime/this_fiber.hpp>

namespace weft::net::detail {

void throw_error(const std::error_code& ec, const char* what) {
  if (ec == errc::timed_out) throw timeout_error(what);
  if (ec.category() == weft::category()) throw error(static_cast<errc>(ec.value()), what);  // socket_closed, ...
  throw std::system_error(ec, what);
}

socket_base::socket_base(socket_base&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), watch_(std::move(other.watch_)) {
  other.watch_.reset();
}

socket_base& socket_base::operator=(socket_base&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    watch_ = std::move(other.watch_);
    other.watch_.reset();
  }
  return *this;
}

void socket_base::close() noexcept {
  if (fd_ < 0) return;
  // fd_ first: a waiter woken by the watch's destruction must see the socket closed,
  // never retry on a number the kernel may already have handed to a new descriptor.
  const int fd = std::exchange(fd_, -1);
  watch_.reset();
  ::close(fd);  // Linux frees the descriptor even when close reports EINTR or EIO
}

int socket_base::release() noexcept {
  watch_.reset();
  return std::exchange(fd_, -1);
}

int socket_base::open_fd(int domain, int type, std::error_code& ec) noexcept {
  const int fd = ::socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) ec = errno_code();
  return fd;
}

bool socket_base::wait(const char* call, fd_event ev, time_point deadline, std::error_code& ec) {
  // A socket that outlived its run(), or moved to a fiber of another scheduler,
  // registers again here (the old registration goes with its scheduler). Not while
  // a fiber there waits on it: taking the registration away would wake that fiber
  // as if the socket had been closed.
  if (watch_ && !watch_->belongs_here()) {
    if (watch_->waited_on())
      throw error(errc::already_waited, call,
                  "a fiber of another scheduler is waiting on this socket; use a socket from the fibers of "
                  "one scheduler at a time");
    watch_.reset();
  }
  if (!watch_) {
    try {
      watch_.emplace(fd_);
    } catch (const weft::error&) {
      throw;  // not_in_fiber: misuse, reported as such
    } catch (const std::system_error& e) {  // epoll_ctl refused (ENOMEM, ENOSPC)
      ec = e.code();
      return false;
    }
  }
  // The watch may be destroyed by close() while we wait in it, and the socket with
  // it (its owner's frame unwound past it): wait_until touches only the state it
  // keeps alive after the park and says so, and then neither do we.
  bool ended = false;
  const bool ready = watch_->wait_until(ev, deadline, call, ended);
  if (ended || fd_ < 0) {
    ec = make_error_code(errc::socket_closed);
    return false;
  }
  if (!ready) {
    ec = make_error_code(errc::timed_out);
    return false;
  }
  return true;
}

namespace {

// lost_connection is true for the accept errors that belong to the one connection
// being taken, not to the listener (accept(2), Linux notes: "treat them like EAGAIN
// by retrying"): the listener goes on with the next. Not EOPNOTSUPP, which the same
// list names: it is also what a socket that cannot accept at all gets, every time,
// and retrying that at once would spin.
bool lost_connection(int e) noexcept {
  switch (e) {
    case ECONNABORTED: case EPROTO: case ENETDOWN: case ENOPROTOOPT: case EHOSTDOWN:
    case ENONET: case EHOSTUNREACH: case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

bool out_of_resources(int e) noexcept { return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM; }

}  // namespace

bool socket_base::back_off(const char* call, duration& delay, duration max_delay, time_point deadline, std::error_code& ec) {
  const time_point now = clock::now();
  if (now >= deadline) {
    ec = make_error_code(errc::timed_out);
    return false;
  }
  weft::detail::sleep_until_as(deadline - now > delay ? now + delay : deadline, call);
  delay = std::min(delay * 2, max_delay);
  if (fd_ < 0) {
    ec = make_error_code(errc::socket_closed);
    return false;
  }
  return true;
}

int socket_base::accept_fd(const char* call, sockaddr_storage* peer, socklen_t* peer_len, time_point deadline,
                           std::error_code& ec) {
  using namespace std::chrono_literals;
  duration backoff = 1ms;
  for (;;) {
    ec.clear();
    *peer_len = sizeof(sockaddr_storage);
    // io: EAGAIN waits for readability, EINTR retries.
    const long fd = io(call, fd_event::readable, deadline, false, ec, [&](int listen_fd) {
      return static_cast<long>(
          ::accept4(listen_fd, reinterpret_cast<sockaddr*>(peer), peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC));
    });
    if (fd >= 0) return static_cast<int>(fd);
    const int e = ec.category() == std::generic_category() ? ec.value() : 0;
    if (lost_connection(e)) continue;  // the peer gave up first; take the next
    if (!out_of_resources(e)) return -1;
    // Out of descriptors: epoll will not report the waiting connection again, and
    // retrying at once would spin. Sleep, then look again.
    if (!back_off(call, backoff, 100ms, deadline, ec)) return -1;
  }
}

void socket_base::connect_fd(const char* call, const sockaddr* to, socklen_t len, time_point deadline,
                             std::error_code& ec) {
  using namespace std::chrono_literals;
  ec.clear();
  duration backoff = 1ms;
  for (;;) {
    if (::connect(fd_, to, len) == 0) return;
    const int e = errno;
    if (e == EINPROGRESS || e == EINTR || e == EALREADY) break;
    if (e != EAGAIN) {
      ec = std::error_code(e, std::generic_category());
      return;
    }
    // EAGAIN: an AF_UNIX listener's backlog is full (or TCP found no free local
    // port). Nothing will be reported on this socket when room appears: sleep a
    // little and try again, until the deadline.
    if (!back_off(call, backoff, 20ms, deadline, ec)) return;
  }
  // The outcome is known when the socket turns writable; SO_ERROR says which.
  for (;;) {
    if (!wait(call, fd_event::writable, deadline, ec)) return;
    int err = 0;
    socklen_t err_len = sizeof err;
    if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &err_len) != 0) {
      ec = errno_code();
      return;
    }
    if (err == EINPROGRESS || err == EALREADY) continue;
    if (err != 0) {
      ec = std::error_code(err, std::generic_category());
      return;
    }
    sockaddr_storage peer;
    socklen_t peer_len = sizeof peer;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len) == 0) return;
    if (errno != ENOTCONN) {
      ec = errno_code();
      return;
    }
    // Writable but not connected yet (a stale readiness bit): wait for the real one.
  }
}

void socket_base::set_int_option(int level, int name, int value, const char* what) {
  if (fd_ < 0) throw_error(make_error_code(errc::socket_closed), what);
  if (::setsockopt(fd_, level, name, &value, sizeof value) != 0) throw_error(errno_code(), what);
}

int socket_base::int_option(int level, int name, const char* what) const {
  if (fd_ < 0) throw_error(make_error_code(errc::socket_closed), what);
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd_, level, name, &value, &len) != 0) throw_error(errno_code(), what);
  return value;
}

socklen_t socket_base::local_name(sockaddr_storage& out, const char* what) const {
  if (fd_ < 0) throw_error(make_error_code(errc::socket_closed), what);
  socklen_t len = sizeof out;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&out), &len) != 0) throw_error(errno_code(), what);
  return len;
}

socklen_t socket_base::peer_name(sockaddr_storage& out, const char* what) const {
  if (fd_ < 0) throw_error(make_error_code(errc::socket_closed), what);
  socklen_t len = sizeof out;
  if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&out), &len) != 0) throw_error(errno_code(), what);
  return len;
}

endpoint socket_base::local_ip_endpoint(const char* what) const {
  sockaddr_storage address;
  const socklen_t len = local_name(address, what);
  return endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&address), len).value_or(endpoint{});
}

endpoint socket_base::peer_ip_endpoint(const char* what) const {
  sockaddr_storage address;
  const socklen_t len = peer_name(address, what);
  return endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&address), len).value_or(endpoint{});
}

}  // namespace weft::net::detail
