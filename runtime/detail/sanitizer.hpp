// sanitizer.hpp: tells ASan and TSan about fiber switches.
//
// Both sanitizers track "the current stack". A fiber switch moves it behind their
// back, so the one switch point (scheduler::switch_to and the fiber exit path) calls
// these around every boost::context resume. Without ASan/TSan they compile to nothing.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TSAN 1
#endif
#endif

// WEFT_BUILD_SANITIZERS names the sanitizers this translation unit tells about fiber
// switches: 1 ASan, 2 TSan. The switch code is inline, so a program and the library
// must agree; the scheduler compares the program's value (scheduler_options) with
// its own at start (errc::build_mismatch).
#if WEFT_ASAN && WEFT_TSAN
#define WEFT_BUILD_SANITIZERS 3
#elif WEFT_ASAN
#define WEFT_BUILD_SANITIZERS 1
#elif WEFT_TSAN
#define WEFT_BUILD_SANITIZERS 2
#else
#define WEFT_BUILD_SANITIZERS 0
#endif

#if WEFT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if WEFT_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace weft::detail {

// asan_start_switch is called just before leaving a stack for [bottom, bottom+size).
// `fake_stack_save` keeps the leaving fiber's fake stack; nullptr means "this fiber is
// finishing, free its fake stack".
inline void asan_start_switch(void** fake_stack_save, const void* bottom, std::size_t size) noexcept {
#if WEFT_ASAN
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
  (void)fake_stack_save, (void)bottom, (void)size;
#endif
}

// asan_finish_switch is called first thing after arriving on a stack; it reports the
// bounds of the stack we came from (the only way to learn the thread's own stack).
inline void asan_finish_switch(void* fake_stack_save, const void** old_bottom, std::size_t* old_size) noexcept {
#if WEFT_ASAN
  __sanitizer_finish_switch_fiber(fake_stack_save, old_bottom, old_size);
#else
  (void)fake_stack_save, (void)old_bottom, (void)old_size;
#endif
}

// asan_unpoison clears stale redzones a finished fiber left on a stack we reuse.
inline void asan_unpoison(const void* bottom, std::size_t size) noexcept {
#if WEFT_ASAN
  ASAN_UNPOISON_MEMORY_REGION(bottom, size);
#else
  (void)bottom, (void)size;
#endif
}

// WEFT_TSAN_SWITCH_POINT marks a function in whose body TSan's current fiber
// changes (it calls tsan_switch_to_fiber itself, or it is entered under the fiber we
// left and left under the one we arrived on). TSan keeps a shadow call stack per
// fiber: an instrumented function records its entry on the shadow stack of the fiber
// current at its entry and its exit on the one current at its exit, so a function
// that spans a switch pops a frame off a fiber that never pushed it, and a few such
// pops run that shadow stack below its start (TSan then crashes hashing it). A switch
// point is therefore built without TSan instrumentation: GCC's no_sanitize_thread
// drops the entry/exit records too; clang's needs disable_sanitizer_instrumentation
// for that. noinline keeps it (and its missing records) out of its instrumented
// callers; what it calls after the switch is instrumented as usual, so a switch point
// keeps its own memory accesses to the owner thread's scheduler fields.
#if WEFT_TSAN
#if defined(__clang__)
#define WEFT_TSAN_SWITCH_POINT __attribute__((disable_sanitizer_instrumentation, noinline))
#else
#define WEFT_TSAN_SWITCH_POINT __attribute__((no_sanitize_thread, noinline))
#endif
// WEFT_TSAN_INSTRUMENTED keeps a function called from a switch point out of it, so
// that its atomics and memory accesses stay visible to TSan.
#define WEFT_TSAN_INSTRUMENTED __attribute__((noinline))
#else
#define WEFT_TSAN_SWITCH_POINT
#define WEFT_TSAN_INSTRUMENTED
#endif

#if WEFT_TSAN
// The TSan calls live out of line, in switch points (sanitizer_tsan.cpp).
void* tsan_current_fiber() noexcept;
void* tsan_create_fiber() noexcept;
void tsan_switch_to_fiber(void* fiber) noexcept;
void tsan_destroy_fiber(void* fiber) noexcept;
#else
// Without TSan they vanish: an out-of-line call on the switch path would cost a
// call and the register spills around it.
inline void* tsan_current_fiber() noexcept { return nullptr; }
inline void* tsan_create_fiber() noexcept { return nullptr; }
inline void tsan_switch_to_fiber(void*) noexcept {}
inline void tsan_destroy_fiber(void*) noexcept {}
#endif

}  // namespace weft::detail
