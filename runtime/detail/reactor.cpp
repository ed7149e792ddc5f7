#include "runtime/detail/reactor.hpp"

#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "runtime/detail/scheduler.hpp"

namespace weft::detail {

reactor::reactor(int wake_fd) : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), wake_fd_(wake_fd) {
  if (epoll_fd_ < 0) throw std::system_error(errno, std::generic_category(), "weft: epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: it stays set until drained
  ev.data.ptr = nullptr;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    const int saved = errno;
    ::close(epoll_fd_);
    throw std::system_error(saved, std::generic_category(), "weft: epoll_ctl(eventfd)");
  }
}

reactor::~reactor() { ::close(epoll_fd_); }

void reactor::add(fd_state* st) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = st;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, st->fd, &ev) != 0)
    throw std::system_error(errno, std::generic_category(), "weft: epoll_ctl(ADD)");
  ++registered_;
}

void reactor::remove(fd_state* st) noexcept {
  // ENOENT/EBADF: the fd was closed first, which removed it from epoll already.
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, st->fd, nullptr);
  --registered_;
}

bool reactor::poll(int timeout_ms) noexcept {
  const int n = ::epoll_wait(epoll_fd_, events_, static_cast<int>(std::size(events_)), timeout_ms);
  bool woken = false;
  for (int i = 0; i < n; ++i) {
    auto* st = static_cast<fd_state*>(events_[i].data.ptr);
    const std::uint32_t e = events_[i].events;
    if (st == nullptr) {
      woken = true;
      continue;
    }
    // Errors and hang-ups wake both directions: the next system call reports them.
    if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) st->hung_up = true;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      if (!(st->reader && scheduler::wake(st->reader, wake_reason::notified))) st->readable = true;
      st->reader = {};
    }
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
      if (!(st->writer && scheduler::wake(st->writer, wake_reason::notified))) st->writable = true;
      st->writer = {};
    }
  }
  return woken;
}

}  // namespace weft::detail
