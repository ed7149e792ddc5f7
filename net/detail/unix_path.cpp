#include <weft/net/detail/unix_path.hpp>

#include <cstddef>
#include <cstring>

namespace weft::net::detail {

socklen_t to_unix_address(std::string_view path, sockaddr_un& out, std::error_code& ec) noexcept {
  std::memset(&out, 0, sizeof out);
  out.sun_family = AF_UNIX;
  const bool abstract = !path.empty() && path.front() == '@';
  if (path.empty() || (abstract && path.size() == 1)) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return 0;
  }
  // A filesystem path needs its terminator to fit; an abstract name does not.
  if (path.size() + (abstract ? 0 : 1) > sizeof out.sun_path) {
    ec = std::make_error_code(std::errc::filename_too_long);
    return 0;
  }
  std::memcpy(out.sun_path, path.data(), path.size());
  if (abstract) out.sun_path[0] = '\0';
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
}

std::string from_unix_address(const sockaddr_storage& address, socklen_t len) {
  const auto& un = reinterpret_cast<const sockaddr_un&>(address);
  const std::size_t offset = offsetof(sockaddr_un, sun_path);
  if (un.sun_family != AF_UNIX || len <= offset) return {};
  std::size_t n = len - offset;
  if (un.sun_path[0] == '\0') return '@' + std::string(un.sun_path + 1, n - 1);
  return std::string(un.sun_path, ::strnlen(un.sun_path, n));
}

}  // namespace weft::net::detail
