#include <weft/http/message.hpp>

#include <algorithm>
#include <string>

#include <weft/http/detail/syntax.hpp>

namespace weft::http {

namespace {
char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}
}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return lower(x) == lower(y);
         });
}

std::optional<std::string_view> headers::get(std::string_view name) const noexcept {
  for (const header_field& f : fields_)
    if (iequals(f.name, name)) return std::string_view(f.value);
  return std::nullopt;
}

bool headers::has_token(std::string_view name, std::string_view token) const noexcept {
  for (const header_field& f : fields_) {
    if (!iequals(f.name, name)) continue;
    std::string_view rest = f.value;
    while (!rest.empty()) {
      const std::size_t comma = rest.find(',');
      if (iequals(trim(rest.substr(0, comma)), token)) return true;
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  return false;
}

void headers::set(std::string_view name, std::string value) {
  erase(name);
  fields_.push_back({std::string(name), std::move(value)});
}

void headers::erase(std::string_view name) noexcept {
  std::erase_if(fields_, [&](const header_field& f) { return iequals(f.name, name); });
}

std::string_view request::path() const noexcept {
  std::string_view t = target;
  // The absolute form ("http://host/p", what a client sends a proxy), which a server
  // must accept too (RFC 9112 3.2.2): the path is what follows the authority.
  if (const std::size_t scheme_end = t.find("://");
      scheme_end != std::string_view::npos && scheme_end < t.find_first_of("/?")) {
    t.remove_prefix(scheme_end + 3);
    const std::size_t path_start = t.find_first_of("/?");
    if (path_start == std::string_view::npos || t[path_start] == '?') return "/";
    t.remove_prefix(path_start);
  }
  return t.substr(0, t.find('?'));
}

std::string_view request::query() const noexcept {
  const std::size_t q = target.find('?');
  return q == std::string::npos ? std::string_view() : std::string_view(target).substr(q + 1);
}

response response::text(int status, std::string body) {
  return with_type(status, "text/plain; charset=utf-8", std::move(body));
}

response response::with_type(int status, std::string content_type, std::string body) {
  response r;
  r.status = status;
  r.headers.add("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "";
  }
}

namespace {
class http_category : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft.http"; }
  std::string message(int code) const override {
    switch (static_cast<error>(code)) {
      case error::bad_message: return "malformed HTTP message";
      case error::body_too_large: return "HTTP body over the limit";
      case error::header_too_large: return "HTTP header block over the limit";
      case error::too_many_redirects: return "too many HTTP redirects";
      case error::bad_url: return "URL weft::http cannot use";
      case error::unsupported_scheme: return "URL scheme not supported (only http:// and https://)";
    }
    return "unknown weft.http error";
  }
};
}  // namespace

const std::error_category& category() noexcept {
  static const http_category instance;
  return instance;
}

std::error_code make_error_code(error e) noexcept { return {static_cast<int>(e), category()}; }

namespace detail {

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (const char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos) return false;
  }
  return true;
}

bool is_field_value(std::string_view s) noexcept {
  return std::none_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

bool is_target_text(std::string_view s) noexcept {
  return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; });
}

std::string invalid_field(const headers& h) {
  for (const header_field& f : h) {
    if (!is_token(f.name)) return "the field name \"" + f.name + "\" (a name is a token: letters, digits, !#$%&'*+-.^_`|~)";
    if (!is_field_value(f.value))
      return "a control character (CR, LF, NUL, ...) in the value of field " + f.name +
             " (it would end the field and start another)";
  }
  return {};
}

}  // namespace detail

}  // namespace weft::http

