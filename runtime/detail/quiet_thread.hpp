// quiet_thread.hpp: threads weft starts for itself, with every signal blocked.
//
// A process-directed signal goes to any thread that does not block it. weft's own
// threads (scheduler workers, the to_thread pool) block them all, so a signal the
// program handles (a signal_set, its own handler on its own threads) is never
// delivered to a thread that does not expect it, where its default action (for
// SIGINT, SIGTERM: ending the process) would run instead.
//
// All but the synchronous ones: SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGTRAP are
// raised by the faulting instruction in the thread that ran it, and a fault with its
// signal blocked kills the process without running any handler. weft's own handler
// for a fiber's stack overflow (stack_overflow.hpp) must run on every scheduler's
// thread; before 2026-12-06 an overflow on a worker ended in a bare "Segmentation
// fault".
#pragma once

#include <pthread.h>
#include <signal.h>

#include <thread>
#include <utility>

namespace weft::detail {

// synchronous_signals: the signals a faulting instruction raises in its own thread.
inline sigset_t synchronous_signals() noexcept {
  sigset_t set;
  sigemptyset(&set);
  for (int synchronous : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP}) sigaddset(&set, synchronous);
  return set;
}

// faults_unblocked: while it lives, the synchronous signals are not blocked in the
// thread that made it (a scheduler's: run()'s caller, a background_runtime's).
// A legacy program often blocks every signal before it starts threads, so that
// signals reach one thread only; a fault with its signal blocked ends the process
// without any handler, and weft's stack overflow report (stack_overflow.hpp)
// would not run. Those that were blocked are blocked again at the end; the rest of
// the thread's mask is not touched.
class faults_unblocked {
 public:
  faults_unblocked() noexcept {
    const sigset_t faults = synchronous_signals();
    sigset_t before;
    pthread_sigmask(SIG_UNBLOCK, &faults, &before);
    sigemptyset(&were_blocked_);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP})
      if (sigismember(&before, s) == 1) sigaddset(&were_blocked_, s);
  }
  ~faults_unblocked() { pthread_sigmask(SIG_BLOCK, &were_blocked_, nullptr); }
  faults_unblocked(const faults_unblocked&) = delete;
  faults_unblocked& operator=(const faults_unblocked&) = delete;

 private:
  sigset_t were_blocked_;
};

// thread_with_signals_blocked starts std::thread(fn) with every asynchronous
// signal blocked in it; the caller's mask is left as it was (a new thread inherits its creator's).
template <class F>
std::thread thread_with_signals_blocked(F&& fn) {
  sigset_t all, previous;
  sigfillset(&all);
  const sigset_t faults = synchronous_signals();
  for (int s = 1; s < NSIG; ++s)
    if (sigismember(&faults, s) == 1) sigdelset(&all, s);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  struct restore_mask {
    sigset_t* mask;
    ~restore_mask() { pthread_sigmask(SIG_SETMASK, mask, nullptr); }
  } restore{&previous};
  return std::thread(std::forward<F>(fn));
}

}  // namespace weft::detail
