// always_inline.hpp: WEFT_ALWAYS_INLINE, on weft's fast paths (a park, a wake, a
// channel hand-off, a lock).
//
// Where the compiler optimizes (__OPTIMIZE__: -O1 and up, -Og), it is GCC's
// always_inline: each path is compiled into its caller, so the hand-off of a
// ping-pong loop is one piece of straight-line code (bench/NOTES.md, "Inlining on
// the channel's paths"). Without optimization (-O0: a user's debug build, the test
// files of ./run asan and tsan) it is nothing, and the function is an ordinary
// inline one: forcing it there only copied the whole send path into every call
// site, unoptimized, which made tests/sync/channel_test.cpp a 50 MB object that
// took three times as long to compile, and left a debugger nothing to step into.
//
// Where inlining is needed for correctness rather than speed (the switch path under
// ThreadSanitizer, runtime/detail/scheduler.hpp), [[gnu::always_inline]] is written
// out instead, with the reason beside it.
#pragma once

#if defined(__OPTIMIZE__)
#define WEFT_ALWAYS_INLINE [[gnu::always_inline]]
#else
#define WEFT_ALWAYS_INLINE
#endif
