// signal_set.hpp: waiting for POSIX signals in a fiber (asyncio's
// loop.add_signal_handler, Go's signal.Notify).
//
//   weft::signal_set stop{SIGINT, SIGTERM};
//   int sig = stop.wait();          // only this fiber waits; the others run on
//
// The signals are blocked in the calling thread and read from a signalfd, so they
// never interrupt anything there. Another thread that does not block them (one the
// program started before the set, a library's thread) can still be handed a
// process-directed one by the kernel: while any set watches a signal, weft installs
// a process-wide action for it that forwards it to the thread that made one of the
// sets watching it (like Go's signal.Notify; asyncio's add_signal_handler also
// replaces the action), so it reaches the set instead of running the program's
// action (by default, for most signals, the end of the process). A set waited on
// by another thread than its maker's gets process-directed signals only. That thread's interrupted system call
// restarts (SA_RESTART) where the kernel allows, or fails with EINTR (poll, epoll_wait,
// nanosleep, ...). The action the program had (a handler, SIG_IGN, the default) is
// put back when the last set watching the signal goes; one the program installs
// while a set lives is replaced then. Where the forwarding action finds no set's
// thread to send to (a child forked while a set lived; a save-and-restore of the
// action, as glibc's system() does, that put it back after the last set went), it
// puts the program's action back and the signal goes there. A signal the program
// ignored (SIG_IGN, as under nohup) is received while a set watches it; for SIGCHLD
// that also means children that end meanwhile are not reaped for you (wait for
// them). Not forwarded: the synchronous signals
// a fault raises (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS), whose handler
// would return to the faulting instruction; a set may name them, but only one sent
// to the process or its thread while no other thread has it unblocked reaches it.
//
// A runtime of several schedulers (run_options::threads): the workers' threads
// block every signal from the start (detail/quiet_thread.hpp), so the process's
// signals reach only scheduler 0's thread (run()'s caller) and the program's own
// threads. Blocking them on a worker would change nothing, and scheduler 0's
// thread would still run their default action (for SIGTERM: the end of the
// process). So a set made by a fiber on a worker blocks and counts its signals in
// scheduler 0's thread instead, by a short fiber there that the maker waits for;
// it receives the process-directed ones wherever it is waited on (a signal sent to
// scheduler 0's thread alone, pthread_kill, stays pending there).
//
// The signal mask is restored per signal, not as a whole: each thread counts, per
// signal number, its live sets that include it. A signal is unblocked again when the
// last set of the thread that has it goes, unless it was blocked already when the
// first of them was made (then it stays blocked, as the program had it), or unless
// a set on another thread still watches it: unblocked here, the kernel could hand
// that set's process-directed signals (and one already pending) to this thread, to
// their default action; so it stays blocked here, and what is pending stays for
// that set. So sets may overlap and be destroyed in any order, and sets on
// different threads do not disturb each other. Besides the forwarding action above,
// weft changes no process-wide signal state: SIGPIPE is avoided per call
// (MSG_NOSIGNAL) rather than ignored process-wide, and the stack-overflow reporter's
// SIGSEGV action chains to the program's.
#pragma once

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <initializer_list>
#include <optional>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/fd_wait.hpp>

namespace weft {

// signal_set receives the signals it names on the thread whose mask it manages: the
// thread that made it, or scheduler 0's for a set made on a worker scheduler (see
// above). Make, wait on and destroy a set on one thread (any fiber of it, or outside
// weft::run); a set made on a worker may be destroyed by any fiber of its runtime.
class signal_set {
 public:
  // Blocks `signals` in this thread (on a worker scheduler: in scheduler 0's thread,
  // waiting shielded for it) and opens the descriptor that receives them.
  // Throws weft::error(errc::invalid_argument) for a number that is not a signal or
  // for SIGKILL / SIGSTOP (they cannot be caught), std::system_error
  // (std::generic_category) if signalfd fails (EMFILE, ENOMEM, ...), and on a
  // worker errc::scheduler_stopped once scheduler 0 is shutting down.
  signal_set(std::initializer_list<int> signals);
  // Closes the descriptor and unblocks each of its signals that no other live set
  // of this thread has, that was not blocked before and that no set of another
  // thread watches (see above). Arrivals of
  // those signals that nobody waited for are discarded first: unblocking them would
  // run their default action, which for most signals ends the process. Destroyed on
  // another thread than its own, it cannot reach its thread's mask: it says so on
  // stderr and leaves its signals blocked there. A set made on a worker is released
  // on scheduler 0's thread by a fiber there, waited for shielded (a cancellation of
  // the destroying fiber must not leave the signals blocked); once scheduler 0 is
  // shutting down (main returned, the shutdown cancels the waiter), by scheduler 0's
  // thread after the runtime's last fiber, before run() returns. From a plain thread
  // or another runtime it says so on stderr, and the signals stay blocked there.
  ~signal_set();
  signal_set(const signal_set&) = delete;
  signal_set& operator=(const signal_set&) = delete;

  // wait suspends the calling fiber until one of the signals arrives and returns its
  // number. Signals that arrived earlier are queued and returned first (a standard
  // signal arriving again before it is read is merged, as POSIX does). When two sets
  // share a signal, each arrival goes to one of them. Throws cancelled_error on
  // cancellation, errc::not_in_fiber outside a fiber, errc::already_waited if
  // another fiber waits on this set, and errc::destroyed_while_waiting if the set
  // is destroyed (by another fiber of its thread) while this one waits.
  int wait();
  // wait_until returns nullopt when the deadline passes first.
  std::optional<int> wait_until(time_point deadline);
  template <class Rep, class Period>
  std::optional<int> wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until(deadline_after(d));
  }

 private:
  int fd_ = -1;
  // While a fiber waits: the descriptor's registration (made for the wait only: a
  // set waited on once, the usual shutdown signal, keeps nothing in epoll, which
  // would hide deadlocks from run()), and a flag on the waiter's stack that the
  // destructor sets before it ends the registration, which wakes the waiter.
  std::optional<fd_watch> watch_;
  bool* destroyed_ = nullptr;
  // release_mask undoes the constructor's block and count, on the thread that did
  // them (see ~signal_set).
  void release_mask() noexcept;

  sigset_t signals_;            // what this set counts in its thread's table
  // The thread that made it, where the process-wide forwarding action sends its
  // signals (signal_set.cpp, "Forwarding"): its reader, unless handed elsewhere.
  pid_t reader_ = 0;
  std::uint64_t thread_ = 0;    // the serial number of the thread whose mask it manages
  // Made on a worker: the incarnation of its runtime's scheduler 0, whose thread
  // that is (0 otherwise); the release must be sent there.
  std::uint64_t home_ = 0;
};

}  // namespace weft
