// crawl URL_PREFIX COUNT IN_FLIGHT: fetch URL_PREFIX0 .. URL_PREFIX<COUNT-1> with
// weft::http::client, at most IN_FLIGHT at once (a semaphore around each get, as the
// asyncio crawler tutorials do), and print "R requests/s, F failed". bench/servers.py
// runs it against nginx beside h2load fetching the same URLs over as many connections.
#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  int count = 0, in_flight = 0;
  const auto parse = [](std::string_view s, int& v) {
    return std::from_chars(s.data(), s.data() + s.size(), v).ec == std::errc{} && v > 0;
  };
  if (argc != 4 || !parse(argv[2], count) || !parse(argv[3], in_flight)) {
    std::fprintf(stderr, "usage: %s URL_PREFIX COUNT IN_FLIGHT\n", argv[0]);
    return 2;
  }
  const std::string prefix = argv[1];
  return weft::run([&] {
    weft::http::client web;
    weft::semaphore slots(in_flight);
    int failed = 0;
    std::size_t bytes = 0;
    const auto start = weft::clock::now();
    weft::with_task_group([&](weft::task_group& group) {
      for (int i = 0; i < count; ++i) {
        slots.acquire();  // at most in_flight fibers exist at once, too
        group.spawn([&, i] {
          struct release_slot {
            weft::semaphore& s;
            ~release_slot() { s.release(); }
          } release{slots};
          try {
            const weft::http::response r = web.get(prefix + std::to_string(i), 30s);
            if (r.status == 200)
              bytes += r.body.size();
            else
              ++failed;
          } catch (const std::exception& e) {
            if (failed++ == 0) std::fprintf(stderr, "crawl: %s\n", e.what());
          }
        });
      }
    });
    const double seconds = std::chrono::duration<double>(weft::clock::now() - start).count();
    std::printf("%.0f requests/s, %d failed, %zu body bytes\n", count / seconds, failed, bytes);
    return failed == 0 ? 0 : 1;
  });
}
