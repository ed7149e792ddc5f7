#include <weft/http/server.hpp>

#include <cxxabi.h>

#include <charconv>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include <weft/net/read_buffer.hpp>
#include <weft/net/serve.hpp>
#include <weft/http/detail/parser.hpp>
#include <weft/http/detail/syntax.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber.hpp>
#include <weft/runtime/scope.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/wait_group.hpp>

namespace weft::http {

namespace {

using net::connection_control;  // how serve() reaches a connection it shuts down

// connection_gone: the client went away or stopped reading; nothing to answer.
struct connection_gone {};

// http_date: the Date field's value (RFC 9110 IMF-fixdate), cached for a second.
std::string_view http_date() {
  thread_local std::time_t cached_second = 0;
  thread_local char text[32];
  thread_local std::size_t length = 0;
  const std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    length = std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return {text, length};
}

void append_number(std::string& out, std::uint64_t n) {
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  out.append(digits, end);
}

bool has_no_body(int status) { return status / 100 == 1 || status == 204 || status == 304; }

void default_on_error(std::exception_ptr e);

// report hands an exception of the user's code to on_error (default: stderr).
void report(const server_options& o, std::exception_ptr e) { (o.on_error ? o.on_error : default_on_error)(e); }

void default_on_error(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    // The type's name as written in C++ (std::runtime_error), not as mangled.
    int status = 0;
    std::unique_ptr<char, void (*)(void*)> type(abi::__cxa_demangle(typeid(x).name(), nullptr, nullptr, &status),
                                                std::free);
    std::fprintf(stderr, "weft::http::serve: handler threw %s: %s\n", status == 0 ? type.get() : typeid(x).name(),
                 x.what());
  } catch (...) {
    std::fprintf(stderr, "weft::http::serve: handler threw a non-std exception\n");
  }
}

// end_writing: the end of our side of the stream (TLS: close_notify first).
void end_writing(net::stream_socket& stream, std::error_code& ec) { stream.shutdown(net::shutdown_type::write, ec); }
void end_writing(net::tls_stream& stream, std::error_code& ec) { stream.shutdown(std::chrono::seconds(2), ec); }

// connection answers the requests of one stream: a stream_socket or a tls_stream.
template <class Stream>
class connection final : body_writer {
 public:
  connection(Stream& stream, const handler& h, const server_options& o, connection_control* control)
      : stream_(stream), handler_(h), options_(o), control_(control),
        parser_({.header_bytes = o.max_header_bytes, .body_bytes = o.max_body_bytes}) {}

  void run() {
    try {
      while (answer_one()) {
      }
      flush();
      if (refused_) linger();
    } catch (const connection_gone&) {
    }
  }

 private:
  // answer_one reads one request and answers it; false: the connection is done.
  bool answer_one() {
    parser_.reset();
    // Answers to pipelined requests gather in out_ and go out in one write; past
    // max_unwritten they go out before the next request is parsed. Unbounded, a
    // client that pipelines many requests for a large file and reads slowly (or
    // never) made one multi-megabyte write: memory per connection grew without
    // limit, and one write_timeout over all of it cut off a client that was
    // reading, only slowly.
    if (out_.size() >= max_unwritten) flush();
    if (awaiting_request_line()) {
      // (read_more writes pipelined answers in one write before it waits)
      if (control_ && control_->draining()) return false;
      if (control_) control_->set_idle(true);
      read_result got = read_more(options_.idle_timeout);
      // Empty lines only: the request line must follow within header_timeout (one
      // deadline: a client that sent a CRLF a minute renewed idle_timeout for ever).
      std::optional<time_point> line_deadline;
      while (got == read_result::data && awaiting_request_line()) {
        if (!line_deadline) line_deadline = deadline_after(options_.header_timeout);
        got = read_more(*line_deadline);
      }
      if (control_) control_->set_idle(false);
      if (got != read_result::data) return false;  // closed or idle too long: close quietly
    }
    // The header. Its deadline starts when the first read did not bring all of it:
    // most requests arrive whole, and then no clock is read (a clock read is a
    // few percent of a small request's cost; so for the body).
    std::optional<time_point> header_deadline;
    while (!parse_buffered() && !parser_.header_done()) {
      if (!header_deadline) header_deadline = deadline_after(options_.header_timeout);
      const read_result got = read_more(*header_deadline);
      if (got == read_result::timed_out) return refuse(408, "header not complete in time");
      if (got == read_result::end) return false;  // the client gave up mid-header
    }
    if (parser_.failed()) return refuse(parser_.failure_status(), parser_.failure());
    // The body.
    // (An HTTP/1.0 client's expectation is ignored: RFC 9110, 10.1.1.)
    if (!parser_.done() && parser_.message().version >= 11 &&
        parser_.message().headers.has_token("Expect", "100-continue")) {
      out_ += "HTTP/1.1 100 Continue\r\n\r\n";
      flush();
    }
    std::optional<time_point> body_deadline;
    while (!parse_buffered()) {
      if (!body_deadline) body_deadline = deadline_after(options_.body_timeout);
      const read_result got = read_more(*body_deadline);
      if (got == read_result::timed_out) return refuse(408, "body not complete in time");
      if (got == read_result::end) return false;
    }
    if (parser_.failed()) return refuse(parser_.failure_status(), parser_.failure());

    request req = std::move(parser_.message());
    bool keep_alive = parser_.keep_alive();
    response res = call_handler(req);
    if (control_ && control_->draining()) keep_alive = false;  // shutdown began while it ran
    answer(req, res, keep_alive);
    return keep_alive;
  }

  response call_handler(request& req) { return options_.cancel_on_disconnect ? call_watched(req) : run_handler(req); }

  // run_handler calls the user's handler; what it throws becomes a 500 (and goes to
  // on_error), except a cancellation, which passes.
  response run_handler(request& req) {
    try {
      return handler_(req);
    } catch (const cancelled_error&) {
      throw;
    } catch (...) {
      report(options_, std::current_exception());
      return response::text(500, "internal server error\n");
    }
  }

  // call_watched (cancel_on_disconnect) runs the handler in a fiber of its own while
  // another reads the connection: the end of the stream or an error there means the
  // client is gone, and the handler is cancelled. Bytes that arrive instead (a
  // pipelined request) end the watch and stay in the buffer for the next request.
  response call_watched(request& req) {
    bool client_gone = false;
    fiber<response> work = spawn({.name = "http handler"}, [&] { return run_handler(req); });
    fiber<void> watch = spawn({.name = "http disconnect watch"}, [&] {
      std::error_code ec;
      if (in_.read_from(stream_, net::deadline{}, ec) == 0) {
        client_gone = true;
        work.cancel();
      }
    });
    std::optional<response> res;
    std::exception_ptr failure;
    try {
      res.emplace(work.join());
    } catch (...) {
      failure = std::current_exception();
    }
    // Both fibers use this frame: wait for them, whatever happened (this fiber may
    // itself have been cancelled while it waited for the handler).
    {
      shield_scope shielded;
      watch.cancel();
      if (work.joinable()) {
        work.cancel();
        try {
          work.join();
        } catch (...) {
        }
      }
      try {
        watch.join();
      } catch (...) {
      }
    }
    if (failure) {
      if (client_gone) throw connection_gone{};
      std::rethrow_exception(failure);
    }
    return std::move(*res);
  }

  // parse_buffered feeds the unparsed bytes; true once the message is done or failed.
  // awaiting_request_line drops empty lines (CRLF, or a bare LF) before a request
  // line, as RFC 9112 (2.2) asks of a server (some clients send a CRLF after a
  // POST's body); true if nothing else is buffered yet (or only a CR whose LF has
  // not arrived). A CR alone is not an empty line: the parser refuses it.
  bool awaiting_request_line() {
    const std::string_view unparsed = in_.unparsed();
    std::size_t empty = 0;
    for (;;) {
      if (unparsed.substr(empty, 2) == "\r\n")
        empty += 2;
      else if (unparsed.substr(empty, 1) == "\n")
        empty += 1;
      else
        break;
    }
    in_.consume(empty);
    return in_.unparsed().empty() || in_.unparsed() == "\r";
  }

  bool parse_buffered() {
    in_.consume(parser_.feed(in_.unparsed()));
    return parser_.done() || parser_.failed();
  }

  // linger: after a refusal the client may still be sending (the rest of a huge
  // header or body). Closing with unread bytes makes the kernel send a reset, which
  // can destroy our answer before the client reads it; so stop writing, and read and
  // drop what comes for a little while (nginx's lingering_close does the same).
  void linger() {
    std::error_code ec;
    end_writing(stream_, ec);
    if (ec) return;
    const time_point until = deadline_after(std::chrono::seconds(2));
    char sink[4096];
    for (std::size_t dropped = 0; dropped < (1u << 20);) {
      const std::size_t n = stream_.read_some(net::mutable_buffer(sink, sizeof sink), until, ec);
      if (ec || n == 0) return;
      dropped += n;
    }
  }

  // refuse answers a request that cannot be served (status 0: say nothing) and ends
  // the connection.
  bool refuse(int status, std::string_view why) {
    refused_ = true;
    if (status != 0) {
      response r = response::text(status, std::string(reason_phrase(status)) + ": " + std::string(why) + "\n");
      request none;
      bool keep_alive = false;
      answer(none, r, keep_alive);
    }
    return false;
  }

  void answer(const request& req, response& res, bool& keep_alive) {
    // A field that would break its line (CR or LF in a value: response splitting),
    // or a status that is not a final one (three digits, 200 or more: a 1xx would
    // leave the client waiting for the real answer), is the handler's error: it
    // goes to on_error, and the client gets a 500.
    std::string bad = detail::invalid_field(res.headers);
    if (res.status < 200 || res.status > 999)
      bad = "status " + std::to_string(res.status) + " (a final status is 200 to 999)";
    if (!bad.empty()) {
      report(options_, std::make_exception_ptr(weft::error(errc::invalid_argument, "weft::http::serve",
                                                           "the handler's response has " + bad)));
      res = response::text(500, "internal server error\n");
    }
    const bool head = req.method == "HEAD";
    const bool bodyless = has_no_body(res.status);
    const bool streamed = res.stream && !bodyless;
    const bool sized = streamed && res.content_length.has_value();  // Content-Length, not chunked
    if (res.headers.has_token("Connection", "close")) keep_alive = false;
    if (streamed && !sized && req.version < 11) keep_alive = false;  // the close ends the body

    out_ += "HTTP/1.1 ";
    append_number(out_, static_cast<unsigned>(res.status));
    out_ += ' ';
    out_ += reason_phrase(res.status);
    out_ += "\r\n";
    if (!res.headers.contains("Server")) out_ += "Server: weft\r\n";
    if (!res.headers.contains("Date")) {
      out_ += "Date: ";
      out_ += http_date();
      out_ += "\r\n";
    }
    for (const header_field& f : res.headers) {
      if (iequals(f.name, "Content-Length") || iequals(f.name, "Transfer-Encoding") ||
          iequals(f.name, "Connection"))
        continue;  // framing is the server's
      out_ += f.name;
      out_ += ": ";
      out_ += f.value;
      out_ += "\r\n";
    }
    if (!bodyless) {
      if (!streamed || sized) {
        out_ += "Content-Length: ";
        append_number(out_, sized ? *res.content_length : res.body.size());
        out_ += "\r\n";
      } else if (req.version >= 11) {
        out_ += "Transfer-Encoding: chunked\r\n";
      }
    }
    if (!keep_alive)
      out_ += "Connection: close\r\n";
    else if (req.version < 11)
      out_ += "Connection: keep-alive\r\n";
    out_ += "\r\n";
    if (head || bodyless) return;

    if (streamed) {
      chunked_ = !sized && req.version >= 11;
      stream_left_ = res.content_length;
      flush();
      try {
        res.stream(*this);
      } catch (const connection_gone&) {
        throw;
      } catch (const cancelled_error&) {
        throw;
      } catch (...) {  // the head is out: no 500 is possible; cut the body short
        report(options_, std::current_exception());
        throw connection_gone{};
      }
      if (sized && *stream_left_ > 0) {  // the client waits for bytes that will not come
        report(options_, std::make_exception_ptr(weft::error(
                             errc::invalid_argument, "weft::http::serve",
                             "the response's stream wrote " + std::to_string(*res.content_length - *stream_left_) +
                                 " bytes of its content_length " + std::to_string(*res.content_length))));
        throw connection_gone{};
      }
      if (chunked_) out_ += "0\r\n\r\n";
    } else if (res.body.size() <= 16384) {
      out_ += res.body;  // small: one write with the head (and pipelined neighbours)
    } else {
      const net::const_buffer parts[] = {out_, res.body};
      write(parts);
      out_.clear();
    }
  }

  // body_writer: one chunk per write of a streamed body.
  void write(std::string_view bytes) override {
    if (bytes.empty()) return;  // an empty chunk would end the body
    if (stream_left_) {
      if (bytes.size() > *stream_left_)  // the client would take the rest for the next answer
        throw weft::error(errc::invalid_argument, "weft::http::body_writer::write",
                          std::to_string(bytes.size()) + " bytes, past the response's content_length (" +
                              std::to_string(*stream_left_) + " left)");
      *stream_left_ -= bytes.size();
    }
    if (!chunked_) {
      flush();
      const net::const_buffer part[] = {bytes};
      write(part);
      return;
    }
    char size[20];
    const auto end = std::to_chars(size, size + sizeof size, bytes.size(), 16).ptr;
    const net::const_buffer parts[] = {{size, static_cast<std::size_t>(end - size)}, "\r\n", bytes, "\r\n"};
    flush();
    write(parts);
  }

  // write sends every byte of parts. write_timeout bounds a wait without progress,
  // not the whole write (as nginx's send_timeout): a client that takes a large
  // answer slowly gets all of it; one that takes nothing for write_timeout is
  // dropped.
  void write(std::span<const net::const_buffer> parts) {
    std::vector<net::const_buffer> rest;  // what is left after a write that timed out part-way
    for (;;) {
      std::error_code ec;
      const std::size_t sent = stream_.write_all(parts, options_.write_timeout, ec);
      if (!ec) return;
      if (ec != errc::timed_out || sent == 0) throw connection_gone{};
      rest = after(parts, sent);  // it took some: a new write_timeout for the rest
      parts = rest;
    }
  }

  // after: the buffers of `parts` past its first `n` bytes.
  static std::vector<net::const_buffer> after(std::span<const net::const_buffer> parts, std::size_t n) {
    std::vector<net::const_buffer> left;
    for (const net::const_buffer& b : parts) {
      if (n >= b.size) {
        n -= b.size;
        continue;
      }
      left.push_back({static_cast<const char*>(b.data) + n, b.size - n});
      n = 0;
    }
    return left;
  }

  void flush() {
    if (out_.empty()) return;
    const net::const_buffer part[] = {out_};
    write(part);
    out_.clear();
  }

  enum class read_result { data, end, timed_out };

  // read_more appends what the client sent next. Stream errors other than the
  // deadline mean the client is gone.
  // Answers not yet written go out first: a pipelined request whose successor has
  // not arrived whole must not wait for it (nor answers pile up unwritten).
  read_result read_more(net::deadline d) {
    flush();
    std::error_code ec;
    const std::size_t n = in_.read_from(stream_, d, ec);
    if (ec == errc::timed_out) return read_result::timed_out;
    if (ec) throw connection_gone{};
    return n == 0 ? read_result::end : read_result::data;
  }

  Stream& stream_;
  const handler& handler_;
  const server_options& options_;
  connection_control* control_;
  detail::request_parser parser_;
  net::read_buffer in_;
  static constexpr std::size_t max_unwritten = 64 * 1024;
  std::string out_;         // answers not yet written (about max_unwritten at most)
  bool chunked_ = false;
  std::optional<std::uint64_t> stream_left_;  // of a streamed body with a content_length
  bool refused_ = false;  // ended by a refusal: linger before closing
};

}  // namespace

void serve_connection(net::stream_socket& stream, const handler& h, const server_options& options) {
  connection<net::stream_socket>(stream, h, options, nullptr).run();
}

void serve_connection(net::tls_stream& stream, const handler& h, const server_options& options) {
  connection<net::tls_stream>(stream, h, options, nullptr).run();
}

void serve(net::tcp_listener& listener, const handler& h, const server_options& options) {
  const net::serve_options accepting{
      .max_connections = options.max_connections,
      .shutdown_grace = options.shutdown_grace,
      .on_error = [&options](std::exception_ptr e) { report(options, e); },
      .connection_name = "http connection",
  };
  auto answer = [&](net::tcp_stream& c, net::connection_control& control) {
    c.set_nodelay(true);
    if (!options.tls) {
      connection<net::stream_socket>(c, h, options, &control).run();
      return;
    }
    // The handshake counts as the first request's header (header_timeout); a
    // client that fails it is dropped quietly, as a malformed one is.
    std::error_code handshake_failed;
    net::tls_stream secure = net::tls_stream::accept(*options.tls, std::move(c), options.header_timeout, handshake_failed);
    if (!handshake_failed) connection<net::tls_stream>(secure, h, options, &control).run();
  };
  net::detail::serve_as(listener, answer, accepting, "weft::http::serve");
}

}  // namespace weft::http
