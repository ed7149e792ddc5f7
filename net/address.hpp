// address.hpp: IPv4 and IPv6 addresses and endpoints (address + port), parsed and
// printed the way `ip`, `ss` and URLs write them.
//
//   auto a = weft::net::ip_address::parse("::1");
//   weft::net::endpoint ep{a, 8080};              // prints as "[::1]:8080"
//   auto b = weft::net::endpoint::parse("127.0.0.1:80");
//
// Parsing takes numeric addresses only; names go through net::resolve (resolve.hpp),
// which does not block the scheduler.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace weft::net {

// ip_address is an IPv4 or IPv6 address; an IPv6 address may carry a scope (the
// interface index of a link-local address, written "fe80::1%eth0" or "%2").
class ip_address {
 public:
  ip_address() noexcept;  // 0.0.0.0

  // parse reads a numeric address; throws weft::error(errc::invalid_argument)
  // naming the text.
  static ip_address parse(std::string_view text);
  // try_parse is parse without the exception.
  static std::optional<ip_address> try_parse(std::string_view text) noexcept;

  static ip_address v4_any() noexcept;
  static ip_address v4_loopback() noexcept;
  static ip_address v6_any() noexcept;
  static ip_address v6_loopback() noexcept;
  static ip_address from_v4(in_addr a) noexcept;
  static ip_address from_v6(const in6_addr& a, std::uint32_t scope_id = 0) noexcept;

  bool is_v4() const noexcept { return !v6_; }
  bool is_v6() const noexcept { return v6_; }
  bool is_loopback() const noexcept;
  bool is_unspecified() const noexcept;
  int family() const noexcept { return v6_ ? AF_INET6 : AF_INET; }
  in_addr v4() const noexcept { return v4_; }
  const in6_addr& v6() const noexcept { return v6addr_; }
  std::uint32_t scope_id() const noexcept { return scope_; }

  // to_string prints "192.0.2.1", "2001:db8::1" or "fe80::1%2".
  std::string to_string() const;

  friend bool operator==(const ip_address& a, const ip_address& b) noexcept;

 private:
  bool v6_ = false;
  in_addr v4_{};
  in6_addr v6addr_{};
  std::uint32_t scope_ = 0;
};

// endpoint is where a socket binds or connects: an address and a port.
class endpoint {
 public:
  endpoint() noexcept = default;
  endpoint(ip_address address, std::uint16_t port) noexcept : address_(address), port_(port) {}

  // parse reads "192.0.2.1:80" or "[2001:db8::1]:80" (the port is required);
  // throws weft::error(errc::invalid_argument).
  static endpoint parse(std::string_view text);
  static std::optional<endpoint> try_parse(std::string_view text) noexcept;

  // from_sockaddr reads an AF_INET or AF_INET6 socket address; nullopt otherwise.
  static std::optional<endpoint> from_sockaddr(const sockaddr* sa, socklen_t len) noexcept;
  // to_sockaddr writes the socket address and returns its length.
  socklen_t to_sockaddr(sockaddr_storage& out) const noexcept;

  const ip_address& address() const noexcept { return address_; }
  std::uint16_t port() const noexcept { return port_; }
  int family() const noexcept { return address_.family(); }

  std::string to_string() const;  // "192.0.2.1:80", "[::1]:80"

  friend bool operator==(const endpoint& a, const endpoint& b) noexcept {
    return a.port_ == b.port_ && a.address_ == b.address_;
  }

 private:
  ip_address address_;
  std::uint16_t port_ = 0;
};

}  // namespace weft::net
