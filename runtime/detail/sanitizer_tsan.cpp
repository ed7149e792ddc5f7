// The TSan fiber calls, kept in their own unit that is built without TSan
// instrumentation (see meson.build): TSan's shadow stack must not be touched by the
// function that performs the switch (Tencent/flare PR #197).
#include "runtime/detail/sanitizer.hpp"

namespace weft::detail {

#if WEFT_TSAN
__attribute__((no_sanitize_thread, noinline)) void* tsan_current_fiber() noexcept {
  return __tsan_get_current_fiber();
}
__attribute__((no_sanitize_thread, noinline)) void* tsan_create_fiber() noexcept {
  return __tsan_create_fiber(0);
}
__attribute__((no_sanitize_thread, noinline)) void tsan_switch_to_fiber(void* fiber) noexcept {
  __tsan_switch_to_fiber(fiber, 0);
}
__attribute__((no_sanitize_thread, noinline)) void tsan_destroy_fiber(void* fiber) noexcept {
  __tsan_destroy_fiber(fiber);
}
#endif

}  // namespace weft::detail
