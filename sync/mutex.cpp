#include <weft/sync/mutex.hpp>

namespace weft {

void mutex::throw_not_owner() {
  throw error(errc::not_owner, "weft::mutex::unlock");
}

void mutex::throw_would_deadlock(const char* call) {
  throw error(errc::would_deadlock, call, "the calling fiber already holds the mutex (it is not recursive)");
}

}  // namespace weft
