// unix_path.hpp: Unix domain socket addresses from and to path strings.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>
#include <string_view>
#include <system_error>

namespace weft::net::detail {

// to_unix_address fills `out` for `path` ('@' first: abstract namespace) and returns
// the address length, or 0 with ec (EINVAL: empty; ENAMETOOLONG: too long).
socklen_t to_unix_address(std::string_view path, sockaddr_un& out, std::error_code& ec) noexcept;
// from_unix_address is the path of an address ("" if unnamed, '@' if abstract).
std::string from_unix_address(const sockaddr_storage& address, socklen_t len);

}  // namespace weft::net::detail
