// server.hpp: an HTTP/1.1 server, one fiber per connection.
//
//   auto listener = weft::net::tcp_listener::bind(weft::net::endpoint::parse("127.0.0.1:8080"));
//   weft::http::serve(listener, [](weft::http::request& req) {
//     if (req.path() == "/") return weft::http::response::text(200, "hello\n");
//     return weft::http::response::text(404, "not found\n");
//   });
//
// The handler runs in the connection's fiber and may block (sockets, channels,
// weft::to_thread, other HTTP calls): only that connection waits. It is called for
// one request at a time per connection; pipelined requests are answered in order.
// Keep-alive is the default for HTTP/1.1 and for HTTP/1.0 with
// "Connection: keep-alive"; "Connection: close", an HTTP/1.0 request without it, a
// streamed body to an HTTP/1.0 client, and any malformed request close the
// connection after the answer. A HEAD request gets the head of what the handler
// returned, without its body. "Expect: 100-continue" is answered before the body is
// read.
//
// Bad input always gets an answer, then the connection closes: a malformed request
// 400 (also HTTP/1.1 without exactly one Host), a header block over the limit 431, a
// body over the limit 413, a well-formed version other than HTTP/1.0 and 1.1 505
// (garbage in its place is a 400), a request whose
// header is not complete within header_timeout 408. A handler that throws gets the
// client a 500 and goes to on_error; the connection stays usable. So does a
// response whose field would break its line (a name that is not a token, a
// control character such as CR or LF in a value: response splitting), or whose
// status is not a final one (under 200, or over 999): the client gets a 500
// instead, and on_error a weft::error(errc::invalid_argument) naming the field.
//
// HTTPS: set server_options::tls (net/tls.hpp) and every connection speaks TLS.
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>

#include <weft/http/message.hpp>
#include <weft/net/listener.hpp>
#include <weft/net/stream.hpp>
#include <weft/net/tls.hpp>

namespace weft::http {

using handler = std::function<response(request&)>;

struct server_options {
  std::size_t max_header_bytes = 8192;      // request line and fields; over it: 431
  std::size_t max_body_bytes = 1 << 20;     // after chunked decoding; over it: 413
  // From a request's first byte to the end of its header (a slow client that trickles
  // its header is answered 408 and closed).
  std::chrono::milliseconds header_timeout{10'000};
  // From the end of the header to the end of the body; then 408.
  std::chrono::milliseconds body_timeout{30'000};
  // A keep-alive connection waiting for its next request closes quietly after this.
  std::chrono::milliseconds idle_timeout{60'000};
  // How long a write of answers may go without progress (as nginx's send_timeout):
  // a client that takes nothing for this long is disconnected; one that reads a
  // large answer slowly gets all of it.
  std::chrono::milliseconds write_timeout{30'000};
  // Open connections at most. At the cap, a new client first gets the place of
  // the oldest idle keep-alive connection (closed to make room, as nginx does);
  // with none idle, serve stops accepting until one closes: new clients wait in
  // the listener's backlog (their connect succeeds, their request is answered
  // when a connection frees up), as Go's LimitListener does (net/serve.hpp).
  std::size_t max_connections = 10'000;
  // How long serve, once its listener is closed, lets connections busy with a
  // request finish before cancelling them (idle ones close at once).
  std::chrono::milliseconds shutdown_grace{5'000};
  // Cancel a handler whose client disconnects while it runs (Go's request
  // context, aiohttp's handler_cancellation): its blocking calls throw
  // cancelled_error, and no answer is written. The handler then runs in a fiber
  // of its own beside one that watches the connection (two spawns per request);
  // bytes the client sends meanwhile (a pipelined request) end the watch.
  bool cancel_on_disconnect = false;
  // HTTPS: each accepted connection makes the TLS handshake with this context
  // (tls_context::server(certificate_chain, key)) before its first request, within
  // header_timeout; a client whose handshake fails is closed without an answer.
  std::optional<net::tls_context> tls = std::nullopt;
  // Called with each exception a handler threw (after the 500 went out); the
  // default prints it to stderr. Runs in the connection's fiber.
  std::function<void(std::exception_ptr)> on_error;
};

// serve accepts connections on `listener` and answers each in a fiber of the calling
// scheduler, until the listener is closed (by another fiber, e.g. on SIGTERM): then
// it stops accepting, closes idle connections, gives busy ones shutdown_grace to
// finish their request, cancels the rest, and returns when every connection fiber
// has ended. If accept fails for good (the listener's descriptor was shut down or
// closed behind weft's back: EINVAL, EBADF, ENOTSOCK), serve shuts down the same
// way and then throws that error as std::system_error; running out of descriptors
// (EMFILE) is not such a failure: accept waits for one. Cancelling the fiber in
// serve cancels every connection, waits for them, and throws cancelled_error. For several scheduler threads, bind one
// listener per scheduler with reuse_port and serve each in a fiber on it
// (examples/http_server.cpp). Call it from a fiber; throws errc::not_in_fiber
// otherwise.
void serve(net::tcp_listener& listener, const handler& h, const server_options& options = {});

// serve_connection answers requests on one connected stream until the client
// closes it, a request asks to close, a deadline in `options` passes, or the
// stream fails; stream errors end it quietly (they are the client's doing), and it
// closes nothing itself. Cancellation throws cancelled_error. serve() calls it per
// connection; call it yourself for a stream you accepted or connected another way.
void serve_connection(net::stream_socket& stream, const handler& h, const server_options& options = {});
// The same over TLS, on a stream whose handshake is done (tls_stream::accept);
// options.tls is not used.
void serve_connection(net::tls_stream& stream, const handler& h, const server_options& options = {});

}  // namespace weft::http
