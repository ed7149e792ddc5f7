// structured_test.hpp: what the tests of structured/ share.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "../net/net_test.hpp"

namespace structured_test {

using namespace weft_test;
using namespace std::chrono_literals;

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
