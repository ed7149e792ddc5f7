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

// thread_with_signals_blocked starts std::thread(fn) with every asynchronous
// signal blocked in it; the caller's mask is left as it was (a new thread inherits its creator's).
template <class F>
std::thread thread_with_signals_blocked(F&& fn) {
  sigset_t all, previous;
  sigfillset(&all);
  for (int synchronous : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP}) sigdelset(&all, synchronous);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  struct restore_mask {
    sigset_t* mask;
    ~restore_mask() { pthread_sigmask(SIG_SETMASK, mask, nullptr); }
  } restore{&previous};
  return std::thread(std::forward<F>(fn));
}

}  // namespace weft::detail
