// gateway: one request fanned out to three backends under one deadline, and what
// came back merged: asyncio.gather(..., return_exceptions=True) over calls that
// share an asyncio.timeout, as plain blocking calls in fibers. The three backends
// run in this process: "web" answers at once, "images" takes 2 s (far past the
// gateway's 200 ms), "videos" answers 500. The gateway keeps web's results and
// collects images' timeout and videos' error instead of failing the whole request
// or dropping them. Checks its own answer: exit status 0, web's results kept,
// images timed out, videos failed with its 500.
#include <array>
#include <cstdio>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <weft/weft.hpp>

using namespace std::chrono_literals;
using weft::http::request, weft::http::response;

namespace {

// backend: a stand-in for another service, with its own port on loopback.
struct backend {
  std::string name;
  weft::http::handler answer;
  weft::net::tcp_listener listener = weft::net::tcp_listener::bind(weft::net::endpoint::parse("127.0.0.1:0"));
};

struct merged_answer {
  std::vector<std::string> results;    // what came back in time
  std::vector<std::string> timed_out;  // backends that missed the deadline
  std::vector<std::string> failed;     // backends that failed, with why
};

// search asks every backend at once and merges what each did by the deadline.
merged_answer search(weft::http::client& web, const std::array<backend, 3>& backends) {
  const weft::time_point deadline = weft::clock::now() + 200ms;  // for the request as a whole
  std::vector<std::function<std::string()>> calls;
  for (const backend& b : backends)
    calls.push_back([&web, &b, deadline] {
      const std::string url = "http://" + b.listener.local_endpoint().to_string() + "/search?q=fibers";
      response r = web.get(url, deadline);  // throws timeout_error when the deadline passes
      if (r.status != 200) throw std::runtime_error("answered " + std::to_string(r.status) + " " + r.body);
      return r.body;
    });
  // Each call's result or exception; one failing does not cancel the others.
  auto outcomes = weft::gather(weft::return_exceptions, calls);

  merged_answer merged;
  for (std::size_t i = 0; i < backends.size(); ++i) {
    if (outcomes[i]) {
      merged.results.push_back(outcomes[i].value());
      continue;
    }
    try {
      std::rethrow_exception(outcomes[i].error());
    } catch (const weft::timeout_error&) {
      merged.timed_out.push_back(backends[i].name);
    } catch (const std::exception& e) {
      merged.failed.push_back(backends[i].name + ": " + e.what());
    }
  }
  return merged;
}

}  // namespace

int main() try {
  return weft::run([] {
    std::array<backend, 3> backends{{
        {"web", [](request&) { return response::text(200, "web: 3 pages about fibers"); }},
        {"images",
         [](request&) {
           weft::this_fiber::sleep_for(2s);
           return response::text(200, "images: too late to matter");
         }},
        {"videos", [](request&) { return response::text(500, "index rebuilding"); }},
    }};
    weft::http::client web;
    merged_answer answer;
    weft::with_task_group([&](weft::task_group& servers) {
      for (backend& b : backends) servers.spawn({.name = b.name}, [&b] { weft::http::serve(b.listener, b.answer); });
      answer = search(web, backends);
      // images still sleeps on a request nobody waits for: cancel the servers. Closing
      // their listeners would let it finish first (server_options::shutdown_grace).
      servers.cancel();
    });

    for (auto& r : answer.results) std::printf("result    %s\n", r.c_str());
    for (auto& name : answer.timed_out) std::printf("timed out %s\n", name.c_str());
    for (auto& why : answer.failed) std::printf("failed    %s\n", why.c_str());
    using list = std::vector<std::string>;
    if (answer.results != list{"web: 3 pages about fibers"} || answer.timed_out != list{"images"} ||
        answer.failed != list{"videos: answered 500 index rebuilding"}) {
      std::fprintf(stderr, "gateway: WRONG: expected web's result, images timed out, videos' 500\n");
      return 1;
    }
    return 0;
  });
} catch (const std::exception& e) {
  std::fprintf(stderr, "gateway: %s\n", e.what());
  return 1;
}
