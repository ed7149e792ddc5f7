// client.hpp: an HTTP/1.1 client with a keep-alive connection pool per host.
//
//   weft::http::client web;
//   weft::http::response r = web.get("http://127.0.0.1:8080/index.html", 5s);
//   if (r.status == 200) use(r.body);
//
//   auto created = web.send(weft::http::request_builder("POST", "http://api.local/items")
//                               .header("Content-Type", "application/json")
//                               .body(R"({"name":"x"})"), 2s);
//
// Every call suspends only the calling fiber. The deadline (net/deadline.hpp)
// covers the whole call: name resolution (net::resolve, off the scheduler),
// connecting, sending, and receiving the whole response; when it passes the call
// throws timeout_error and the connection it used is closed. Cancellation throws
// cancelled_error likewise. Failures throw std::system_error: the OS's errors
// (ECONNREFUSED, ECONNRESET, ...) in std::generic_category, resolver errors in
// net::resolve_category(), and http::error for a malformed response
// (bad_message), a body or header over the limit, too many redirects, or a URL
// the client cannot use (bad_url; unsupported_scheme for anything but http and
// https). https:// URLs use TLS (net/tls.hpp) with client_options::tls: by
// default the system's certificate authorities, and the server's certificate must
// name the URL's host; a refused certificate throws std::system_error in
// net::tls_verify_category(), other TLS failures in net::tls_category().
//
// A request the client would have to send broken is refused before it connects,
// with weft::error(errc::invalid_argument): a method that is not a token, a space or
// control character in the target, a field name that is not a token, or a control
// character (CR, LF, NUL; HTAB is fine) in a field value or in
// client_options::user_agent, which would end the field and start another (header
// injection). CONNECT (a proxy tunnel) is refused so too: the client speaks to
// origin servers.
//
// Any status is a response, not an error: check response::status. Bodies framed
// by Content-Length, chunked, or the closing of the connection are all read. A
// server that answers before it has read the whole request (413 for a body over
// its limit) and stops reading makes the upload fail; its answer is still read
// and returned, and only without one does the call throw the write's error.
// Redirects are not followed unless client_options::follow_redirects is set; then
// 301, 302, 303, 307 and 308 are followed up to max_redirects times (303, and 301/302
// after a POST, continue as a GET without the body, as browsers and curl -L do).
//
// Connections: each call takes an idle connection to the URL's scheme, host and port from
// the pool, or opens one; after a complete response that allows keep-alive the
// connection goes back (up to max_idle_per_host are kept), unless the server sent
// bytes past the response (they belong to no request: the connection closes; TLS
// records without data, such as a TLS 1.3 session ticket, do not count), the
// request did not go out whole or said "Connection: close", or the connection left
// HTTP (101 Switching Protocols). A pooled connection the server has closed meanwhile
// is noticed before use and discarded; one that turns out closed only once the
// request is sent, before any byte of an answer, sends an idempotent request (GET,
// HEAD, OPTIONS, PUT, DELETE, TRACE) again, once, on a new connection. Nothing caps
// how many connections one host gets: limit concurrency with a weft::semaphore.
//
// Threads: any number of fibers may call one client at once, also fibers of
// different schedulers of a runtime (weft::run({.threads = N})), as Go's
// http.Client is shared. A connection belongs to the scheduler whose fiber opened
// it (net/stream.hpp), so the pool keeps each scheduler's connections apart: a
// call reuses only connections its own scheduler opened. The client may be
// destroyed on any thread, also after run() has returned.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include <weft/http/message.hpp>
#include <weft/net/deadline.hpp>
#include <weft/net/stream.hpp>
#include <weft/net/tls.hpp>

namespace weft::http {

// url: an absolute http:// or https:// URL taken apart.
struct url {
  std::string scheme;        // "http" or "https" (lower case)
  std::string host;          // a name, an IPv4 address, or an IPv6 address without brackets
  std::uint16_t port = 80;   // the default port of the scheme (80, 443) when the URL has none
  std::string target = "/";  // path and query: what the request line carries

  // parse reads "http[s]://host[:port][/path][?query]" (a fragment is dropped).
  // Throws std::system_error with error::bad_url (no scheme or host, a bad port)
  // or error::unsupported_scheme (anything but http and https).
  static url parse(std::string_view text);
  // resolve: the URL a Location value (absolute, or relative to this one) names.
  url resolve(std::string_view location) const;
  // authority: what the Host header carries ("host", "host:8080", "[::1]:8080"):
  // the port only when it is not the scheme's default.
  std::string authority() const;
  bool secure() const noexcept { return scheme == "https"; }
  std::uint16_t default_port() const noexcept { return secure() ? 443 : 80; }
  std::string to_string() const;
};

// body_source: a request body made while it is sent (request_builder::body_stream).
struct body_source {
  std::function<void(body_writer&)> produce;
  std::optional<std::uint64_t> length;  // Content-Length when known; chunked without
};

// request_builder: a request with its URL, built a field at a time.
class request_builder {
 public:
  request_builder(std::string method, std::string_view url_text);
  request_builder& header(std::string name, std::string value) {
    request_.headers.add(std::move(name), std::move(value));
    return *this;
  }
  // body: the whole body, in memory (it replaces a body_stream).
  request_builder& body(std::string bytes) {
    request_.body = std::move(bytes);
    upload_.reset();
    return *this;
  }
  // body_stream: a body made while it is sent, for one too large to hold (a file):
  // after the head goes out, `produce` runs in the calling fiber with a
  // body_writer whose write() suspends it until the bytes are in the socket's
  // buffer (the call's deadline and cancellation apply). With `length` the body
  // goes out with Content-Length and produce must write exactly that many bytes
  // (more: write() throws errc::invalid_argument; fewer: the call does), without,
  // chunked. If the server stops reading (an early answer), write() throws an
  // exception of the client's own (not a std::exception): let it pass; the call
  // returns the answer. What produce throws ends the call (the connection is
  // closed). A streamed body goes out once: the request is not sent again on a
  // stale connection, and a 307 or 308 redirect, which would send it again, is
  // returned instead of followed. It replaces a body().
  request_builder& body_stream(std::function<void(body_writer&)> produce,
                               std::optional<std::uint64_t> length = std::nullopt) {
    request_.body.clear();
    upload_ = body_source{std::move(produce), length};
    return *this;
  }
  const http::url& url() const noexcept { return url_; }
  const http::request& request() const noexcept { return request_; }
  const body_source* upload() const noexcept { return upload_ ? &*upload_ : nullptr; }

 private:
  http::url url_;
  http::request request_;
  std::optional<body_source> upload_;
};

struct client_options {
  std::size_t max_idle_per_host = 100;     // pooled keep-alive connections per host:port (aiohttp keeps 100)
  std::size_t max_header_bytes = 64 << 10; // over it: error::header_too_large
  std::uint64_t max_body_bytes = 64 << 20; // buffered or streamed; over it: error::body_too_large
  bool follow_redirects = false;
  int max_redirects = 10;                  // then error::too_many_redirects
  std::string user_agent = "weft-http";    // sent unless the request sets one
  // For https:// URLs; empty: net::tls_context::client() (the system's CAs), made at
  // the first https request. Set it to trust another CA or to change verification.
  std::optional<net::tls_context> tls = std::nullopt;
};

class client {
 public:
  explicit client(client_options options = {});
  // Closes the pooled connections. Calls still running (on other fibers or
  // threads) finish as they would have; their connections are closed after them.
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  response get(std::string_view url_text, net::deadline d = {});
  response head(std::string_view url_text, net::deadline d = {});
  // post sends `body` with the given fields (Content-Type among them, if any).
  response post(std::string_view url_text, std::string body, headers fields = {}, net::deadline d = {});
  response send(const request_builder& r, net::deadline d = {});
  // send with on_body streams the response body to on_body in pieces as it
  // arrives (the returned response has an empty body); on_body runs in the
  // calling fiber and may block.
  response send(const request_builder& r, const std::function<void(std::string_view)>& on_body,
                net::deadline d = {});

  // idle_connections: how many pooled connections wait for reuse (all hosts).
  std::size_t idle_connections() const noexcept;

 private:
  // The options and the pool of idle connections, shared with the calls in flight:
  // a client destroyed while a call runs leaves that call its state; the call
  // finishes, and its connection is closed with the state instead of pooled.
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace weft::http
