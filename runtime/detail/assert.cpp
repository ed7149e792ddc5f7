#include <weft/runtime/detail/assert.hpp>

#include <cstdio>
#include <cstdlib>

namespace weft::detail {

void assert_failed(const char* condition, const char* file, int line) noexcept {
  std::fprintf(stderr, "weft: internal check failed: %s (%s:%d); this is a bug in weft, please report it\n",
               condition, file, line);
  std::abort();
}

}  // namespace weft::detail
