// error.hpp: the error codes and exceptions every part of weft reports with.
//
// Expected outcomes of blocking calls come back as values (a `_for`/`_until` wait
// returns false on its deadline). Cancellation is an exception, `cancelled_error`,
// because it must unwind the fiber; misuse throws `weft::error` with a code below.
#pragma once

#include <system_error>

namespace weft {

// errc lists weft's own error conditions (errno values stay in std::generic_category).
enum class errc {
  cancelled = 1,      // the fiber was cancelled while (or before) it blocked
  timed_out,          // a deadline passed
  not_in_fiber,       // a blocking call or fiber-only call made outside a fiber
  not_joinable,       // join/wait/detach on an empty, joined or detached handle
  would_deadlock,     // a fiber joined itself
  already_waited,     // a second fiber waits on the same handle or fd direction
  scheduler_running,  // weft::run called on a thread that already runs one
  scheduler_stopped,  // work handed to a scheduler that has finished
  invalid_argument,   // a negative size, an unknown option value, ...
  channel_closed,     // a send on a closed channel
  not_owner,          // a mutex unlocked by a fiber that does not hold it
  semaphore_overflow, // a bounded semaphore released beyond its initial count
  socket_closed,      // the socket was closed (by another fiber) while the call used it
  end_of_stream,      // the peer closed the stream before the bytes a call needed arrived
  destroyed_while_waiting,  // the sync/ primitive a fiber waited on was destroyed
};

// category() is the std::error_category of weft::errc ("weft").
const std::error_category& category() noexcept;

std::error_code make_error_code(errc e) noexcept;

// error is the base of every exception weft throws.
class error : public std::system_error {
 public:
  explicit error(errc e);
  error(errc e, const char* what);
  error(errc e, const std::string& what);
};

// cancelled_error ends a blocking call of a fiber that was cancelled. Catch it only
// to clean up, then rethrow: swallowing it makes the fiber ignore its cancellation.
class cancelled_error : public error {
 public:
  cancelled_error();
};

// timeout_error is thrown by calls whose only way to report a deadline is an
// exception (a deadline scope, a connect); `_for`/`_until` waits return false instead.
class timeout_error : public error {
 public:
  timeout_error();
};

}  // namespace weft

template <>
struct std::is_error_code_enum<weft::errc> : std::true_type {};
