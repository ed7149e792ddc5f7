// reactor.hpp: epoll, behind "sleep until this deadline, an fd event, or a wake-up".
//
// Descriptors are registered once, edge-triggered, for both directions, and stay
// registered until their watch is destroyed: re-arming interest with epoll_ctl around
// every read costs a system call per operation (lalinsky/zio #510). Because an edge
// may arrive while nobody waits, each direction keeps a sticky "ready" bit; a wait
// that finds it set returns at once. Callers try the system call first and wait only
// after EAGAIN, so a stale bit costs one extra EAGAIN, never a lost event.
#pragma once

#include <sys/epoll.h>

#include <cstdint>

#include "runtime/detail/fiber_record.hpp"

namespace weft::detail {

// fd_state is one registered descriptor; epoll's data.ptr points at it, so it must
// not move while registered. At most one fiber waits per direction.
struct fd_state {
  int fd = -1;
  park_token reader{};      // the fiber waiting for readability, if any
  park_token writer{};      // the fiber waiting for writability, if any
  bool readable = false;    // an edge arrived that no reader has consumed
  bool writable = false;
  bool hung_up = false;     // the peer shut down or the fd failed: stays so
  int refs = 1;             // the watch, plus a fiber while it waits (owner thread only)
};

class reactor {
 public:
  explicit reactor(int wake_fd);  // wake_fd: the inbox's eventfd, level-triggered
  ~reactor();
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  // add registers st->fd (edge-triggered, in and out); throws std::system_error.
  void add(fd_state* st);
  // remove unregisters st->fd; harmless if the fd was already closed.
  void remove(fd_state* st) noexcept;

  // poll waits up to timeout_ms (-1: forever, 0: just look) and wakes the fibers
  // whose descriptors became ready. Returns true if the wake fd fired.
  bool poll(int timeout_ms) noexcept;

  // registered is how many descriptors are registered (the wake fd excluded).
  std::size_t registered() const noexcept { return registered_; }

 private:
  int epoll_fd_;
  int wake_fd_;
  std::size_t registered_ = 0;
  epoll_event events_[1024];  // one epoll_wait serves up to this many ready fds
};

}  // namespace weft::detail
