// crawler: the aiohttp/httpx tutorial "fetch many URLs, at most N at a time"
// (asyncio.gather over the URLs, an asyncio.Semaphore around each fetch) as plain
// blocking calls in fibers. A small site runs in the same process: /page/N answers
// "page N" after 10 ms, so that fetches overlap, and it records the most requests
// it ever had in hand at once. The crawler fetches 50 pages with at most 8 in
// flight. Checks its own answer: every page came back with its own body, the site
// never saw more than 8 requests at once; exit status 0 and
// "50 pages, at most 8 in flight (limit 8)".
#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;

constexpr int pages = 50;  // URLs to fetch
constexpr int limit = 8;   // fetches in flight at most

int main() try {
  return weft::run([] {
    // The site's counters need no atomics: every fiber runs on this one thread.
    int in_flight = 0, most_in_flight = 0;
    auto site = [&](weft::http::request& req) {
      most_in_flight = std::max(most_in_flight, ++in_flight);
      weft::this_fiber::sleep_for(10ms);  // "the network": only this request waits
      --in_flight;
      if (!req.path().starts_with("/page/")) return weft::http::response::text(404, "no such page");
      return weft::http::response::text(200, "page " + std::string(req.path().substr(6)));
    };
    auto listener = weft::net::tcp_listener::bind(weft::net::endpoint::parse("127.0.0.1:0"));
    const std::string base = "http://" + listener.local_endpoint().to_string();

    weft::http::client web;
    weft::semaphore slots(limit);
    std::vector<weft::http::response> answers;
    // The group keeps the server's fiber inside this block: if the crawl throws,
    // the server is cancelled and waited for before `listener` goes away.
    weft::with_task_group([&](weft::task_group& group) {
      group.spawn({.name = "site"}, [&] { weft::http::serve(listener, site); });

      std::vector<std::function<weft::http::response()>> fetches;
      for (int n = 1; n <= pages; ++n)
        fetches.push_back([&, n] {
          weft::semaphore_guard slot(slots);  // waits while `limit` fetches are out
          return web.get(base + "/page/" + std::to_string(n), 10s);
        });
      answers = weft::gather(fetches);  // all 50 at once, results in URL order

      listener.close();  // serve stops accepting, closes the idle connections, returns
    });

    int right = 0;
    for (int n = 1; n <= pages; ++n)
      right += answers[n - 1].status == 200 && answers[n - 1].body == "page " + std::to_string(n);
    std::printf("%d pages, at most %d in flight (limit %d)\n", right, most_in_flight, limit);
    if (right != pages || most_in_flight > limit) {
      std::fprintf(stderr, "crawler: WRONG: expected %d right pages and at most %d in flight\n", pages, limit);
      return 1;
    }
    return 0;
  });
} catch (const std::exception& e) {  // a fetch failed: gather rethrew it, run passed it on
  std::fprintf(stderr, "crawler: %s\n", e.what());
  return 1;
}
