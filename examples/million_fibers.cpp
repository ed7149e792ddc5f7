// million_fibers [COUNT]: COUNT fibers (default 1,000,000) alive at once, each
// sleeping, then all joined; prints the resident memory per fiber.
//
// With guard pages on every stack this would need two memory mappings per fiber,
// far past Linux's default vm.max_map_count (65,530). weft's default policy guards
// stacks only up to a quarter of that limit and carves the rest from slabs, so this
// runs on a stock kernel. Small stacks keep the virtual reservation modest.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

static long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

int main(int argc, char** argv) {
  const long count = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  if (count <= 0) {
    std::fprintf(stderr, "usage: million_fibers [COUNT > 0]\n");
    return 2;
  }
  const auto start = std::chrono::steady_clock::now();
  const long sum = weft::run({.stack_size = weft::min_stack_size}, [count] {
    std::vector<weft::fiber<int>> fibers;
    fibers.reserve(static_cast<size_t>(count));
    const long before = resident_bytes();
    for (long i = 0; i < count; ++i)
      fibers.push_back(weft::spawn([] {
        weft::this_fiber::sleep_for(100ms);
        return 1;
      }));
    weft::this_fiber::yield();  // all of them are now parked in their sleep
    std::printf("%ld fibers alive, %.0f bytes resident per fiber\n", count,
                double(resident_bytes() - before) / double(count));
    long total = 0;
    for (auto& f : fibers) total += f.join();
    return total;
  });
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("joined %ld fibers in %.2f s\n", sum, seconds);
  return sum == count ? 0 : 1;
}
