// assert.hpp: WEFT_ASSERT, weft's check of its own invariants (the switch, the run
// queue, park and wake generations, waiter links).
//
// On in debug builds (NDEBUG not defined, as in ./run asan and tsan) and in a build
// configured with -Drelease_asserts=true (which defines WEFT_RELEASE_ASSERTS); off
// otherwise, and then the condition is not evaluated. A failed check is a bug in
// weft, not a misuse by the program (misuse gets a weft::error): it prints the
// condition and where, and aborts, since the scheduler's state is already wrong.
// The checks never change a type's layout, so code built with them and without
// them can be linked together.
#pragma once

namespace weft::detail {

[[noreturn, gnu::cold]] void assert_failed(const char* condition, const char* file, int line) noexcept;

}  // namespace weft::detail

#if !defined(NDEBUG) || defined(WEFT_RELEASE_ASSERTS)
#define WEFT_ASSERT(condition) \
  (static_cast<bool>(condition) ? static_cast<void>(0) : ::weft::detail::assert_failed(#condition, __FILE__, __LINE__))
#else
#define WEFT_ASSERT(condition) static_cast<void>(sizeof(static_cast<bool>(condition)))
#endif
