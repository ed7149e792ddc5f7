#include <weft/http/client.hpp>

#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <weft/net/read_buffer.hpp>
#include <weft/http/detail/parser.hpp>
#include <weft/http/detail/syntax.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scope_state.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/scope.hpp>

namespace weft::http {

namespace {

// fail: weft::http's own failures (`what` says it all) as weft::error; the OS's and
// TLS's as std::system_error, whose what() adds their reason.
[[noreturn]] void fail(std::error_code ec, const std::string& what) {
  if (ec.category() == http::category()) throw weft::error(ec, "weft::http::client", what);
  throw std::system_error(ec, "weft::http::client: " + what);
}

// throw_timeout: the deadline passed; the message names the request.
[[noreturn]] void throw_timeout(const request& req, const url& to) {
  const std::string call = "weft::http::client " + req.method + " " + to.to_string();
  throw timeout_error(call.c_str());
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// has_scheme: does a URI reference start with a scheme and ':' (RFC 3986 3.1: a
// letter, then letters, digits, '+', '-' or '.')? Then it is absolute; otherwise it
// is relative, even with "://" in its query (/login?next=https://example.com/).
bool has_scheme(std::string_view ref) noexcept {
  const std::size_t colon = ref.find_first_of(":/?#");
  if (colon == std::string_view::npos || colon == 0 || ref[colon] != ':') return false;
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!letter(ref[0])) return false;
  return std::all_of(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(colon), [&](char c) {
    return letter(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  });
}

// idempotent methods may be sent again when a reused connection turns out dead.
bool idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" || method == "DELETE" ||
         method == "TRACE";
}

bool is_redirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

// socket_state: what a pooled connection's socket holds, looked at without taking
// it: nothing (idle), bytes, or its end (or an error: closed).
enum class socket_state { idle, bytes, closed };
socket_state peek(int fd) {
  char byte;
  const long n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return socket_state::bytes;
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? socket_state::idle : socket_state::closed;
}

// settled: the connection holds nothing of the peer's past the last answer, and
// the server has not closed it. Over TLS a server may send records that carry no
// data at any time, also right after an answer: a TLS 1.3 session ticket, a key
// update. Where such bytes wait (on the socket, or already in the TLS layer), they
// are read through TLS without waiting (a deadline already past); the connection
// is settled if they held no data, no close and no part of a record, and the
// socket is empty again (the read may not have reached it).
bool settled(net::tcp_stream& conn) { return peek(conn.native_handle()) == socket_state::idle; }
bool settled(net::tls_stream& conn) {
  const int fd = conn.next_layer().native_handle();
  const socket_state before = peek(fd);
  if (!conn.has_pending_input() && before != socket_state::bytes) return before == socket_state::idle;
  char byte;
  std::error_code ec;
  // Shielded: a pending cancellation or an expired scope is not this look's to take
  // (after a whole answer it would lose the answer); the next blocking call has it.
  const std::size_t n = [&] {
    shield_scope shielded;
    return conn.read_some(net::mutable_buffer(&byte, 1), net::deadline{clock::now()}, ec);
  }();
  return n == 0 && ec == errc::timed_out && !conn.has_pending_input() && peek(fd) == socket_state::idle;
}

// settled_after_answer: settled, as far as putting the connection back in the pool
// needs: a plain stream's stray bytes are in the caller's read_buffer (and its
// socket is looked at when it is taken again); a TLS stream's may be in its layer.
bool settled_after_answer(net::tcp_stream&) noexcept { return true; }
bool settled_after_answer(net::tls_stream& conn) { return settled(conn); }

// serialize_head writes the request line and header block. A method, target or
// field that would break its line (http/detail/syntax.hpp) is refused, with
// errc::invalid_argument, before anything is sent.
std::string serialize_head(const request& req, const body_source* upload, const url& to,
                           const client_options& options) {
  if (!detail::is_token(req.method))
    throw weft::error(errc::invalid_argument, "weft::http::client",
                      "the method \"" + req.method + "\" is not a token (letters, digits, !#$%&'*+-.^_`|~)");
  if (req.method == "CONNECT")  // a tunnel: the answer's 2xx has no body, the connection leaves HTTP
    throw weft::error(errc::invalid_argument, "weft::http::client",
                      "CONNECT (a proxy tunnel) is not supported; open a net::tcp_stream to the proxy instead");
  if (!detail::is_target_text(req.target))
    throw weft::error(errc::invalid_argument, "weft::http::client",
                      "a space or control character in the request target (percent-encode it)");
  if (const std::string bad = detail::invalid_field(req.headers); !bad.empty())
    throw weft::error(errc::invalid_argument, "weft::http::client", "the request has " + bad);
  if (!detail::is_field_value(options.user_agent))
    throw weft::error(errc::invalid_argument, "weft::http::client",
                      "a control character (CR, LF, NUL, ...) in client_options::user_agent");
  std::string head;
  head.reserve(256 + req.target.size());
  head += req.method;
  head += ' ';
  head += req.target;
  head += " HTTP/1.1\r\n";
  if (!req.headers.contains("Host")) head += "Host: " + to.authority() + "\r\n";
  if (!req.headers.contains("User-Agent") && !options.user_agent.empty())
    head += "User-Agent: " + options.user_agent + "\r\n";
  for (const header_field& f : req.headers) {
    if (iequals(f.name, "Content-Length") || iequals(f.name, "Transfer-Encoding")) continue;  // framing is ours
    head += f.name + ": " + f.value + "\r\n";
  }
  if (upload && !upload->length)
    head += "Transfer-Encoding: chunked\r\n";
  else if (upload)
    head += "Content-Length: " + std::to_string(*upload->length) + "\r\n";
  else if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH")
    head += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  head += "\r\n";
  return head;
}

// upload_stopped: thrown through a body_source's producer when the connection took
// no more of the body (the server stopped reading, or the deadline passed); not a
// std::exception, so that a producer's own catch blocks let it pass.
struct upload_stopped {};

// upload_writer: the body_writer a body_source's producer writes through: chunk
// framing without a length, a count against it with one.
template <class Stream>
class upload_writer final : public body_writer {
 public:
  upload_writer(Stream& stream, const body_source& source, time_point deadline)
      : stream_(stream), length_(source.length), deadline_(deadline) {}

  void write(std::string_view bytes) override {
    if (failed_) throw upload_stopped{};  // a producer that swallowed the first one
    if (bytes.empty()) return;            // an empty chunk would end the body
    if (length_) {
      if (bytes.size() > *length_ - written_)  // the server would take the rest for another request
        throw weft::error(errc::invalid_argument, "weft::http::body_writer::write",
                          std::to_string(bytes.size()) + " bytes, past the body_stream's length (" +
                              std::to_string(*length_ - written_) + " left)");
      send({bytes});
    } else {
      char size[20];
      const auto end = std::to_chars(size, size + sizeof size, bytes.size(), 16).ptr;
      send({{size, static_cast<std::size_t>(end - size)}, "\r\n", bytes, "\r\n"});
    }
    written_ += bytes.size();
  }

  // finish ends the body once the producer has returned; the write's error, if the
  // connection took no more.
  std::error_code finish() {
    if (!failed_ && !length_) send({"0\r\n\r\n"});
    if (!failed_ && length_ && written_ != *length_)
      throw weft::error(errc::invalid_argument, "weft::http::client",
                        "the body_stream wrote " + std::to_string(written_) + " bytes of its length " +
                            std::to_string(*length_));
    return failed_;
  }
  std::error_code failure() const noexcept { return failed_; }

 private:
  void send(std::initializer_list<net::const_buffer> parts) {
    std::error_code ec;
    stream_.write_all(std::span<const net::const_buffer>(parts.begin(), parts.size()), deadline_, ec);
    if (ec) {
      failed_ = ec;
      throw upload_stopped{};
    }
  }

  Stream& stream_;
  std::optional<std::uint64_t> length_;
  time_point deadline_;
  std::uint64_t written_ = 0;
  std::error_code failed_;
};

// send_upload runs the producer after the head went out; the write's error, if
// the connection took no more of the body. What the producer throws passes.
template <class Stream>
std::error_code send_upload(Stream& stream, const body_source& source, time_point deadline) {
  upload_writer<Stream> writer(stream, source, deadline);
  try {
    source.produce(writer);
    return writer.finish();
  } catch (const upload_stopped&) {
    return writer.failure();
  }
}

// follows: will the client follow this answer (a redirect with a Location, when
// asked to)? Not a 307 or 308 of a streamed body, which would go out again.
bool follows(const response& res, const client_options& options, const body_source* upload) {
  if (!options.follow_redirects || !is_redirect(res.status) || !res.headers.get("Location")) return false;
  return !(upload && (res.status == 307 || res.status == 308));
}

}  // namespace

// ---- url ------------------------------------------------------------------------------

namespace {

// parse_url: url::parse, for a URL the caller gave ("URL") or a redirect's
// ("Location"); `what` names it in the errors.
url parse_url(std::string_view text, const char* what) {
  const auto bad = [&](const char* why) {
    fail(error::bad_url, std::string("cannot use ") + what + " \"" + std::string(text) + "\": " + why);
  };
  // "localhost:8080" looks like a scheme ("localhost") and a path; say what is missing
  const std::size_t colon = text.find(':');
  const bool port_after_colon =
      colon != std::string_view::npos && colon + 1 < text.size() && text[colon + 1] >= '0' && text[colon + 1] <= '9';
  if (!has_scheme(text) || port_after_colon) bad("no scheme (it must start with http:// or https://)");
  if (!detail::is_target_text(text)) bad("a space or control character (percent-encode it)");
  url u;
  u.scheme = lower(text.substr(0, colon));
  if (u.scheme != "http" && u.scheme != "https")  // mailto:, ftp://, file:///...
    fail(error::unsupported_scheme, "scheme \"" + u.scheme + "\" of " + what + " \"" + std::string(text) +
                                        "\" (weft::http speaks http:// and https://)");
  if (text.substr(colon, 3) != "://") bad("no \"//\" after the scheme (it must start with http:// or https://)");
  u.port = u.default_port();
  std::string_view rest = text.substr(colon + 3);
  rest = rest.substr(0, rest.find('#'));
  const std::size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) authority.remove_prefix(at + 1);
  std::string_view port;
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) bad("an IPv6 address without its closing ']'");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad("something other than :port after the IPv6 address");
      port = after.substr(1);
    }
  } else {
    const std::size_t c = authority.find(':');
    u.host = std::string(authority.substr(0, c));
    if (c != std::string_view::npos) port = authority.substr(c + 1);
  }
  if (u.host.empty()) bad("no host");
  if (!port.empty()) {
    unsigned value = 0;
    const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535)
      bad("the port is not a number from 1 to 65535");
    u.port = static_cast<std::uint16_t>(value);
  }
  // (insert, not "/" + target: GCC 12 reports a false -Wrestrict for that at -O3)
  u.target = std::string(target);
  if (target.empty() || target.front() == '?') u.target.insert(u.target.begin(), '/');
  return u;
}

// remove_dot_segments is RFC 3986 5.2.4 on a path ("/a/b/../c/./d" -> "/a/c/d").
std::string remove_dot_segments(std::string_view path) {
  std::vector<std::string_view> kept;
  std::size_t at = 1;  // past the leading '/'
  bool ends_in_directory = false;
  while (at <= path.size()) {
    const std::size_t slash = std::min(path.find('/', at), path.size());
    const std::string_view segment = path.substr(at, slash - at);
    ends_in_directory = segment == "." || segment == "..";
    if (segment == "..") {
      if (!kept.empty()) kept.pop_back();
    } else if (segment != ".") {
      kept.push_back(segment);
    }
    at = slash + 1;
  }
  std::string out;
  for (std::string_view segment : kept) {
    out += '/';
    out += segment;
  }
  if (ends_in_directory || out.empty()) out += '/';
  return out;
}

}  // namespace

url url::parse(std::string_view text) { return parse_url(text, "URL"); }

// resolve follows RFC 3986 5.2.2 for the forms a Location holds: absolute, scheme-
// relative ("//host/p"), absolute-path, query-only ("?q") and relative paths, with
// "." and ".." segments removed. What url::parse refuses (spaces, control
// characters) a relative Location may not carry either.
url url::resolve(std::string_view location) const {
  location = location.substr(0, location.find('#'));
  if (has_scheme(location)) return parse_url(location, "Location");
  if (location.starts_with("//")) return parse_url(scheme + ":" + std::string(location), "Location");
  if (!detail::is_target_text(location))
    fail(error::bad_url, "cannot use Location \"" + std::string(location) +
                             "\": a space or control character (percent-encode it)");
  url next = *this;
  const std::string_view current = target;
  const std::string_view path = current.substr(0, current.find('?'));
  if (location.empty()) {
    next.target = std::string(current);
    return next;
  }
  if (location.front() == '?') {
    next.target = std::string(path) + std::string(location);
    return next;
  }
  const std::string_view ref_path = location.substr(0, location.find('?'));
  const std::string_view query = location.substr(ref_path.size());
  const std::string merged = location.front() == '/'
                                 ? std::string(ref_path)
                                 : std::string(path.substr(0, path.rfind('/') + 1)) + std::string(ref_path);
  next.target = remove_dot_segments(merged) + std::string(query);
  return next;
}

std::string url::authority() const {
  const bool v6 = host.find(':') != std::string::npos;
  std::string a;
  if (v6) a += '[';
  a += host;
  if (v6) a += ']';
  if (port != default_port()) {
    a += ':';
    a += std::to_string(port);
  }
  return a;
}

std::string url::to_string() const { return scheme + "://" + authority() + target; }

request_builder::request_builder(std::string method, std::string_view url_text) : url_(url::parse(url_text)) {
  request_.method = std::move(method);
  request_.target = url_.target;
}

// ---- client ---------------------------------------------------------------------------

struct client::state {
  explicit state(client_options o) : options_(std::move(o)) {}

  response exchange(const url& to, const request& req, const body_source* upload,
                    const std::function<void(std::string_view)>* on_body, time_point deadline);
  response exchange_once(const url& to, const request& req, const body_source* upload,
                         const std::function<void(std::string_view)>* on_body, time_point deadline,
                         bool& retry_on_fresh);
  // A connection to one server: plain for http://, TLS for https://.
  using connection = std::variant<net::tcp_stream, net::tls_stream>;
  // take_connection: a pooled connection that is still open (reused = true), or a
  // new one; only a new one when `fresh`.
  connection take_connection(const url& to, time_point deadline, bool fresh, bool& reused);
  void put_back(const url& to, connection conn);
  net::tls_context tls_context();
  std::size_t idle_connections() const noexcept;

  // Keyed by the scheduler that opened them (its incarnation: a later run() on this
  // thread may put its scheduler at the same address) and "scheme://host:port".
  using pool_key = std::pair<std::uint64_t, std::string>;
  static pool_key key_for(const url& to);

  client_options options_;
  mutable std::mutex pool_mutex_;  // guards idle_ and options_.tls (made at first use); held for no call
  std::map<pool_key, std::vector<connection>> idle_;
};

client::client(client_options options) : state_(std::make_shared<state>(std::move(options))) {}
client::~client() = default;

std::size_t client::idle_connections() const noexcept { return state_->idle_connections(); }

std::size_t client::state::idle_connections() const noexcept {
  std::lock_guard lock(pool_mutex_);
  std::size_t n = 0;
  for (const auto& [key, conns] : idle_) n += conns.size();
  return n;
}

client::state::pool_key client::state::key_for(const url& to) {
  const weft::detail::scheduler* here = weft::detail::this_thread_scheduler;
  return {here ? here->incarnation() : 0, to.scheme + "://" + to.authority()};
}

net::tls_context client::state::tls_context() {
  std::lock_guard lock(pool_mutex_);
  if (!options_.tls) options_.tls = net::tls_context::client();
  return *options_.tls;  // a copy shares the one SSL_CTX
}

response client::get(std::string_view url_text, net::deadline d) { return send(request_builder("GET", url_text), d); }

response client::head(std::string_view url_text, net::deadline d) {
  return send(request_builder("HEAD", url_text), d);
}

response client::post(std::string_view url_text, std::string body, headers fields, net::deadline d) {
  request_builder r("POST", url_text);
  for (const header_field& f : fields) r.header(f.name, f.value);
  r.body(std::move(body));
  return send(r, d);
}

namespace {

// require_fiber: a request is a blocking call; outside a fiber, the error names it
// (not the connect or read inside it that would find out).
void require_fiber(const request_builder& r) {
  if (weft::detail::this_fiber_scheduler == nullptr) [[unlikely]] {
    const std::string call = "weft::http::client " + r.request().method + " " + r.url().to_string();
    weft::detail::scheduler::throw_not_in_fiber(call.c_str());
  }
}

}  // namespace

// The call keeps the state alive, not the client: the client may be destroyed
// meanwhile (see state_).
// A cancellation, or an enclosing scope's expiry, names the request the user made,
// not the read or connect it came in (rethrow_naming); the request's own deadline
// does already (throw_timeout).
response client::send(const request_builder& r, net::deadline d) {
  require_fiber(r);
  const std::shared_ptr<state> keep = state_;
  try {
    return keep->exchange(r.url(), r.request(), r.upload(), nullptr, d.at);
  } catch (const weft::error&) {
    weft::detail::rethrow_naming("weft::http::client " + r.request().method + " " + r.url().to_string());
  }
}

response client::send(const request_builder& r, const std::function<void(std::string_view)>& on_body,
                      net::deadline d) {
  require_fiber(r);
  const std::shared_ptr<state> keep = state_;
  try {
    return keep->exchange(r.url(), r.request(), r.upload(), &on_body, d.at);
  } catch (const weft::error&) {
    weft::detail::rethrow_naming("weft::http::client " + r.request().method + " " + r.url().to_string());
  }
}

response client::state::exchange(const url& first, const request& first_request, const body_source* upload,
                                 const std::function<void(std::string_view)>* on_body, time_point deadline) {
  url to = first;
  request req = first_request;
  for (int redirects = 0;; ++redirects) {
    bool retry = false;
    response res = exchange_once(to, req, upload, on_body, deadline, retry);
    if (retry) res = exchange_once(to, req, upload, on_body, deadline, retry);  // once, on a new connection
    if (!follows(res, options_, upload)) return res;
    const auto location = res.headers.get("Location");
    if (redirects == options_.max_redirects)
      fail(error::too_many_redirects, std::to_string(redirects) + " redirects, last to " + std::string(*location));
    const url from = to;
    to = to.resolve(*location);
    req.target = to.target;
    req.headers.erase("Host");
    if (to.scheme != from.scheme || to.host != from.host || to.port != from.port) {
      // Credentials go to the origin they were meant for only (as curl and Go do).
      req.headers.erase("Authorization");
      req.headers.erase("Proxy-Authorization");
      req.headers.erase("Cookie");
    }
    if (res.status == 303 || ((res.status == 301 || res.status == 302) && req.method == "POST")) {
      req.method = req.method == "HEAD" ? "HEAD" : "GET";
      req.body.clear();
      upload = nullptr;
      req.headers.erase("Content-Type");
    }
  }
}

response client::state::exchange_once(const url& to, const request& req, const body_source* upload,
                                      const std::function<void(std::string_view)>* on_body, time_point deadline,
                                      bool& retry_on_fresh) {
  const bool retrying = retry_on_fresh;
  const bool may_retry = !retrying && idempotent(req.method) && upload == nullptr;  // a stream goes once
  retry_on_fresh = false;
  const std::string head = serialize_head(req, upload, to, options_);  // refuses a bad request before connecting
  bool reused = false;
  connection conn;
  try {
    conn = take_connection(to, deadline, /*fresh=*/retrying, reused);
  } catch (const timeout_error&) {  // resolving, connecting or the TLS handshake
    throw_timeout(req, to);
  }
  // A reused connection that fails before any byte of the answer came back was
  // closed by the server in between: an idempotent request goes again, once.
  auto dead_connection = [&](bool answer_started) {
    if (reused && may_retry && !answer_started) {
      retry_on_fresh = true;
      return true;
    }
    return false;
  };

  std::error_code ec;
  const net::const_buffer parts[] = {head, req.body};
  std::visit(
      [&](auto& stream) {
        stream.write_all(parts, deadline, ec);
        if (!ec && upload) ec = send_upload(stream, *upload, deadline);
      },
      conn);
  if (ec == errc::timed_out) throw_timeout(req, to);
  // A server may answer before it has read the whole request and then stop reading
  // (413 for a body over its limit, 401 before an upload): the write fails, but its
  // answer may be waiting. It is read as usual; without one, the write's error is
  // what the caller gets.
  // On a reused connection, what follows tells a stale connection (no answer:
  // dead_connection below, sent again) from an early answer.
  std::error_code send_failed;
  if (ec) send_failed = std::exchange(ec, {});
  auto fail_sending = [&] {
    if (send_failed) fail(send_failed, "sending to " + to.authority());
  };

  detail::response_parser parser({.header_bytes = options_.max_header_bytes, .body_bytes = options_.max_body_bytes});
  const bool head_request = req.method == "HEAD";
  parser.reset(head_request);
  if (on_body && options_.follow_redirects) {
    // The body of a redirect that will be followed is not the answer's.
    parser.body_sink = [this, &parser, on_body, upload](std::string_view bytes) {
      if (follows(parser.message(), options_, upload)) return;
      (*on_body)(bytes);
    };
  } else if (on_body) {
    parser.body_sink = *on_body;
  }
  net::read_buffer in;
  bool answer_started = false;
  // A stale pooled connection, and a request that may not be sent twice.
  const std::string stale_note =
      " on a reused connection the server had closed (a " + req.method + " is not sent again: it is not idempotent)";
  for (;;) {
    in.consume(parser.feed(in.unparsed()));
    // 1xx answers (100 Continue) come before the real one; 101 would switch protocols.
    while (parser.done() && parser.message().status / 100 == 1 && parser.message().status != 101) {
      parser.reset(head_request);
      in.consume(parser.feed(in.unparsed()));
    }
    if (parser.done() || parser.failed()) break;
    const std::size_t n = std::visit([&](auto& stream) { return in.read_from(stream, deadline, ec); }, conn);
    if (ec == errc::timed_out) throw_timeout(req, to);
    if (ec) {
      if (dead_connection(answer_started)) return {};
      fail_sending();
      if (reused && !answer_started) fail(ec, "reading the answer of " + to.authority() + stale_note);
      fail(ec, "reading the answer of " + to.authority());
    }
    if (n == 0) {
      if (dead_connection(answer_started)) return {};
      fail_sending();
      if (reused && !answer_started) fail(error::bad_message, "no answer from " + to.authority() + stale_note);
      parser.feed_eof();
      if (parser.failed()) break;
    }
    answer_started = true;
  }
  if (parser.failed()) {
    fail_sending();
    std::string limit;  // which option to raise
    if (parser.error() == error::body_too_large)
      limit = ", over client_options::max_body_bytes = " + std::to_string(options_.max_body_bytes);
    if (parser.error() == error::header_too_large)
      limit = ", over client_options::max_header_bytes = " + std::to_string(options_.max_header_bytes);
    fail(parser.error(), parser.failure() + " (from " + to.authority() + limit + ")");
  }
  // Back to the pool only a connection that speaks HTTP still (not after 101
  // Switching Protocols), whose request went out whole and did not ask for the
  // connection to close (RFC 9112 9.6: whatever the answer says), and that holds no
  // byte past this answer: such bytes belong to no request of ours (a server's
  // stray answer), and the next request would take them for its own.
  const bool switched = parser.message().status == 101;
  if (parser.keep_alive() && !switched && !send_failed && !req.headers.has_token("Connection", "close") &&
      in.unparsed().empty() && std::visit([](auto& stream) { return settled_after_answer(stream); }, conn))
    put_back(to, std::move(conn));
  return std::move(parser.message());
}

client::state::connection client::state::take_connection(const url& to, time_point deadline, bool fresh,
                                                           bool& reused) {
  const pool_key key = key_for(to);
  while (!fresh) {
    std::optional<connection> conn;
    {
      std::lock_guard lock(pool_mutex_);
      auto pooled = idle_.find(key);
      if (pooled == idle_.end() || pooled->second.empty()) break;
      conn.emplace(std::move(pooled->second.back()));
      pooled->second.pop_back();
    }
    if (std::visit([](auto& stream) { return settled(stream); }, *conn)) {
      reused = true;
      return std::move(*conn);
    }
  }
  reused = false;
  net::tcp_stream conn;
  try {
    conn = net::tcp_stream::connect(to.host, std::to_string(to.port), deadline);
  } catch (const weft::error&) {
    throw;  // a timeout, a cancellation: named by the caller, or already
  } catch (const std::system_error& e) {  // refused, unreachable, no such host: say which request's
    fail(e.code(), "cannot connect for " + to.to_string());  // the reason follows, from the code
  }
  conn.set_nodelay(true);
  if (!to.secure()) return conn;
  std::error_code ec;
  net::tls_stream secure = net::tls_stream::client(tls_context(), std::move(conn), to.host, deadline, ec);
  if (ec == errc::timed_out) throw timeout_error("weft::http::client TLS handshake");
  if (ec) fail(ec, "TLS handshake with " + to.authority());
  return secure;
}

void client::state::put_back(const url& to, connection conn) {
  const pool_key key = key_for(to);
  std::lock_guard lock(pool_mutex_);
  // A scheduler's first connection kept here: the pools of schedulers that have
  // ended (earlier run()s of a client that outlives them) go now, or they would
  // hold their descriptors until the client does.
  if (!idle_.contains(key))
    std::erase_if(idle_, [](const auto& pooled) {
      return !weft::detail::scheduler::is_live_incarnation(pooled.first.first);
    });
  std::vector<connection>& pool = idle_[key];
  if (pool.size() < options_.max_idle_per_host) pool.push_back(std::move(conn));
  // else: conn closes here, under the lock; closing a socket does not block
}

}  // namespace weft::http
