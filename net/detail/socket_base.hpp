// socket_base.hpp: what every weft socket is underneath: one owned, non-blocking
// descriptor, and the one loop that turns a non-blocking system call into a call
// that suspends only its fiber.
//
// The loop tries the system call first and waits only after EAGAIN (most reads on a
// busy connection succeed at once). The descriptor is registered with the
// scheduler's epoll the first time a call has to wait, and stays registered until
// close: sockets that never wait never cost an epoll_ctl.
//
// Transient errors. Every errno a socket call can see has one defined outcome, said
// at each call below; in short (Go's net package and asyncio do the same):
//   EAGAIN / EWOULDBLOCK   wait for readiness (epoll), then retry; a connect that gets
//                          EAGAIN (AF_UNIX: the listener's backlog is full) has no
//                          event to wait for, so it retries after a backoff sleep
//   EINTR                  retry at once (a connect goes on in the background: wait)
//   EINPROGRESS, EALREADY  connect: wait for writability, then read SO_ERROR
//   ECONNABORTED, EPROTO,  accept: that one connection failed before it was taken;
//   network errors         take the next (accept(2) asks for this on Linux)
//   EMFILE, ENFILE,        accept: back off (sleep, 1 ms doubling to 100 ms) and retry
//   ENOBUFS, ENOMEM        until the deadline; socket(): reported
//   anything else          reported
// Retries end at the deadline with errc::timed_out. errno values are reported in
// std::generic_category (compare with std::errc), weft's own in weft::category().
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include <weft/net/address.hpp>
#include <weft/runtime/detail/always_inline.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fd_wait.hpp>

namespace weft::net::detail {

// throw_error throws the exception the throwing overloads report ec with:
// weft::timeout_error for a deadline, weft::error for weft's other codes
// (socket_closed, end_of_stream, ...), std::system_error naming `what` for the OS's.
[[noreturn]] void throw_error(const std::error_code& ec, const char* what);
inline void throw_if(const std::error_code& ec, const char* what) {
  if (ec) [[unlikely]]
    throw_error(ec, what);
}
// errno_code is errno as an error_code: in std::generic_category, like every errno
// weft reports.
inline std::error_code errno_code() noexcept { return {errno, std::generic_category()}; }

// or_throw(what, f) is how each call's throwing form is made from its error_code
// form: it runs f(ec) and throws (throw_error) if the code is set.
template <class F>
decltype(auto) or_throw(const char* what, F&& f) {
  std::error_code ec;
  if constexpr (std::is_void_v<std::invoke_result_t<F, std::error_code&>>) {
    std::forward<F>(f)(ec);
    throw_if(ec, what);
  } else {
    auto result = std::forward<F>(f)(ec);
    throw_if(ec, what);
    return result;
  }
}

class socket_base {
 public:
  bool is_open() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return is_open(); }
  int native_handle() const noexcept { return fd_; }

  // close() closes the descriptor (once; later calls do nothing). A fiber blocked
  // in a call on this socket wakes and fails with errc::socket_closed.
  void close() noexcept;
  // release() gives the descriptor (still non-blocking) to the caller, who then
  // owns it; the socket becomes closed without closing it. -1 if already closed.
  int release() noexcept;

 protected:
  socket_base() noexcept = default;
  explicit socket_base(int fd) noexcept : fd_(fd) {}  // adopts a non-blocking fd
  socket_base(socket_base&& other) noexcept;
  socket_base& operator=(socket_base&& other) noexcept;
  ~socket_base() { close(); }

  // open_fd is socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); -1 and ec on
  // failure. Nothing is retried: EMFILE, ENFILE, ENOBUFS, ENOMEM are reported (the
  // caller has no connection waiting that a retry would serve).
  static int open_fd(int domain, int type, std::error_code& ec) noexcept;

  // require_usable throws not_in_fiber outside a fiber (so a call behaves the same
  // whether or not it would have had to wait); false and ec if the socket is closed.
  bool require_usable(const char* what, std::error_code& ec) const {
    ec.clear();
    weft::detail::scheduler::require_fiber(what);
    if (fd_ < 0) [[unlikely]] {
      ec = make_error_code(errc::socket_closed);
      return false;
    }
    return true;
  }

  // wait suspends the fiber until the fd is ready for ev. false with ec at the
  // deadline or when another fiber closed the socket meanwhile. Throws
  // cancelled_error, and errc::already_waited if another fiber waits the same way,
  // or any way from another scheduler.
  // `call` (a static string) names the user's call in those errors.
  bool wait(const char* call, fd_event ev, time_point deadline, std::error_code& ec);

  // io runs op(fd) (a non-blocking system call: >= 0 done, -1 with errno) until it
  // succeeds or fails with something other than EAGAIN/EINTR, waiting for ev in
  // between. wait_first skips the first attempt when the caller knows it would
  // only get EAGAIN. Returns op's result, or -1 with ec: the errno (ENOBUFS and
  // ENOMEM included: for a datagram they mean it was dropped, which the caller must
  // hear), timed_out, or socket_closed.
  template <class Op>
  WEFT_ALWAYS_INLINE long io(const char* call, fd_event ev, time_point deadline, bool wait_first, std::error_code& ec,
                                  Op op) {
    if (wait_first && !wait(call, ev, deadline, ec)) return -1;
    for (;;) {
      const long n = op(fd_);
      if (n >= 0) [[likely]]
        return n;
      const int e = errno;
      if (e == EINTR) continue;
      if (e != EAGAIN && e != EWOULDBLOCK) {
        ec = std::error_code(e, std::generic_category());
        return -1;
      }
      if (!wait(call, ev, deadline, ec)) return -1;
    }
  }

  // accept_fd takes one connection (non-blocking, close-on-exec) from a listening
  // socket. EAGAIN: waits for readability. EINTR: retries. ECONNABORTED, EPROTO and
  // the network errors accept(2) passes on from the new connection (ENETDOWN,
  // ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, ENETUNREACH): that
  // connection is lost, the next is taken. EMFILE, ENFILE, ENOBUFS, ENOMEM: the
  // process is out of descriptors or memory; epoll will not report the waiting
  // connection again and retrying at once would spin, so it backs off (1 ms doubling
  // to 100 ms) and retries until the deadline (timed_out): the connection waits in
  // the backlog until descriptors free up. Anything else is reported.
  int accept_fd(const char* call, sockaddr_storage* peer, socklen_t* peer_len, time_point deadline,
                std::error_code& ec);

  // connect_fd starts a non-blocking connect on fd_ and waits for its outcome.
  // EINPROGRESS, EINTR, EALREADY: the connect goes on; waits for writability and
  // reports SO_ERROR. EAGAIN (AF_UNIX: the listener's backlog is full; TCP: no
  // local port free): no event will say when there is room, so it retries after a
  // backoff sleep (1 ms doubling to 20 ms) until the deadline (timed_out). Anything
  // else (ECONNREFUSED, ENOENT, ENETUNREACH, ...) is reported.
  void connect_fd(const char* call, const sockaddr* to, socklen_t len, time_point deadline, std::error_code& ec);

  // back_off sleeps the fiber for `delay`, never past the deadline, and doubles
  // delay up to max_delay: the retry pause for errors that no epoll event ends.
  // false with ec when the deadline has passed (timed_out) or another fiber closed
  // the socket meanwhile (socket_closed). Throws cancelled_error naming `call`.
  bool back_off(const char* call, duration& delay, duration max_delay, time_point deadline, std::error_code& ec);

  // Socket options and names, shared by the socket kinds.
  void set_int_option(int level, int name, int value, const char* what);
  int int_option(int level, int name, const char* what) const;
  socklen_t local_name(sockaddr_storage& out, const char* what) const;
  socklen_t peer_name(sockaddr_storage& out, const char* what) const;
  // The IP endpoints of a TCP or UDP socket.
  endpoint local_ip_endpoint(const char* what) const;
  endpoint peer_ip_endpoint(const char* what) const;

  int fd_ = -1;
  std::optional<fd_watch> watch_;  // engaged once a call had to wait
};

}  // namespace weft::net::detail
