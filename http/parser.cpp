// parser.cpp: the one translation unit that includes Boost.Beast (its headers cost
// seconds to compile; nothing else in weft sees them).
#include <weft/http/detail/parser.hpp>

// Boost 1.74's Beast asserts `n >= 5` in parse_chunk_header when a chunked body
// whose *first* chunk is the last one ("0\r\n" then "\r" in a later read) comes in
// pieces: it assumes the CRLF of a chunk before it, and the code after the assert
// handles the short case correctly (the fuzz target found the input; later Beast
// dropped the assert). So Boost's assertions are off in this one translation
// unit, as they are in every NDEBUG build; weft's own (WEFT_ASSERT) are not
// affected. HttpServer.ChunkedBodyWhoseOnlyChunkIsTheLastArrivesInPieces checks it.
// boost/assert.hpp is read again on purpose: it redefines BOOST_ASSERT at every
// inclusion, so the setting holds even where a file before this one included it
// (a unity build, as tests/consumer/check.sh and ./run's sanitizer builds make),
// and the end of this file gives the files after it their assertions back.
#ifndef BOOST_DISABLE_ASSERTS
#define BOOST_DISABLE_ASSERTS
#define WEFT_PARSER_DISABLED_BOOST_ASSERTS
#endif
#include <boost/assert.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/optional.hpp>

#include <optional>
#include <string>
#include <utility>

namespace weft::http::detail {

namespace beast = boost::beast;
using beast_error = beast::http::error;

// Named, not anonymous: request_parser::impl and response_parser::impl hold a
// message_parser, and a class whose field has internal linkage draws GCC's
// -Wsubobject-linkage once this file is compiled inside another (a unity build).
namespace beast_glue {

std::string_view view(beast::string_view s) noexcept { return {s.data(), s.size()}; }

// message_parser fills a weft request or response from Beast's callbacks.
template <bool is_request>
class message_parser final : public beast::http::basic_parser<is_request> {
 public:
  using message_type = std::conditional_t<is_request, request, response>;

  message_parser(message_type& m, const parse_limits& limits) : m_(m), body_bytes_(limits.body_bytes) {
    this->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(limits.header_bytes, UINT32_MAX)));
    this->body_limit(limits.body_bytes);
    this->eager(true);  // parse every body byte offered, not only the header
  }

  std::function<void(std::string_view)>* body_sink = nullptr;
  bool bad_host = false;             // HTTP/1.1 without exactly one Host: 400
  bool bad_transfer_encoding = false;  // a request's Transfer-Encoding not ending in chunked: 400
  int host_fields = 0;
  bool has_transfer_encoding = false;

 private:
  // (Beast itself refuses versions other than 1.0 and 1.1 before these two callbacks.)
  void on_request_impl(beast::http::verb, beast::string_view method, beast::string_view target, int version,
                       beast::error_code&) override {
    if constexpr (is_request) {
      m_.method.assign(method.data(), method.size());
      m_.target.assign(target.data(), target.size());
      m_.version = version;
    }
  }

  void on_response_impl(int code, beast::string_view reason, int version, beast::error_code&) override {
    if constexpr (!is_request) {
      m_.status = code;
      m_.reason.assign(reason.data(), reason.size());
      m_.version = version;
    }
  }

  void on_field_impl(beast::http::field name, beast::string_view name_text, beast::string_view value,
                     beast::error_code&) override {
    if (name == beast::http::field::host) ++host_fields;
    if (name == beast::http::field::transfer_encoding) has_transfer_encoding = true;
    m_.headers.add(std::string(view(name_text)), std::string(view(value)));
  }

  void on_header_impl(beast::error_code& ec) override {
    if constexpr (is_request) {
      if (m_.version == 11 ? host_fields != 1 : host_fields > 1) {
        bad_host = true;
        ec = beast_error::bad_field;
      } else if (has_transfer_encoding && (m_.version == 10 || !this->chunked())) {
        // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked
        // (or any HTTP/1.0 one) has no length a server can trust: 400, then close.
        // Taken as bodiless, its body would be read as the next request (smuggling).
        bad_transfer_encoding = true;
        ec = beast_error::bad_transfer_encoding;
      }
    }
  }

  // A Content-Length over the limit fails here, before the body's room is taken:
  // Beast checks its body_limit only as bytes come, after this reserve, and a peer's
  // "Content-Length: 999999999999" would otherwise be std::bad_alloc.
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code& ec) override {
    if (length && *length > body_bytes_) {
      ec = beast_error::body_limit;
      return;
    }
    if (length && !(body_sink && *body_sink)) m_.body.reserve(static_cast<std::size_t>(*length));
  }

  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    take(view(body));
    return body.size();
  }

  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}

  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    take(view(body));
    return body.size();
  }

  void on_finish_impl(beast::error_code&) override {}

  void take(std::string_view bytes) {
    if (body_sink && *body_sink)
      (*body_sink)(bytes);
    else
      m_.body.append(bytes);
  }

  message_type& m_;
  std::uint64_t body_bytes_;
};

// names_other_version says whether the request line at the start of `bytes` ends in a
// well-formed "HTTP/d.d" other than 1.0 and 1.1. Beast refuses those before any
// callback with the same bad_version it gives for garbage; the first earns a 505.
bool names_other_version(std::string_view bytes) {
  const std::string_view line = bytes.substr(0, bytes.find("\r\n"));
  const std::string_view v = line.substr(line.rfind(' ') + 1);
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  return line.find(' ') != line.rfind(' ') && v.size() == 8 && v.starts_with("HTTP/") && digit(v[5]) &&
         v[6] == '.' && digit(v[7]) && v != "HTTP/1.0" && v != "HTTP/1.1";
}

// feed_parser runs one put() and reports (consumed, error); need_more is not an error.
template <class Parser>
std::pair<std::size_t, beast::error_code> feed_parser(Parser& p, std::string_view bytes) {
  beast::error_code ec;
  const std::size_t used = p.put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
  if (ec == beast_error::need_more) ec = {};
  return {used, ec};
}

// waits_on_long_line: Beast (1.74) takes a chunk's size line and the trailer block
// only whole, and bounds neither by its limits; the bytes it leaves unconsumed,
// after the header and before the end, are one of those waiting to end. Past the
// header limit, a peer could make the reader buffer them without end.
template <class Parser>
bool waits_on_long_line(const Parser& p, std::size_t unconsumed, std::size_t limit) noexcept {
  return unconsumed > limit && p.is_header_done() && !p.is_done();
}

std::string long_line_failure(std::size_t limit) {
  return "chunk size line or trailer longer than " + std::to_string(limit) + " bytes";
}

}  // namespace beast_glue
using namespace beast_glue;

// ---- request_parser ------------------------------------------------------------------

struct request_parser::impl {
  parse_limits limits;
  std::optional<message_parser<true>> parser;
};

request_parser::request_parser(parse_limits limits) : impl_(std::make_unique<impl>()) {
  impl_->limits = limits;
  reset();
}

request_parser::~request_parser() = default;

void request_parser::reset() {
  message_ = request{};
  failure_status_ = 0;
  failure_.clear();
  impl_->parser.emplace(message_, impl_->limits);
}

std::size_t request_parser::feed(std::string_view bytes) {
  if (failed() || done()) return 0;
  auto [used, ec] = feed_parser(*impl_->parser, bytes);
  if (ec) {
    const auto& p = *impl_->parser;
    failure_ = ec.message();
    if (ec == beast_error::bad_version && names_other_version(bytes)) {
      failure_status_ = 505;
      failure_ = "HTTP version other than 1.0 and 1.1";
    } else if (p.bad_host) {
      failure_status_ = 400;
      failure_ = message_.version == 11 ? "HTTP/1.1 request without exactly one Host field" : "more than one Host field";
    } else if (p.bad_transfer_encoding) {
      failure_status_ = 400;
      failure_ = message_.version == 10 ? "Transfer-Encoding in an HTTP/1.0 request"
                                        : "Transfer-Encoding that does not end in chunked";
    } else if (ec == beast_error::header_limit) {
      failure_status_ = 431;
    } else if (ec == beast_error::body_limit) {
      failure_status_ = 413;
    } else {
      failure_status_ = 400;
    }
  } else if (waits_on_long_line(*impl_->parser, bytes.size() - used, impl_->limits.header_bytes)) {
    failure_status_ = 400;
    failure_ = long_line_failure(impl_->limits.header_bytes);
  }
  return used;
}

bool request_parser::header_done() const noexcept { return impl_->parser->is_header_done(); }
bool request_parser::done() const noexcept { return !failed() && impl_->parser->is_done(); }
bool request_parser::keep_alive() const noexcept { return impl_->parser->keep_alive(); }

// ---- response_parser -----------------------------------------------------------------

struct response_parser::impl {
  parse_limits limits;
  std::optional<message_parser<false>> parser;
};

response_parser::response_parser(parse_limits limits) : impl_(std::make_unique<impl>()) {
  impl_->limits = limits;
  reset(false);
}

response_parser::~response_parser() = default;

void response_parser::reset(bool head) {
  message_ = response{};
  error_.clear();
  failure_.clear();
  impl_->parser.emplace(message_, impl_->limits);
  impl_->parser->body_sink = &body_sink;
  if (head) impl_->parser->skip(true);
}

std::size_t response_parser::feed(std::string_view bytes) {
  if (failed() || done()) return 0;
  auto [used, ec] = feed_parser(*impl_->parser, bytes);
  if (ec) {
    failure_ = ec.message();
    error_ = ec == beast_error::header_limit ? error::header_too_large
             : ec == beast_error::body_limit ? error::body_too_large
                                              : error::bad_message;
  } else if (waits_on_long_line(*impl_->parser, bytes.size() - used, impl_->limits.header_bytes)) {
    error_ = error::header_too_large;
    failure_ = long_line_failure(impl_->limits.header_bytes);
  }
  return used;
}

void response_parser::feed_eof() {
  if (failed() || done()) return;
  beast::error_code ec;
  if (impl_->parser->got_some())
    impl_->parser->put_eof(ec);
  else
    ec = beast_error::partial_message;  // (Beast would call nothing at all a whole message)
  if (ec) {
    error_ = error::bad_message;
    failure_ = impl_->parser->got_some() ? "connection closed in the middle of a response"
                                         : "connection closed without an answer";
  }
}

bool response_parser::header_done() const noexcept { return impl_->parser->is_header_done(); }
bool response_parser::done() const noexcept { return !failed() && impl_->parser->is_done(); }
bool response_parser::keep_alive() const noexcept { return impl_->parser->keep_alive(); }

}  // namespace weft::http::detail

#ifdef WEFT_PARSER_DISABLED_BOOST_ASSERTS
#undef BOOST_DISABLE_ASSERTS
#undef WEFT_PARSER_DISABLED_BOOST_ASSERTS
#include <boost/assert.hpp>
#endif
