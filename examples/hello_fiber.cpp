// hello_fiber: the smallest weft program. Two fibers sleep concurrently on one
// thread; main joins them and gets their results.
#include <chrono>
#include <cstdio>
#include <string>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

int main() {
  return weft::run([] {
    auto greeter = weft::spawn({.name = "greeter"}, [](std::string who) {
      weft::this_fiber::sleep_for(20ms);  // suspends only this fiber
      return "hello, " + who;
    }, std::string("fiber"));
    auto counter = weft::spawn([] {
      int ticks = 0;
      for (; ticks < 3; ++ticks) weft::this_fiber::sleep_for(5ms);
      return ticks;
    });
    std::printf("%s (%d ticks meanwhile)\n", greeter.join().c_str(), counter.join());
    return 0;
  });
}
