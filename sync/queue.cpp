#include <weft/sync/queue.hpp>

namespace weft::detail {

void throw_bad_queue_size(const std::string& why) {
  throw error(errc::invalid_argument, "weft::queue", "maxsize " + why + " (for a queue without limit: 0)");
}

void throw_task_done_too_often() {
  throw error(errc::invalid_argument, "weft::queue::task_done", "called more times than items were put");
}

}  // namespace weft::detail
