#include <weft/runtime/detail/reactor.hpp>

#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include <weft/runtime/detail/scheduler.hpp>

namespace weft::detail {

reactor::reactor(int wake_fd) : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), wake_fd_(wake_fd) {
  if (epoll_fd_ < 0)
    throw std::system_error(errno, std::generic_category(), "weft::run: epoll_create1 (a scheduler's reactor)");
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: it stays set until drained
  ev.data.u64 = wake_key;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    const int saved = errno;
    ::close(epoll_fd_);
    throw std::system_error(saved, std::generic_category(), "weft: epoll_ctl(eventfd)");
  }
}

reactor::~reactor() { ::close(epoll_fd_); }

void reactor::add(fd_state* st, const char* what) {
  // Everything that can throw bad_alloc comes before the registration.
  const auto fd = static_cast<std::size_t>(st->fd);
  if (live_slot_of_fd_.size() <= fd) live_slot_of_fd_.resize(fd + 1, 0);
  if (free_slots_.empty()) {
    free_slots_.reserve(slots_.size() + 1);
    slots_.emplace_back();
    free_slots_.push_back(static_cast<std::uint32_t>(slots_.size() - 1));
  }
  const std::uint32_t index = free_slots_.back();
  std::uint32_t& live = live_slot_of_fd_[fd];

  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = key(index, slots_[index].generation);
  int rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, st->fd, &ev);
  // EEXIST with no live watch of this number: the same file is still registered
  // under it by a watch that is gone (its descriptor was closed first and the file
  // came back to this number, e.g. by dup2), or by one released on another thread
  // whose unregistration has not landed yet (fd_state::released). Take that
  // registration over: MOD gives it the new key, so its old one turns stale like
  // any other (and the old watch's EPOLL_CTL_DEL is skipped, below).
  if (rc != 0 && errno == EEXIST &&
      (live == 0 || slots_[live - 1].state->released.load(std::memory_order_acquire)))
    rc = ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, st->fd, &ev);
  if (rc != 0) {
    const int e = errno;
    const char* why = e == EEXIST ? ": the descriptor is watched already"
                      : e == EPERM
                          ? ": epoll_ctl (this kind of file cannot be polled, e.g. a regular file or a directory: "
                            "read it with weft::fs or weft::to_thread)"
                          : ": epoll_ctl";
    throw std::system_error(e, std::generic_category(), std::string(what) + why);
  }
  // The kernel took a second registration under a number a live watch still holds:
  // that watch's descriptor was closed and the number reused for another file. Its
  // own registration (if the old file lives on) is left to go stale, and its
  // EPOLL_CTL_DEL, which would now remove ours, is skipped.
  if (live != 0) slots_[live - 1].state->number_reused = true;
  live = index + 1;
  free_slots_.pop_back();
  slots_[index].state = st;
  st->slot = index;
  ++registered_;
}

void reactor::remove(fd_state* st) noexcept {
  // EBADF / ENOENT: the descriptor was closed first (and its number perhaps reused
  // for an unwatched file). If its file lives on elsewhere, the registration stays
  // in the kernel: the generation bump below makes its events stale.
  if (!st->number_reused) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, st->fd, nullptr);
  if (live_slot_of_fd_[static_cast<std::size_t>(st->fd)] == st->slot + 1)
    live_slot_of_fd_[static_cast<std::size_t>(st->fd)] = 0;
  slot& s = slots_[st->slot];
  s.state = nullptr;
  ++s.generation;
  free_slots_.push_back(st->slot);  // within the reserved capacity
  --registered_;
}

bool reactor::poll(int timeout_ms) noexcept {
  const int n = ::epoll_wait(epoll_fd_, events_, static_cast<int>(std::size(events_)), timeout_ms);
  bool woken = false;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t k = events_[i].data.u64;
    if (k == wake_key) {
      woken = true;
      continue;
    }
    // Every key was made by add() and slots_ never shrinks, so the index is in
    // range. A generation that does not match is a registration whose watch is gone
    // (see the header): drop its event.
    const slot& s = slots_[static_cast<std::uint32_t>(k)];
    if (s.generation != static_cast<std::uint32_t>(k >> 32)) [[unlikely]]
      continue;
    fd_state* st = s.state;
    const std::uint32_t e = events_[i].events;
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
