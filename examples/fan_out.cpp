// fan_out: one request fanned out to several backends at once, as asyncio programs
// do with gather, wait and as_completed. The "backends" are sleeps of different
// lengths; the program checks its own answers (exit status 1 if one is wrong).
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

namespace {

// backend(name, delay) answers after `delay`, like a server of that speed.
std::function<std::string()> backend(std::string name, std::chrono::milliseconds delay) {
  return [name, delay] {
    weft::this_fiber::sleep_for(delay);
    return name;
  };
}

}  // namespace

int main() {
  return weft::run([] {
    int wrong = 0;
    // All of them, results in input order (asyncio.gather).
    auto [a, b] = weft::gather(backend("a", 20ms), backend("b", 5ms));
    wrong += a != "a" || b != "b";
    // The fastest; the others are cancelled (asyncio.wait FIRST_COMPLETED).
    auto fastest = weft::wait_any(backend("slow", 100ms), backend("fast", 1ms));
    wrong += fastest.value != "fast";
    // Each as it finishes (asyncio.as_completed).
    std::vector<std::function<std::string()>> all{backend("3", 60ms), backend("1", 1ms), backend("2", 30ms)};
    std::string order;
    for (auto& done : weft::as_completed(all)) order += done.value();
    wrong += order != "123";
    // Everything under one deadline (asyncio.timeout): what is still running is
    // cancelled when it passes.
    try {
      weft::with_timeout(10ms, [] { return weft::gather(backend("quick", 1ms), backend("stuck", 1h)); });
      wrong += 1;
    } catch (const weft::timeout_error&) {
    }
    std::printf("gather: %s %s, fastest: %s, as completed: %s, %s\n", a.c_str(), b.c_str(), fastest.value.c_str(),
                order.c_str(), wrong ? "WRONG" : "all as expected");
    return wrong ? 1 : 0;
  });
}
