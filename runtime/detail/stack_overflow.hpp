// stack_overflow.hpp: a fiber that overflows into its guard page is named, not a
// bare "Segmentation fault".
//
// A guard-page hit is a SIGSEGV raised on a stack that has no room left, so the
// handler runs on an alternate signal stack (sigaltstack), one per thread that runs
// a scheduler. It looks at the faulting thread's running fiber: if the fault address
// lies in the 64 KiB below that fiber's stack (its guard page, or past it for a
// frame big enough to jump the guard), it writes
//   weft: stack overflow in fiber 3 "parser" (stack of 1048576 bytes); aborting
// to stderr and aborts. Any other SIGSEGV keeps its meaning: the handler passes it to
// the disposition installed before weft's (a handler is called; the default is put
// back and the fault re-raised).
//
// What it changes, it restores: the process's SIGSEGV action is installed when the
// first scheduler of the process starts and put back when the last one ends (unless
// someone installed another action over it meanwhile: that one is left alone). A
// thread's alternate stack is installed only if the thread had none, and removed
// when its scheduler ends. Under ASan nothing is installed: ASan reports the
// overflow itself (it is told about every fiber stack) with a stack trace.
//
// Stacks carved from slabs (past the guard-page budget, or guard_pages::never) have
// no guard page: an overflow there runs into the neighbouring stack unseen.
#pragma once

#include <cstddef>

namespace weft::detail {

// overflow_reporter: owned by a scheduler, on the scheduler's thread.
class overflow_reporter {
 public:
  overflow_reporter();
  ~overflow_reporter();
  overflow_reporter(const overflow_reporter&) = delete;
  overflow_reporter& operator=(const overflow_reporter&) = delete;

 private:
  void* alt_stack_ = nullptr;  // our mmap'd alternate stack, if we installed one
  std::size_t alt_size_ = 0;
  bool handler_ref_ = false;   // this scheduler counts in the handler's users
};

}  // namespace weft::detail
