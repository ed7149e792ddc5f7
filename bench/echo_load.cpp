#include "echo_load.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace weft_bench {
namespace {

[[noreturn]] void throw_errno(const char* what) { throw std::system_error(errno, std::generic_category(), what); }

// The byte at position i of request `sequence` on connection `conn`.
unsigned char expected_byte(std::size_t conn, std::uint32_t sequence, std::size_t i) {
  return static_cast<unsigned char>(conn * 7 + sequence * 13 + i * 29);
}

}  // namespace

bool raise_fd_limit(std::size_t n) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= n) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < n) return false;
  lim.rlim_cur = n;
  return ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

echo_load::echo_load(std::uint16_t port, int connections)
    : connections_(static_cast<std::size_t>(connections)), events_(static_cast<std::size_t>(connections)) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) throw_errno("echo_load: epoll_create1");
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (std::size_t i = 0; i < connections_.size(); ++i) {
    connection& c = connections_[i];
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0) throw_errno("echo_load: socket");
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) throw_errno("echo_load: connect");
    const int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // Requests are written blocking (64 bytes always fit); responses are read when
    // epoll says so, level-triggered.
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) throw_errno("echo_load: epoll_ctl");
  }
}

echo_load::~echo_load() {
  for (connection& c : connections_)
    if (c.fd >= 0) ::close(c.fd);
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void echo_load::send_request(connection& c) {
  unsigned char request[message_size];
  const std::size_t index = static_cast<std::size_t>(&c - connections_.data());
  for (std::size_t i = 0; i < message_size; ++i) request[i] = expected_byte(index, c.sequence, i);
  std::size_t sent = 0;
  while (sent < message_size) {
    const ssize_t n = ::send(c.fd, request + sent, message_size - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("echo_load: send");
    }
    sent += static_cast<std::size_t>(n);
  }
  c.received = 0;
  c.in_flight = true;
  ++in_flight_;
}

void echo_load::start() {
  for (connection& c : connections_) send_request(c);
}

bool echo_load::fail(std::string what) {
  if (error_.empty()) error_ = std::move(what);
  return false;
}

bool echo_load::read_ready(connection& c) {
  if (!c.in_flight) return false;
  const ssize_t n = ::recv(c.fd, c.response + c.received, message_size - c.received, 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return false;
    return fail(std::string("echo_load: recv: ") + std::strerror(errno));
  }
  if (n == 0) return fail("echo_load: the server closed a connection");
  c.received += static_cast<std::size_t>(n);
  if (c.received < message_size) return false;
  const std::size_t index = static_cast<std::size_t>(&c - connections_.data());
  for (std::size_t i = 0; i < message_size; ++i)
    if (c.response[i] != expected_byte(index, c.sequence, i)) return fail("echo_load: a response differs from its request");
  verified_ += message_size;
  c.in_flight = false;
  --in_flight_;
  ++c.sequence;
  return true;
}

bool echo_load::complete_one() {
  for (;;) {
    while (next_ < ready_) {
      connection& c = connections_[events_[static_cast<std::size_t>(next_++)].data.u64];
      if (read_ready(c)) {
        send_request(c);
        return true;
      }
      if (!error_.empty()) return false;
    }
    ready_ = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), 10000);
    next_ = 0;
    if (ready_ == 0) return fail("echo_load: no response for 10 s");
    if (ready_ < 0) {
      if (errno == EINTR) {
        ready_ = 0;
        continue;
      }
      return fail(std::string("echo_load: epoll_wait: ") + std::strerror(errno));
    }
  }
}

bool echo_load::finish() {
  while (in_flight_ > 0) {
    while (next_ < ready_) {
      connection& c = connections_[events_[static_cast<std::size_t>(next_++)].data.u64];
      read_ready(c);
      if (!error_.empty()) return false;
    }
    if (in_flight_ == 0) break;
    ready_ = ::epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), 10000);
    next_ = 0;
    if (ready_ <= 0 && errno != EINTR) return fail("echo_load: responses missing at the end");
    if (ready_ < 0) ready_ = 0;
  }
  return error_.empty();
}

}  // namespace weft_bench
