// syntax.hpp: what may go into a message weft writes (RFC 9110 5.1, 5.5, 5.6.2).
// A method or a field that breaks these rules would end its line early and start
// another: a header, or a whole request, that the caller never wrote (header
// injection, request smuggling, response splitting). The client refuses such a
// request; the server answers 500 instead of such a response.
#pragma once

#include <string>
#include <string_view>

#include <weft/http/message.hpp>

namespace weft::http::detail {

// is_token: one or more of ALPHA DIGIT ! # $ % & ' * + - . ^ _ ` | ~ (a method, a
// field name).
bool is_token(std::string_view s) noexcept;
// is_field_value: no control character but HTAB (so no CR, LF or NUL), no DEL.
bool is_field_value(std::string_view s) noexcept;
// is_target_text: no space, control character or DEL (a request target, a URL, a
// Location; RFC 3986 has them percent-encoded).
bool is_target_text(std::string_view s) noexcept;
// invalid_field: "" if every field of `h` may be sent, else which one may not and why.
std::string invalid_field(const headers& h);

}  // namespace weft::http::detail
