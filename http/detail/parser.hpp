// parser.hpp: incremental HTTP/1.x parsers for weft::http's server and client.
//
// They wrap Boost.Beast's sans-I/O basic_parser (http/parser.cpp, the one
// translation unit that includes Beast), which frames the message: request and
// status lines, header fields, Content-Length and chunked bodies (extensions and
// trailers), and the checks against request smuggling (two lengths, a length beside
// chunked). These classes only add weft's message types and limits on top.
//
// Use: feed() the bytes received so far; it returns how many it consumed. Bytes it
// did not consume (an incomplete header) must be offered again, followed by more,
// on the next call. Once done(), message() holds the message; reset() readies the
// parser for the next one on the same connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include <weft/http/message.hpp>

namespace weft::http::detail {

struct parse_limits {
  std::size_t header_bytes = 8192;      // request/status line and fields together
  std::uint64_t body_bytes = 1 << 20;   // after chunked decoding
};

class request_parser {
 public:
  explicit request_parser(parse_limits limits);
  ~request_parser();
  request_parser(const request_parser&) = delete;
  request_parser& operator=(const request_parser&) = delete;

  std::size_t feed(std::string_view bytes);
  void reset();

  bool header_done() const noexcept;
  bool done() const noexcept;
  bool failed() const noexcept { return failure_status_ != 0; }
  // failure_status: the answer a server owes a failed request: 400 (malformed, or
  // HTTP/1.1 without exactly one Host), 413 (body over the limit), 431 (header
  // block over the limit), 505 (an HTTP major version other than 1).
  int failure_status() const noexcept { return failure_status_; }
  const std::string& failure() const noexcept { return failure_; }  // what was wrong
  bool keep_alive() const noexcept;  // by version and Connection (valid once header_done)
  request& message() noexcept { return message_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  request message_;
  int failure_status_ = 0;
  std::string failure_;
};

class response_parser {
 public:
  explicit response_parser(parse_limits limits);
  ~response_parser();
  response_parser(const response_parser&) = delete;
  response_parser& operator=(const response_parser&) = delete;

  // body_sink, when set, receives the body in pieces instead of message().body.
  std::function<void(std::string_view)> body_sink;

  std::size_t feed(std::string_view bytes);
  // feed_eof: the server closed the connection; ends a body delimited by the close,
  // fails a message cut short.
  void feed_eof();
  // reset(head): ready for the next response; head: it answers a HEAD request, so
  // it has no body whatever its headers say.
  void reset(bool head);

  bool header_done() const noexcept;
  bool done() const noexcept;
  bool failed() const noexcept { return static_cast<bool>(error_); }
  const std::error_code& error() const noexcept { return error_; }  // http::error
  const std::string& failure() const noexcept { return failure_; }
  bool keep_alive() const noexcept;
  response& message() noexcept { return message_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  response message_;
  std::error_code error_;
  std::string failure_;
};

}  // namespace weft::http::detail
