// structured_test.hpp: what the tests of structured/ share.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "../net/net_test.hpp"

namespace structured_test {

using namespace weft_test;
using namespace std::chrono_literals;

struct boom : std::runtime_error {
  explicit boom(const std::string& what) : std::runtime_error(what) {}
};


// Failures after the first (here: raised while handling the first one's
// cancellation) reach the unhandled exception handler, never lost; the race ends.
struct collect_reports {
  std::vector<std::string> reported;
  weft::unhandled_exception_handler previous = weft::set_unhandled_exception_handler(
      [this](weft::fiber_id, std::string_view, std::exception_ptr e) {
        reported.push_back(weft::describe_exception(e));
      });
  ~collect_reports() { weft::set_unhandled_exception_handler(previous); }
};

inline auto fail_when_cancelled(const char* what) {
  return [what]() -> int {
    try {
      weft::this_fiber::sleep_for(1h);
    } catch (const weft::cancelled_error&) {
      throw boom(what);
    }
    return 0;
  };
}

}  // namespace structured_test
