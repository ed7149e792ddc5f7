// The TSan fiber calls, out of line and without TSan instrumentation
// (WEFT_TSAN_SWITCH_POINT, see sanitizer.hpp): TSan's shadow stack must not be
// touched by the function that performs the switch (Tencent/flare PR #197). They
// are compiled with the rest of libweft; the attribute alone keeps them
// uninstrumented.
#include <weft/runtime/detail/sanitizer.hpp>

namespace weft::detail {

#if WEFT_TSAN
WEFT_TSAN_SWITCH_POINT void* tsan_current_fiber() noexcept {
  return __tsan_get_current_fiber();
}
WEFT_TSAN_SWITCH_POINT void* tsan_create_fiber() noexcept {
  return __tsan_create_fiber(0);
}
WEFT_TSAN_SWITCH_POINT void tsan_switch_to_fiber(void* fiber) noexcept {
  __tsan_switch_to_fiber(fiber, 0);
}
WEFT_TSAN_SWITCH_POINT void tsan_destroy_fiber(void* fiber) noexcept {
  __tsan_destroy_fiber(fiber);
}
#endif

}  // namespace weft::detail
