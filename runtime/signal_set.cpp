#include "runtime/signal_set.hpp"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "runtime/detail/scheduler.hpp"
#include "runtime/error.hpp"
#include "runtime/fd_wait.hpp"

namespace weft {

signal_set::signal_set(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals)
    if (sigaddset(&set, sig) != 0) throw error(errc::invalid_argument, "weft::signal_set: not a signal number");
  if (const int e = ::pthread_sigmask(SIG_BLOCK, &set, &previous_mask_); e != 0)
    throw std::system_error(e, std::system_category(), "weft::signal_set: pthread_sigmask");
  fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) {
    const int e = errno;
    ::pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
    throw std::system_error(e, std::system_category(), "weft::signal_set: signalfd");
  }
}

signal_set::~signal_set() {
  ::close(fd_);
  ::pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

int signal_set::wait() { return *wait_until(no_deadline); }

std::optional<int> signal_set::wait_until(time_point deadline) {
  detail::scheduler::require_fiber("weft::signal_set::wait");
  // Registered only for the wait: a set waited on once (the usual shutdown signal)
  // should not keep an fd in epoll, which would hide deadlocks from run().
  for (;;) {
    signalfd_siginfo info;
    const ssize_t n = ::read(fd_, &info, sizeof info);
    if (n == static_cast<ssize_t>(sizeof info)) return static_cast<int>(info.ssi_signo);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
      throw std::system_error(errno, std::system_category(), "weft::signal_set: read");
    if (n < 0 && errno == EINTR) continue;
    if (!wait_fd_until(fd_, fd_event::readable, deadline)) return std::nullopt;
  }
}

}  // namespace weft
