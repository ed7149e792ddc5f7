#include <weft/runtime/signal_set.hpp>

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fd_wait.hpp>

namespace weft {

namespace {

// thread_signals is what the signal_sets of one thread have done to its mask. The
// mask is per thread, so the table is too, and needs no lock.
struct thread_signals {
  int users[NSIG] = {};         // live sets of this thread that include the signal
  bool kept[NSIG] = {};         // blocked before the first of them: stays blocked
};
thread_local thread_signals this_thread_signals;

// A thread's serial number, unique for the life of the process (unlike a pthread_t
// or the table's address, which a later thread may reuse).
std::uint64_t this_thread_serial() noexcept {
  static std::atomic<std::uint64_t> next{1};
  thread_local const std::uint64_t serial = next.fetch_add(1, std::memory_order_relaxed);
  return serial;
}

// release drops one use of each signal in `signals` and unblocks those whose last
// user this was and that the thread had not blocked itself.
void release(const sigset_t& signals) noexcept {
  thread_signals& table = this_thread_signals;
  sigset_t unblock;
  sigemptyset(&unblock);
  bool any = false;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sigismember(&signals, sig) != 1) continue;
    if (--table.users[sig] == 0 && !table.kept[sig]) {
      sigaddset(&unblock, sig);
      any = true;
    }
  }
  if (!any) return;
  // Arrivals that were meant for the set and never read: take them now, or
  // unblocking would deliver them to their default action.
  const timespec now{0, 0};
  while (::sigtimedwait(&unblock, nullptr, &now) > 0) {
  }
  ::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
}

}  // namespace

signal_set::signal_set(std::initializer_list<int> signals) : thread_(this_thread_serial()) {
  sigemptyset(&signals_);
  for (int sig : signals) {
    if (sig == SIGKILL || sig == SIGSTOP)
      throw error(errc::invalid_argument, "weft::signal_set", "SIGKILL and SIGSTOP cannot be caught");
    if (sig <= 0 || sig >= NSIG || sigaddset(&signals_, sig) != 0)
      throw error(errc::invalid_argument, "weft::signal_set", std::to_string(sig) + " is not a signal number");
  }
  sigset_t before;
  if (const int e = ::pthread_sigmask(SIG_BLOCK, &signals_, &before); e != 0)
    throw std::system_error(e, std::generic_category(), "weft::signal_set: pthread_sigmask");
  thread_signals& table = this_thread_signals;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sigismember(&signals_, sig) != 1) continue;
    if (table.users[sig]++ == 0) table.kept[sig] = sigismember(&before, sig) == 1;
  }
  fd_ = ::signalfd(-1, &signals_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) {
    const int e = errno;
    release(signals_);
    throw std::system_error(e, std::generic_category(), "weft::signal_set: signalfd");
  }
}

signal_set::~signal_set() {
  ::close(fd_);
  if (thread_ != this_thread_serial()) {
    std::fputs("weft::signal_set: destroyed on another thread than the one that made it; "
               "its signals stay blocked in that thread\n", stderr);
    return;
  }
  release(signals_);
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
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN)
      throw std::system_error(errno, std::generic_category(), "weft::signal_set::wait: read");
    if (!wait_fd_until(fd_, fd_event::readable, deadline)) return std::nullopt;
  }
}

}  // namespace weft
