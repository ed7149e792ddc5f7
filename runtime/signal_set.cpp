#include <weft/runtime/signal_set.hpp>

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scheduler_group.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fd_wait.hpp>
#include <weft/runtime/fiber.hpp>

namespace weft {

namespace {

// thread_signals is what the signal_sets of one thread have done to its mask. The
// mask is per thread, so the table is too, and needs no lock.
struct thread_signals {
  int users[NSIG] = {};         // live sets of this thread that include the signal
  bool kept[NSIG] = {};         // blocked before the first of them: stays blocked
  bool left_blocked[NSIG] = {};  // its last set ended while another thread watched it
};
thread_local thread_signals this_thread_signals;

// The process-wide side, guarded by process_table. `watching_threads[sig]` counts
// the threads with a live set that includes sig (in their own mask): a
// process-directed signal goes to any thread not blocking it. process_table orders
// a thread's whole acquire (block, count) against another's whole release (count,
// drain, unblock): a set made on another thread between a release's "nobody else
// watches" and its drain would lose what the drain takes. Sets are made and
// destroyed rarely; the lock costs nothing that matters.
std::mutex process_table;
int watching_threads[NSIG];

// A thread's serial number, unique for the life of the process (unlike a pthread_t
// or the table's address, which a later thread may reuse).
std::uint64_t this_thread_serial() noexcept {
  static std::atomic<std::uint64_t> next{1};
  thread_local const std::uint64_t serial = next.fetch_add(1, std::memory_order_relaxed);
  return serial;
}

// Forwarding. A thread the program started before the set (or one that unblocks
// the signal) does not block it, and the kernel may hand it a process-directed
// one: with the default action, the end of the process. So while any set watches
// a signal, the process's action for it is forward_signal, which sends it on to
// the thread that reads one of those sets (its maker's: for a set made on a worker
// scheduler, that worker, which blocks every signal), where it waits for the set's
// signalfd (Go's signal.Notify does the same). `readers[sig]` lists one thread id
// per live set that includes sig (guarded by process_table); the action the
// program had is put back when the last such set goes. Not for the synchronous
// signals a fault raises: the faulting instruction would run again after the
// handler, forever (and SIGSEGV is the stack-overflow reporter's); those keep
// their action.
std::vector<pid_t> readers[NSIG];
std::atomic<pid_t> forward_to[NSIG];     // one of readers[sig]; 0: none
std::atomic<int> forwarding_now{0};      // handlers between reading forward_to and sending
struct sigaction action_before[NSIG];    // the program's action (SIG_DFL unless it set one)

bool forwarded(int sig) noexcept {
  return sig != SIGSEGV && sig != SIGBUS && sig != SIGFPE && sig != SIGILL && sig != SIGTRAP &&
         sig != SIGSYS;
}

extern "C" void forward_signal(int sig) {
  // Async-signal-safe only: atomics on lock-free ints, getpid, gettid, tgkill, sigaction.
  forwarding_now.fetch_add(1);
  const int saved_errno = errno;
  const pid_t to = forward_to[sig].load();
  const pid_t self = ::gettid();
  if (to == 0 || to == self || ::tgkill(::getpid(), to, sig) != 0) {
    // No set's thread to send it to: the last set is gone and a save-and-restore
    // (glibc's system(), a library's) put this action back after it; or this is a
    // child forked while a set lived (its threads are not here); or the set's
    // thread ended without destroying it (its id now this thread's, or nobody's).
    // The program's action takes it: put back, and the signal sent again to this
    // thread, where it arrives when this handler returns.
    ::sigaction(sig, &action_before[sig], nullptr);
    ::tgkill(::getpid(), self, sig);
  }
  errno = saved_errno;
  forwarding_now.fetch_sub(1);
}

bool is_forwarder(const struct sigaction& a) noexcept {
  return (a.sa_flags & SA_SIGINFO) == 0 && a.sa_handler == &forward_signal;
}

// start_forwarding: sig's first set, read on thread `to`, where sig is blocked.
void start_forwarding(int sig, pid_t to) noexcept {
  struct sigaction now {};
  ::sigaction(sig, nullptr, &now);
  if (!is_forwarder(now)) action_before[sig] = now;  // else a restore left ours: keep the older
  forward_to[sig].store(to);
  struct sigaction forward {};
  forward.sa_handler = &forward_signal;
  forward.sa_flags = SA_RESTART | SA_ONSTACK;  // the program's own threads' calls go on
  sigemptyset(&forward.sa_mask);
  ::sigaction(sig, &forward, nullptr);
}

// stop_forwarding: sig's last set is going. After the program's action is back,
// it waits out a handler that read a thread id before it was cleared, whose send
// would otherwise land after the caller drains and unblocks sig (seq_cst on both
// atomics: either the handler sees 0, or this sees the handler).
void stop_forwarding(int sig) noexcept {
  forward_to[sig].store(0);
  ::sigaction(sig, &action_before[sig], nullptr);
  while (forwarding_now.load() != 0) std::this_thread::yield();
}

// add_reader / remove_reader: one set including sig, read on thread `reader`,
// begins / ends.
void add_reader(int sig, pid_t reader) noexcept {  // room reserved by the caller
  readers[sig].push_back(reader);
  if (readers[sig].size() == 1 && forwarded(sig)) start_forwarding(sig, reader);
}

void remove_reader(int sig, pid_t reader) noexcept {
  std::vector<pid_t>& list = readers[sig];
  if (auto it = std::find(list.begin(), list.end(), reader); it != list.end()) list.erase(it);
  if (!forwarded(sig)) return;
  if (list.empty()) {
    stop_forwarding(sig);
  } else if (forward_to[sig].load() == reader && std::find(list.begin(), list.end(), reader) == list.end()) {
    forward_to[sig].store(list.front());
  }
}

// acquire counts one more use of each signal in `signals` by this thread, which
// has just blocked them (`before`: its mask before that), for a set read on
// thread `reader`.
void acquire(const sigset_t& signals, const sigset_t& before, pid_t reader) noexcept {
  thread_signals& table = this_thread_signals;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sigismember(&signals, sig) != 1) continue;
    add_reader(sig, reader);
    if (table.users[sig]++ > 0) continue;
    ++watching_threads[sig];
    // Left blocked by an earlier set for another thread's sake: what this thread
    // had before that set is what counts.
    if (!std::exchange(table.left_blocked[sig], false)) table.kept[sig] = sigismember(&before, sig) == 1;
  }
}

// release drops one use of each signal in `signals` (a set read on `reader`) and
// unblocks those whose last user this was and that the thread had not blocked
// itself, unless another thread's set still watches the signal: unblocked here, a
// pending process-directed arrival meant for that set could be delivered to this
// thread instead. Such a signal stays blocked here, and what is pending stays for
// the other set.
void release(const sigset_t& signals, pid_t reader) noexcept {
  std::lock_guard lock(process_table);
  thread_signals& table = this_thread_signals;
  sigset_t unblock;
  sigemptyset(&unblock);
  bool any = false;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sigismember(&signals, sig) != 1) continue;
    remove_reader(sig, reader);
    if (--table.users[sig] > 0) continue;
    const bool others_watch = --watching_threads[sig] > 0;
    if (table.kept[sig]) continue;
    if (others_watch) {
      table.left_blocked[sig] = true;
      continue;
    }
    sigaddset(&unblock, sig);
    any = true;
  }
  if (!any) return;
  // Arrivals that were meant for the set and never read: take them now, or
  // unblocking would deliver them to the program's action (by default, for most
  // signals, the end of the process).
  const timespec now{0, 0};
  while (::sigtimedwait(&unblock, nullptr, &now) > 0) {
  }
  ::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
}

// block_and_acquire blocks `signals` in this thread and counts them in its table,
// for a set read on thread `reader`.
void block_and_acquire(const sigset_t& signals, pid_t reader) {
  std::lock_guard lock(process_table);
  // Room for this set's reader entries first: past this point nothing throws.
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(&signals, sig) == 1) readers[sig].reserve(readers[sig].size() + 1);
  sigset_t before;
  if (const int e = ::pthread_sigmask(SIG_BLOCK, &signals, &before); e != 0)
    throw std::system_error(e, std::generic_category(), "weft::signal_set: pthread_sigmask");
  acquire(signals, before, reader);
}

// The calling fiber's scheduler if it is a worker of a runtime of several (index
// 1 and up), whose thread weft started with every signal blocked (quiet_thread.hpp):
// a set there must manage the mask of scheduler 0's thread, the one thread of the
// runtime that process-directed signals can reach.
detail::scheduler* worker_scheduler() noexcept {
  detail::scheduler* s = detail::this_fiber_scheduler;
  return s != nullptr && s->group() != nullptr && s->index() != 0 ? s : nullptr;
}

// on_first_scheduler runs fn() in a fiber on scheduler 0 of the calling fiber's
// runtime and waits for it, shielded: the block and the release it carries must not
// be abandoned halfway by the caller's cancellation or deadline (a cancellation stays
// pending for the caller's next blocking call). fn does not block, so the wait is
// short. Throws errc::scheduler_stopped once scheduler 0 has begun to shut down.
template <class F>
auto on_first_scheduler(F fn) {
  auto helper = spawn(spawn_options{.name = "weft::signal_set", .on = 0}, std::move(fn));
  detail::shield_guard shield(detail::scheduler::require_fiber("weft::signal_set").running());
  return helper.join();
}

}  // namespace

signal_set::signal_set(std::initializer_list<int> signals) : reader_(::gettid()) {
  sigemptyset(&signals_);
  for (int sig : signals) {
    if (sig == SIGKILL || sig == SIGSTOP)
      throw error(errc::invalid_argument, "weft::signal_set", "SIGKILL and SIGSTOP cannot be caught");
    if (sig <= 0 || sig >= NSIG || sigaddset(&signals_, sig) != 0)
      throw error(errc::invalid_argument, "weft::signal_set", std::to_string(sig) + " is not a signal number");
  }
  if (detail::scheduler* worker = worker_scheduler()) {
    detail::scheduler& first = worker->group()->at(0);
    try {
      thread_ = on_first_scheduler([this] {
        block_and_acquire(signals_, reader_);
        return this_thread_serial();
      });
    } catch (const error& e) {
      if (e.code() != errc::scheduler_stopped) throw;
      throw error(errc::scheduler_stopped, "weft::signal_set",
                  "made on a worker scheduler, it needs scheduler 0 of the runtime, which is shutting down");
    }
    home_ = first.incarnation();
  } else {
    thread_ = this_thread_serial();
    block_and_acquire(signals_, reader_);
  }
  fd_ = ::signalfd(-1, &signals_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) {
    const int e = errno;
    release_mask();
    throw std::system_error(e, std::generic_category(), "weft::signal_set: signalfd");
  }
}

signal_set::~signal_set() {
  if (destroyed_ != nullptr) *destroyed_ = true;  // a fiber waits: it wakes below and reports this
  watch_.reset();
  ::close(fd_);
  release_mask();
}

void signal_set::release_mask() noexcept {
  if (thread_ == this_thread_serial()) {
    release(signals_, reader_);
    return;
  }
  if (home_ == 0) {
    std::fputs("weft::signal_set: destroyed on another thread than the one that made it; "
               "its signals stay blocked in that thread\n", stderr);
    return;
  }
  // Made on a worker: the release belongs to scheduler 0's thread, reached from any
  // fiber of the same runtime (the set may have been handed to another scheduler's
  // fiber); not from a plain thread or another runtime.
  detail::scheduler* here = detail::this_fiber_scheduler;
  if (here != nullptr && here->group() != nullptr && here->group()->at(0).incarnation() == home_) {
    bool stopped = false;
    try {
      on_first_scheduler([this]() noexcept { release(signals_, reader_); });
      return;
    } catch (const error& e) {
      stopped = e.code() == errc::scheduler_stopped;
    } catch (...) {  // no stack for the fiber
    }
    // Scheduler 0 is shutting down and starts no fiber: the usual end of a set
    // whose waiter the shutdown cancelled. Its thread releases the signals once the
    // runtime's last fiber is gone, before run() returns to its caller.
    try {
      const sigset_t signals = signals_;
      const pid_t reader = reader_;
      if (stopped && here->group()->at_last_drain([signals, reader]() noexcept { release(signals, reader); }))
        return;
    } catch (...) {  // no memory to keep it
    }
  }
  std::fputs("weft::signal_set: made on a worker scheduler and destroyed where scheduler 0 of its "
             "runtime can no longer run the release (gone, or another thread); "
             "its signals stay blocked in scheduler 0's thread\n", stderr);
}

int signal_set::wait() { return *wait_until(no_deadline); }

std::optional<int> signal_set::wait_until(time_point deadline) {
  constexpr const char* call = "weft::signal_set::wait";
  detail::scheduler::require_fiber(call);
  for (;;) {
    signalfd_siginfo info;
    const ssize_t n = ::read(fd_, &info, sizeof info);
    if (n == static_cast<ssize_t>(sizeof info)) return static_cast<int>(info.ssi_signo);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) throw std::system_error(errno, std::generic_category(), "weft::signal_set::wait: read");
    if (destroyed_ != nullptr) throw error(errc::already_waited, call, "another fiber already waits on this signal_set");
    bool destroyed = false;
    destroyed_ = &destroyed;
    bool ready = false;
    try {
      watch_.emplace(fd_);
      ready = watch_->wait_until(fd_event::readable, deadline, call);
    } catch (...) {
      if (!destroyed) {
        destroyed_ = nullptr;
        watch_.reset();
      }
      throw;
    }
    // Destroyed meanwhile: `this` is gone; only the flag on our stack is left.
    if (destroyed) throw error(errc::destroyed_while_waiting, call);
    destroyed_ = nullptr;
    watch_.reset();
    if (!ready) return std::nullopt;
  }
}

}  // namespace weft
