// resolve.hpp: name resolution that does not block the scheduler.
//
//   for (const weft::net::endpoint& ep : weft::net::resolve("example.com", "443")) ...
//
// getaddrinfo blocks (files, DNS), so it runs on weft::to_thread's pool while only
// the calling fiber waits, as asyncio's loop.getaddrinfo does. Numeric hosts and
// ports are answered without the pool.
#pragma once

#include <string_view>
#include <system_error>
#include <vector>

#include <weft/net/address.hpp>
#include <weft/net/deadline.hpp>

namespace weft::net {

// resolve_category() holds getaddrinfo's EAI_* codes ("resolve"); EAI_SYSTEM is
// reported as the errno it carries (std::generic_category). EAI_AGAIN (a
// temporary failure of the name server) is reported, not retried: one lookup
// already waited for the resolver's own timeouts and retries.
const std::error_category& resolve_category() noexcept;

// resolve(host, service) lists the endpoints for stream sockets, in getaddrinfo's
// order of preference, without duplicates. service is a port number or a name from
// /etc/services. Throws std::system_error (resolve_category, e.g. EAI_NONAME),
// timeout_error when the deadline passes, cancelled_error on cancellation, and
// errc::not_in_fiber outside a fiber. The error_code form reports all but
// cancellation (which always throws, because it must unwind the fiber).
std::vector<endpoint> resolve(std::string_view host, std::string_view service, deadline d = {});
std::vector<endpoint> resolve(std::string_view host, std::string_view service, deadline d,
                              std::error_code& ec);

}  // namespace weft::net
