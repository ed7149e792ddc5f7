// stream.hpp: connected byte streams: TCP (tcp_stream) and Unix domain
// (unix_stream), with one API.
//
//   auto conn = weft::net::tcp_stream::connect("example.com", "80", 5s);
//   conn.write_all("GET / HTTP/1.0\r\n\r\n");
//   char buf[4096];
//   while (std::size_t n = conn.read_some(buf)) consume(buf, n);   // 0: end of stream
//
// Every call suspends only the calling fiber, and takes an optional deadline (see
// deadline.hpp) and an optional std::error_code&, by weft's one convention
// (runtime/error.hpp): without the error_code, failures throw (timeout_error at the
// deadline, errc::socket_closed if the socket was closed, std::system_error for the
// OS's errors); with it, they set the code and return what was transferred until
// then. Cancellation and misuse always throw.
// One fiber may read while another writes; two fibers reading (or writing) the same
// stream at once is refused with errc::already_waited when the second has to wait.
// A socket belongs to the scheduler (thread) whose fiber first had to wait on it.
//
// State after a timeout or cancellation:
//   - read_some: nothing was consumed; the stream is intact and may be read again.
//   - read_exact / write_all: the bytes before the interruption were transferred
//     (the error_code form returns how many) and the rest were not: the message
//     boundary is lost, so protocols should close the stream.
//   - connect: the half-open socket is closed; nothing leaks.
// Closing a stream (close(), or destroying it) wakes a fiber blocked in it with
// errc::socket_closed; that fiber touches nothing of the stream after its wait, so
// destroying a stream another fiber is blocked in is safe. Streams are move-only and
// close their descriptor once; do not move one while another fiber is blocked in it
// (the waiter stays with the moved-from object).
#pragma once

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <weft/net/address.hpp>
#include <weft/net/buffer.hpp>
#include <weft/net/deadline.hpp>
#include <weft/net/detail/socket_base.hpp>

namespace weft::net {

enum class shutdown_type { read = SHUT_RD, write = SHUT_WR, both = SHUT_RDWR };

// stream_socket is the part tcp_stream and unix_stream share.
class stream_socket : public detail::socket_base {
 public:
  // read_some reads what is available, at least 1 byte, waiting if there is none;
  // returns 0 at the end of the stream (the peer shut down writing) or for an empty
  // buffer.
  std::size_t read_some(mutable_buffer buf, deadline d = {}) {
    return detail::or_throw("weft::net::stream_socket::read_some", [&](std::error_code& ec) { return read_some(buf, d, ec); });
  }
  std::size_t read_some(mutable_buffer buf, std::error_code& ec) { return read_some(buf, {}, ec); }
  std::size_t read_some(mutable_buffer buf, deadline d, std::error_code& ec) {
    return read_some_as("weft::net::stream_socket::read_some", buf, d, ec);
  }

  // read_exact fills the whole buffer; the end of the stream before that is an
  // error (errc::end_of_stream).
  std::size_t read_exact(mutable_buffer buf, deadline d = {}) {
    return detail::or_throw("weft::net::stream_socket::read_exact", [&](std::error_code& ec) { return read_exact(buf, d, ec); });
  }
  std::size_t read_exact(mutable_buffer buf, std::error_code& ec) { return read_exact(buf, {}, ec); }
  std::size_t read_exact(mutable_buffer buf, deadline d, std::error_code& ec);

  // write_some writes what fits now, at least 1 byte, waiting if nothing fits.
  std::size_t write_some(const_buffer buf, deadline d = {}) {
    return detail::or_throw("weft::net::stream_socket::write_some", [&](std::error_code& ec) { return write_some(buf, d, ec); });
  }
  std::size_t write_some(const_buffer buf, std::error_code& ec) { return write_some(buf, {}, ec); }
  std::size_t write_some(const_buffer buf, deadline d, std::error_code& ec) {
    if (!require_usable("weft::net::stream_socket::write_some", ec) || buf.size == 0) return 0;
    const long n = io("weft::net::stream_socket::write_some", fd_event::writable, d.at, false, ec, [&](int fd) {
      return static_cast<long>(::send(fd, buf.data, buf.size, MSG_NOSIGNAL));  // EPIPE, not SIGPIPE
    });
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  // write_all writes every byte, waiting as needed; returns buf.size on success.
  std::size_t write_all(const_buffer buf, deadline d = {}) {
    return detail::or_throw("weft::net::stream_socket::write_all", [&](std::error_code& ec) { return write_all(buf, d, ec); });
  }
  std::size_t write_all(const_buffer buf, std::error_code& ec) { return write_all(buf, {}, ec); }
  std::size_t write_all(const_buffer buf, deadline d, std::error_code& ec) {
    std::size_t done = write_some(buf, d, ec);
    while (!ec && done < buf.size)  // rare: the send buffer was full
      done += write_some(const_buffer(static_cast<const char*>(buf.data) + done, buf.size - done), d, ec);
    return done;
  }

  // write_all(buffers) is the vectored (gather) form: the buffers' bytes in order,
  // in as few system calls as the kernel allows.
  std::size_t write_all(std::span<const const_buffer> bufs, deadline d = {}) {
    return detail::or_throw("weft::net::stream_socket::write_all", [&](std::error_code& ec) { return write_all(bufs, d, ec); });
  }
  std::size_t write_all(std::span<const const_buffer> bufs, std::error_code& ec) {
    return write_all(bufs, {}, ec);
  }
  std::size_t write_all(std::span<const const_buffer> bufs, deadline d, std::error_code& ec);

  // shutdown ends one or both directions (shutdown_type::write sends end-of-stream
  // to the peer while reading goes on).
  void shutdown(shutdown_type how) {
    detail::or_throw("weft::net::stream_socket::shutdown", [&](std::error_code& ec) { shutdown(how, ec); });
  }
  void shutdown(shutdown_type how, std::error_code& ec) noexcept;

 protected:
  stream_socket() noexcept = default;
  explicit stream_socket(int fd) noexcept : socket_base(fd) {}

 private:
  // read_some_as is read_some; `call` is the name errors give (read_exact's too).
  std::size_t read_some_as(const char* call, mutable_buffer buf, deadline d, std::error_code& ec) {
    if (!require_usable(call, ec) || buf.size == 0) return 0;
    // A short read drained the socket, so the next read would only get EAGAIN: wait
    // for the edge first and save the system call (edge-triggered epoll reports
    // data that arrives after the read). Not once the peer has shut down: its end
    // of stream may already be queued behind the data, with no edge to come.
    const bool wait_first = read_drained_ && !(watch_ && watch_->hung_up());
    const long n = io(call, fd_event::readable, d.at, wait_first, ec,
                      [&](int fd) { return static_cast<long>(::recv(fd, buf.data, buf.size, 0)); });
    read_drained_ = n > 0 && static_cast<std::size_t>(n) < buf.size;
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  bool read_drained_ = false;
};

// tcp_stream is a connected TCP socket.
class tcp_stream : public stream_socket {
 public:
  tcp_stream() noexcept = default;  // closed; assign a connected stream to it
  // Adopts a connected, non-blocking TCP socket (see release()).
  static tcp_stream adopt(int fd) noexcept { return tcp_stream(fd); }

  // connect opens a connection to `to`. Failures: ECONNREFUSED, ENETUNREACH, ...;
  // at the deadline the half-open socket is closed and timeout_error thrown.
  static tcp_stream connect(const endpoint& to, deadline d = {});
  static tcp_stream connect(const endpoint& to, deadline d, std::error_code& ec);
  // connect(host, service) resolves the name (off the scheduler thread) and tries
  // each address in turn until one answers; the deadline covers it all and the
  // last failure is reported.
  static tcp_stream connect(std::string_view host, std::string_view service, deadline d = {});
  static tcp_stream connect(std::string_view host, std::string_view service, deadline d, std::error_code& ec);

  void set_nodelay(bool on) { set_int_option(IPPROTO_TCP, TCP_NODELAY, on, "weft::net::tcp_stream::set_nodelay"); }
  bool nodelay() const { return int_option(IPPROTO_TCP, TCP_NODELAY, "weft::net::tcp_stream::nodelay") != 0; }
  endpoint local_endpoint() const;
  endpoint peer_endpoint() const;

 private:
  explicit tcp_stream(int fd) noexcept : stream_socket(fd) {}
  friend class tcp_listener;
};

// unix_stream is a connected Unix domain stream socket. Paths starting with '@'
// name Linux's abstract namespace (no file is created).
class unix_stream : public stream_socket {
 public:
  unix_stream() noexcept = default;
  static unix_stream adopt(int fd) noexcept { return unix_stream(fd); }

  // connect opens a connection to the listener at `path`. When the listener's
  // backlog is full (Linux answers EAGAIN, and no event says when room appears),
  // it retries after short sleeps (1 ms doubling to 20 ms) until an accept makes
  // room or the deadline passes (timeout_error / errc::timed_out). Failures:
  // ENOENT (no such path), ECONNREFUSED (nobody listens), ...
  static unix_stream connect(std::string_view path, deadline d = {});
  static unix_stream connect(std::string_view path, deadline d, std::error_code& ec);
  // pair() is two streams connected to each other (socketpair).
  static std::pair<unix_stream, unix_stream> pair();

  std::string local_path() const;
  std::string peer_path() const;

 private:
  explicit unix_stream(int fd) noexcept : stream_socket(fd) {}
  friend class unix_listener;
};

}  // namespace weft::net
