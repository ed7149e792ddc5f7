#include <weft/net/resolve.hpp>

#include <netdb.h>

#include <algorithm>
#include <charconv>
#include <string>

#include <weft/runtime/detail/call_blocking.hpp>
#include <weft/runtime/error.hpp>

namespace weft::net {
namespace {

class resolve_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "resolve"; }
  std::string message(int value) const override { return ::gai_strerror(value); }
};

// What the helper thread hands back: endpoints, or a gai code with its errno.
struct lookup_result {
  std::vector<endpoint> endpoints;
  int gai = 0;
  int sys = 0;
};

lookup_result lookup(const std::string& host, const std::string& service) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  lookup_result out;
  out.gai = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
  if (out.gai == EAI_SYSTEM) out.sys = errno;
  if (out.gai != 0) return out;
  for (const addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    const auto ep = endpoint::from_sockaddr(ai->ai_addr, ai->ai_addrlen);
    if (ep && std::find(out.endpoints.begin(), out.endpoints.end(), *ep) == out.endpoints.end())
      out.endpoints.push_back(*ep);
  }
  ::freeaddrinfo(list);
  return out;
}

}  // namespace

const std::error_category& resolve_category() noexcept {
  static const resolve_category_impl instance;
  return instance;
}

std::vector<endpoint> resolve(std::string_view host, std::string_view service, deadline d,
                              std::error_code& ec) {
  ec.clear();
  // Numbers need no thread.
  std::uint16_t port = 0;
  const auto [p, perr] = std::from_chars(service.data(), service.data() + service.size(), port);
  const bool numeric_port = !service.empty() && perr == std::errc{} && p == service.data() + service.size();
  if (numeric_port) {
    if (const auto address = ip_address::try_parse(host)) return {endpoint(*address, port)};
  }
  const auto result = detail::call_blocking(
      [host = std::string(host), service = std::string(service)] { return lookup(host, service); },
      d.at, "weft::net::resolve");
  if (!result) {
    ec = make_error_code(errc::timed_out);
    return {};
  }
  if (result->gai == EAI_SYSTEM) {
    ec = std::error_code(result->sys, std::generic_category());
    return {};
  }
  if (result->gai != 0) {
    ec = std::error_code(result->gai, resolve_category());
    return {};
  }
  return result->endpoints;
}

std::vector<endpoint> resolve(std::string_view host, std::string_view service, deadline d) {
  std::error_code ec;
  auto endpoints = resolve(host, service, d, ec);
  if (ec == errc::timed_out) throw timeout_error("weft::net::resolve");
  if (ec) throw std::system_error(ec, "weft::net::resolve(\"" + std::string(host) + "\", \"" + std::string(service) + "\")");
  return endpoints;
}

}  // namespace weft::net
