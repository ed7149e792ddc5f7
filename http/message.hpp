// message.hpp: HTTP/1.1 requests and responses as plain values.
//
//   weft::http::response r = weft::http::response::text(200, "hello\n");
//   r.headers.set("Cache-Control", "no-store");
//
// Header names compare case-insensitively and keep the order and spelling they
// were added with; a name may repeat (Set-Cookie). Bodies are bytes in a
// std::string. These types do no I/O; server.hpp and client.hpp move them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace weft::http {

// iequals compares two header names (or tokens) ignoring ASCII case.
bool iequals(std::string_view a, std::string_view b) noexcept;

struct header_field {
  std::string name;
  std::string value;
};

// headers: an ordered list of fields with case-insensitive lookup.
class headers {
 public:
  headers() = default;
  headers(std::initializer_list<header_field> fields) : fields_(fields) {}

  // get returns the first field named `name`, or nullopt.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  // value returns get(name) or "" when there is none.
  std::string_view value(std::string_view name) const noexcept { return get(name).value_or(""); }
  bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
  // has_token: does a comma-separated field (Connection, Transfer-Encoding, Expect)
  // list `token`, in any case? Every field of that name counts.
  bool has_token(std::string_view name, std::string_view token) const noexcept;

  // add appends a field (a repeated name keeps every value); set replaces every
  // field of that name with one; erase removes them all.
  void add(std::string name, std::string value) { fields_.push_back({std::move(name), std::move(value)}); }
  void set(std::string_view name, std::string value);
  void erase(std::string_view name) noexcept;

  std::size_t size() const noexcept { return fields_.size(); }
  bool empty() const noexcept { return fields_.empty(); }
  auto begin() const noexcept { return fields_.begin(); }
  auto end() const noexcept { return fields_.end(); }
  void clear() noexcept { fields_.clear(); }

 private:
  std::vector<header_field> fields_;
};

// request: what a client sends. `target` is the request-target as sent
// ("/path?query", or an absolute URL through a proxy); path() and query() split it.
struct request {
  std::string method = "GET";
  std::string target = "/";
  int version = 11;  // 10 for HTTP/1.0, 11 for HTTP/1.1
  http::headers headers;
  std::string body;

  std::string_view path() const noexcept;   // the target up to '?' (of an absolute URL: its path)
  std::string_view query() const noexcept;  // after '?', or ""
};

class body_writer;

// response: what a server answers. A body is sent with Content-Length; a response
// with `stream` set is sent chunked instead (HTTP/1.1; to an HTTP/1.0 client the
// bytes go raw and the connection closes after them): the server calls stream with
// a body_writer once the head is out. A stream whose length is known beforehand (a
// file's size) sets content_length: it goes out as Content-Length, not chunked,
// and the stream must write exactly that many bytes (fewer or more is its error:
// on_error, and the connection closes, the body cut short). Content-Length and
// Transfer-Encoding are the server's to set; Server and Date are added unless
// present.
struct response {
  int status = 200;
  int version = 11;  // as received by a client; a server always answers HTTP/1.1
  std::string reason;  // as received by a client; a server sends reason_phrase(status)
  http::headers headers;
  std::string body;
  std::function<void(body_writer&)> stream;
  std::optional<std::uint64_t> content_length;  // of a streamed body, when known

  // text: a text/plain; charset=utf-8 response.
  static response text(int status, std::string body);
  // with_type: a response with the given Content-Type.
  static response with_type(int status, std::string content_type, std::string body);
};

// body_writer sends one streamed response body. write() suspends only the calling
// fiber until the bytes are in the socket's buffer. When the client went away or
// stopped reading for write_timeout, write() throws an exception of the server's
// own (not a std::exception): let it pass, it ends the connection quietly. If the
// stream callback itself throws, the exception goes to server_options::on_error and
// the connection closes with the body unfinished (the client sees it cut short).
// Cancellation throws cancelled_error, as every blocking call does.
class body_writer {
 public:
  virtual void write(std::string_view bytes) = 0;

 protected:
  ~body_writer() = default;
};

// reason_phrase: RFC 9110's phrase for a status code ("Not Found"), "" if unknown.
std::string_view reason_phrase(int status) noexcept;

// error: failures of weft::http's own, in http::category() ("weft.http").
enum class error {
  bad_message = 1,     // the peer sent something that is not HTTP/1.x
  body_too_large,      // a body over the configured limit
  header_too_large,    // a header block over the configured limit
  too_many_redirects,  // the client followed its limit of redirects
  bad_url,             // a URL the client cannot use (no scheme or host, not http)
  unsupported_scheme,  // a scheme other than http and https
};
const std::error_category& category() noexcept;
std::error_code make_error_code(error e) noexcept;

}  // namespace weft::http

template <>
struct std::is_error_code_enum<weft::http::error> : std::true_type {};
