#include <weft/net/address.hpp>

#include <arpa/inet.h>
#include <net/if.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

#include <weft/runtime/error.hpp>

namespace weft::net {

ip_address::ip_address() noexcept = default;

ip_address ip_address::from_v4(in_addr a) noexcept {
  ip_address r;
  r.v4_ = a;
  return r;
}

ip_address ip_address::from_v6(const in6_addr& a, std::uint32_t scope_id) noexcept {
  ip_address r;
  r.v6_ = true;
  r.v6addr_ = a;
  r.scope_ = scope_id;
  return r;
}

ip_address ip_address::v4_any() noexcept { return from_v4(in_addr{htonl(INADDR_ANY)}); }
ip_address ip_address::v4_loopback() noexcept { return from_v4(in_addr{htonl(INADDR_LOOPBACK)}); }
ip_address ip_address::v6_any() noexcept { return from_v6(in6addr_any); }
ip_address ip_address::v6_loopback() noexcept { return from_v6(in6addr_loopback); }

bool ip_address::is_loopback() const noexcept {
  if (v6_) return IN6_IS_ADDR_LOOPBACK(&v6addr_);
  return (ntohl(v4_.s_addr) >> 24) == 127;
}

bool ip_address::is_unspecified() const noexcept {
  if (v6_) return IN6_IS_ADDR_UNSPECIFIED(&v6addr_);
  return v4_.s_addr == 0;
}

std::optional<ip_address> ip_address::try_parse(std::string_view text) noexcept {
  // inet_pton wants a terminated string; the longest valid text is an IPv6 address
  // with an embedded IPv4 part and a scope.
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  in_addr a4{};
  if (::inet_pton(AF_INET, buf, &a4) == 1) return from_v4(a4);
  std::uint32_t scope = 0;
  if (char* percent = std::strchr(buf, '%')) {
    *percent = '\0';
    const char* name = percent + 1;
    const char* end = name + std::strlen(name);
    if (name == end) return std::nullopt;
    const auto [p, ec] = std::from_chars(name, end, scope);
    if (ec != std::errc{} || p != end) {
      scope = ::if_nametoindex(name);
      if (scope == 0) return std::nullopt;
    }
  }
  in6_addr a6{};
  if (::inet_pton(AF_INET6, buf, &a6) == 1) return from_v6(a6, scope);
  return std::nullopt;
}

ip_address ip_address::parse(std::string_view text) {
  if (auto a = try_parse(text)) return *a;
  throw error(errc::invalid_argument, "weft::net::ip_address::parse",
              "not a numeric IP address: \"" + std::string(text) + "\" (for a host name: weft::net::resolve)");
}

std::string ip_address::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  ::inet_ntop(family(), v6_ ? static_cast<const void*>(&v6addr_) : &v4_, buf, sizeof buf);
  std::string out(buf);
  if (v6_ && scope_ != 0) out += '%' + std::to_string(scope_);
  return out;
}

bool operator==(const ip_address& a, const ip_address& b) noexcept {
  if (a.v6_ != b.v6_) return false;
  if (!a.v6_) return a.v4_.s_addr == b.v4_.s_addr;
  return std::memcmp(&a.v6addr_, &b.v6addr_, sizeof a.v6addr_) == 0 && a.scope_ == b.scope_;
}

std::optional<endpoint> endpoint::try_parse(std::string_view text) noexcept {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  std::uint16_t number = 0;
  const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || ec != std::errc{} || p != port.data() + port.size()) return std::nullopt;
  const auto address = ip_address::try_parse(host);
  if (!address || (text.front() == '[') != address->is_v6()) return std::nullopt;
  return endpoint(*address, number);
}

endpoint endpoint::parse(std::string_view text) {
  if (auto e = try_parse(text)) return *e;
  throw error(errc::invalid_argument, "weft::net::endpoint::parse",
              "not a numeric address:port: \"" + std::string(text) +
                  "\" (for a host name: weft::net::resolve, or tcp_stream::connect(host, service))");
}

std::optional<endpoint> endpoint::from_sockaddr(const sockaddr* sa, socklen_t len) noexcept {
  if (sa == nullptr) return std::nullopt;
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in;
    std::memcpy(&in, sa, sizeof in);
    return endpoint(ip_address::from_v4(in.sin_addr), ntohs(in.sin_port));
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in6;
    std::memcpy(&in6, sa, sizeof in6);
    return endpoint(ip_address::from_v6(in6.sin6_addr, in6.sin6_scope_id), ntohs(in6.sin6_port));
  }
  return std::nullopt;
}

socklen_t endpoint::to_sockaddr(sockaddr_storage& out) const noexcept {
  std::memset(&out, 0, sizeof out);
  if (address_.is_v4()) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port_);
    in.sin_addr = address_.v4();
    std::memcpy(&out, &in, sizeof in);
    return sizeof in;
  }
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(port_);
  in6.sin6_addr = address_.v6();
  in6.sin6_scope_id = address_.scope_id();
  std::memcpy(&out, &in6, sizeof in6);
  return sizeof in6;
}

std::string endpoint::to_string() const {
  const std::string port = std::to_string(port_);
  if (address_.is_v6()) return '[' + address_.to_string() + "]:" + port;
  return address_.to_string() + ':' + port;
}

}  // namespace weft::net
