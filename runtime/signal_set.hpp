// signal_set.hpp: waiting for POSIX signals in a fiber (asyncio's
// loop.add_signal_handler, Go's signal.Notify).
//
//   weft::signal_set stop{SIGINT, SIGTERM};
//   int sig = stop.wait();          // only this fiber waits; the others run on
//
// The signals are blocked in the calling thread and read from a signalfd, so they
// never interrupt anything. A blocked signal can still be delivered to another
// thread that has it unblocked: create the set before starting other threads
// (they inherit the mask), or block the signals in them too.
#pragma once

#include <csignal>
#include <initializer_list>
#include <optional>

#include "runtime/clock.hpp"

namespace weft {

class signal_set {
 public:
  // Blocks `signals` in this thread and opens the descriptor that receives them.
  // Throws std::system_error, or weft::error(errc::invalid_argument) for a bad number.
  signal_set(std::initializer_list<int> signals);
  ~signal_set();  // closes the descriptor and restores the thread's signal mask
  signal_set(const signal_set&) = delete;
  signal_set& operator=(const signal_set&) = delete;

  // wait suspends the calling fiber until one of the signals arrives and returns its
  // number. Signals that arrived earlier are queued and returned first. Throws
  // cancelled_error on cancellation, errc::not_in_fiber outside a fiber.
  int wait();
  // wait_until returns nullopt when the deadline passes first.
  std::optional<int> wait_until(time_point deadline);
  template <class Rep, class Period>
  std::optional<int> wait_for(std::chrono::duration<Rep, Period> d) {
    return wait_until(deadline_after(d));
  }

 private:
  int fd_ = -1;
  sigset_t previous_mask_;
};

}  // namespace weft
