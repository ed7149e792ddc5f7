// eh_state.hpp: the C++ runtime's per-thread exception-handling state, which weft
// keeps per fiber.
//
// The Itanium C++ ABI (libstdc++'s libsupc++ and LLVM's libc++abi alike) keeps, per
// thread, a `__cxa_eh_globals`: the stack of exceptions being handled (the catch
// blocks entered and not yet left: what std::current_exception() and `throw;` see,
// and what the __cxa_end_catch at the end of a catch block pops and frees) and the
// count of exceptions thrown and not yet caught (std::uncaught_exceptions(), true
// while destructors run during unwinding). Fibers that block inside a catch block or
// in such a destructor would share it: a fiber leaving its catch block would end
// another fiber's exception. So the scheduler moves it in and out of the running
// fiber's record at every switch (scheduler::hand_over_eh).
#pragma once

#include <cxxabi.h>

#include <cstddef>

namespace weft::detail {

// eh_state mirrors the first two members of the ABI's __cxa_eh_globals (declared
// only by name in <cxxabi.h>; the layout is the ABI's, the same in both runtimes).
// Only ARM's EHABI adds a third (propagatingExceptions), which this does not move.
#if defined(__ARM_EABI_UNWINDER__) || defined(_LIBCXXABI_ARM_EHABI)
#error "weft: the ARM EHABI exception globals have a third member; eh_state does not cover it"
#endif
struct eh_state {
  void* caught = nullptr;      // __cxa_exception* caughtExceptions
  unsigned int uncaught = 0;   // uncaughtExceptions
  bool empty() const noexcept { return caught == nullptr && uncaught == 0; }
};
static_assert(offsetof(eh_state, caught) == 0 && offsetof(eh_state, uncaught) == sizeof(void*),
              "eh_state must mirror the ABI's __cxa_eh_globals: caughtExceptions, then uncaughtExceptions");

// this_thread_eh_state is the calling thread's live state. A call into the C++
// runtime (its address is fixed per thread): the scheduler asks once and keeps it.
inline eh_state* this_thread_eh_state() noexcept {
  return reinterpret_cast<eh_state*>(abi::__cxa_get_globals());
}

}  // namespace weft::detail
