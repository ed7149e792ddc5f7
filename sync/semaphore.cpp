#include <weft/sync/semaphore.hpp>

#include <string>

namespace weft {

semaphore::semaphore(std::ptrdiff_t initial) : count_(initial) {
  if (initial < 0)
    throw error(errc::invalid_argument, "weft::semaphore", "negative initial count " + std::to_string(initial));
}

void semaphore::throw_bad_release(std::ptrdiff_t n) const {
  if (n < 0) throw error(errc::invalid_argument, "weft::semaphore::release", "negative count " + std::to_string(n));
  if (!bounded())
    throw error(errc::invalid_argument, "weft::semaphore::release", std::to_string(n) +
                                            " permit(s) would take the count past PTRDIFF_MAX");
  throw error(errc::semaphore_overflow,
              "weft::bounded_semaphore::release", std::to_string(n) +
                  " permit(s) released beyond the initial count");
}

}  // namespace weft
