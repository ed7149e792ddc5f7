// fd_wait.hpp: waiting for a file descriptor to become readable or writable.
//
// fd_watch registers a descriptor with the scheduler's epoll once (edge-triggered)
// and keeps it registered for its lifetime, which is what sockets use: try the
// system call on the non-blocking fd first, and wait only after EAGAIN:
//
//   weft::fd_watch watch(fd);                 // fd is O_NONBLOCK
//   for (;;) {
//     ssize_t n = ::read(fd, buf, size);
//     if (n >= 0 || errno != EAGAIN) break;
//     watch.wait_readable();                  // only this fiber waits
//   }
//
// A wait may return although the fd is not ready any more (another reader was
// faster, or the readiness was reported earlier): always retry the system call.
// Errors and hang-ups count as ready in both directions; the next call reports them.
#pragma once

#include <cstdint>

#include <weft/runtime/clock.hpp>

namespace weft {

namespace detail {
struct fd_state;
class scheduler;
}

// fd_event names a direction of readiness.
enum class fd_event { readable, writable };

namespace detail {
// wait_fd_as is wait_fd_until (below); `call` names the user's call in errors.
bool wait_fd_as(int fd, fd_event ev, time_point deadline, const char* call);
}  // namespace detail

// fd_watch watches one descriptor on the calling fiber's scheduler; it does not own
// the descriptor. Move-only; it is used on that scheduler. It may be destroyed
// anywhere: on another thread (a plain one, or another scheduler's) its scheduler
// removes the registration at its next look, and after that scheduler has ended
// (a socket kept past run()) there is nothing left to remove.
//
// The descriptor may be closed before its watch is destroyed (a C library that
// closes its own fd): from the watch's destruction on, nothing that happens to the
// old open file reaches weft, even when a dup, a forked child or an SCM_RIGHTS
// message keeps that file open, and a new watch of the reused fd number is not
// disturbed. Until then, a fiber waiting on a closed fd is woken only by the file's
// other descriptors' activity, its deadline, cancellation or the watch's destruction.
class fd_watch {
 public:
  // Registers fd. Throws errc::not_in_fiber outside a fiber, errc::invalid_argument
  // for a negative fd, std::system_error (std::generic_category) if epoll refuses
  // the fd (EEXIST: another live watch has it; EPERM: a regular file).
  explicit fd_watch(int fd);
  fd_watch(fd_watch&&) noexcept;
  fd_watch& operator=(fd_watch&&) noexcept;
  // Unregisters the fd; a fiber still waiting on it is woken (its retry sees EBADF
  // if the fd was closed).
  ~fd_watch();

  int fd() const noexcept;
  // hung_up is true once epoll reported the peer's shutdown, a hang-up or an error
  // (EPOLLRDHUP, EPOLLHUP, EPOLLERR). It tells a reader that drained the socket
  // whether the end of the stream may still be waiting to be read: that arrives
  // without a further edge.
  bool hung_up() const noexcept;

  // wait(ev) suspends the calling fiber until the fd is ready for ev; the _until and
  // _for forms return false when the deadline passes first. One fiber per direction
  // (a second gets errc::already_waited). Throws cancelled_error on cancellation.
  void wait(fd_event ev);
  bool wait_until(fd_event ev, time_point deadline) { return wait_until(ev, deadline, "weft::fd_watch::wait_until"); }
  // The same, with `call` (a static string) naming the caller's own call in its
  // errors and in deadlock reports (net/'s sockets pass "weft::net::stream_socket::read_some", ...).
  bool wait_until(fd_event ev, time_point deadline, const char* call);
  // The same, setting `ended` if the watch was ended while the fiber waited (the
  // watch destroyed, by its socket's close() say): then the object that held the
  // watch may be gone too, and the caller must not touch it.
  bool wait_until(fd_event ev, time_point deadline, const char* call, bool& ended);
  template <class Rep, class Period>
  bool wait_for(fd_event ev, std::chrono::duration<Rep, Period> d) {
    return wait_until(ev, deadline_after(d), "weft::fd_watch::wait_for");
  }

  void wait_readable() { wait(fd_event::readable); }
  void wait_writable() { wait(fd_event::writable); }

  // belongs_here: the calling thread runs the scheduler that made this watch (the
  // same run(), not a later one on this thread). A watch waits only there; a
  // socket whose watch does not belong here makes a new one (socket_base::wait).
  bool belongs_here() const noexcept;
  // waited_on: a fiber is parked on this watch now. Callable from any thread (a
  // socket used from another scheduler asks it before it makes a watch there).
  bool waited_on() const noexcept;

 private:
  friend bool detail::wait_fd_as(int fd, fd_event ev, time_point deadline, const char* call);
  // fd_watch(fd, call): `call` names the user's call in errors (wait_fd_until's).
  fd_watch(int fd, const char* call);
  void release() noexcept;
  detail::scheduler* sched_ = nullptr;
  std::uint64_t incarnation_ = 0;  // sched_'s (scheduler::incarnation)
  // Counted (fd_state::refs) while a fiber waits, so destroying the watch under a
  // waiter cannot leave that waiter touching freed memory. Both live on one thread,
  // so the count is a plain int, not a shared_ptr's atomic.
  detail::fd_state* state_ = nullptr;
};

// wait_fd_until(fd, ev, deadline) waits once for an fd that has no fd_watch (for
// example a descriptor owned by a C library), registering it only for the wait.
// Returns false at the deadline. Costs two epoll_ctl calls; use fd_watch for fds
// waited on repeatedly.
inline bool wait_fd_until(int fd, fd_event ev, time_point deadline) {
  return detail::wait_fd_as(fd, ev, deadline, "weft::wait_fd_until");
}
template <class Rep, class Period>
bool wait_fd_for(int fd, fd_event ev, std::chrono::duration<Rep, Period> d) {
  return detail::wait_fd_as(fd, ev, deadline_after(d), "weft::wait_fd_for");
}

}  // namespace weft
