// libFuzzer target for the HTTP server's request path: the input is what a client
// sends on one connection (in pieces of a size the first byte picks, so the parser
// sees partial headers and bodies); weft::http::serve_connection answers it over a
// Unix socket pair. Beyond the sanitizers' checks, every byte the server sends must
// parse as a sequence of well-formed HTTP/1.1 responses (a HEAD answer has no body,
// so inputs naming HEAD skip that check).
#include <weft/http/detail/parser.hpp>
#include <weft/http/server.hpp>
#include <weft/net/stream.hpp>
#include <weft/runtime/fiber.hpp>
#include <weft/runtime/run.hpp>
#include <weft/runtime/this_fiber.hpp>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace http = weft::http;
namespace net = weft::net;
using namespace std::chrono_literals;

namespace {

http::response handle(http::request& req) {
  if (req.path() == "/throw") throw std::runtime_error("handler failure");
  if (req.path() == "/stream") {
    http::response r = http::response::text(200, "");
    r.stream = [body = req.body](http::body_writer& out) {
      out.write("first,");
      out.write(body);
    };
    return r;
  }
  return http::response::text(200, req.method + " " + req.target + " " + req.body);
}

// well_formed: `answer` is whole responses back to back (the last one may end at
// the close, as an HTTP/1.0 streamed body does).
bool well_formed(std::string_view answer) {
  http::detail::response_parser parser({.header_bytes = 1 << 20, .body_bytes = 1 << 20});
  while (!answer.empty()) {
    parser.reset(false);
    std::size_t used = 0;
    while (!parser.done() && !parser.failed() && used < answer.size()) {
      const std::size_t n = parser.feed(answer.substr(used));
      if (n == 0) break;
      used += n;
    }
    if (!parser.done() && !parser.failed()) parser.feed_eof();
    if (parser.failed() || !parser.done()) return false;
    answer.remove_prefix(used);
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0] % 64;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string answer;
  weft::run([&] {
    auto [client, server] = net::unix_stream::pair();
    http::server_options options;
    options.max_header_bytes = 512;  // small limits, so 431 and 413 come up too
    options.max_body_bytes = 1024;
    options.on_error = [](std::exception_ptr) {};
    auto serving = weft::spawn([&, &server = server] {
      http::serve_connection(server, handle, options);
      server.close();
    });
    std::error_code ec;
    for (std::size_t at = 0; at < input.size() && !ec; at += piece) {
      client.write_all(input.substr(at, piece), 10s, ec);
      weft::this_fiber::yield();  // let the server read this piece alone
    }
    client.shutdown(net::shutdown_type::write, ec);
    char buf[4096];
    while (std::size_t n = client.read_some(buf, 10s, ec)) answer.append(buf, n);
    serving.join();
  });
  if (!answer.empty() && !answer.starts_with("HTTP/1.1 ")) std::abort();
  if (input.find("HEAD") == std::string_view::npos && !well_formed(answer)) std::abort();
  return 0;
}
