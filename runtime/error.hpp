// error.hpp: the error codes and exceptions every part of weft reports with, and
// the one convention for deadlines and errors that every header follows.
//
// Deadlines. Every blocking call has one.
//   - How it is given: calls that mirror a std type (sync/'s primitives,
//     fiber::wait, sleep, fd_wait, signal_set) keep std's names, an `_for(duration)`
//     and an `_until(time_point)` form, so std::unique_lock and std-style code work
//     unchanged; net/'s calls take a trailing `deadline` (net/deadline.hpp), a
//     duration or a time point. Any std::chrono duration works: one too long to
//     represent (hours::max()) means no deadline; zero or negative has passed already.
//   - How it is reported depends on what the call returns. A call whose result is
//     whether it happened (a wait, acquire, lock, recv, select) returns it: false,
//     channel_status::timeout, std::cv_status::timeout or std::nullopt, as
//     std::timed_mutex and Boost.Fiber do. A call that produces something (net/'s
//     reads, writes, connect, accept, resolve; a deadline scope around any code)
//     fails with timeout_error, code errc::timed_out.
// Errors.
//   - Cancellation is always the exception cancelled_error: it must unwind the fiber.
//   - Misuse (outside a fiber, a second join, a negative size) always throws
//     weft::error with a weft::errc below, whose what() names the call.
//   - Failures from the OS are std::system_error with the errno in
//     std::generic_category (compare with std::errc), everywhere in weft.
//   - net/'s calls also have a `std::error_code&` overload (asio's pattern): it sets
//     the code (errc::timed_out at the deadline) instead of throwing and returns what
//     was done until then; cancellation and misuse still throw.
#pragma once

#include <weft/runtime/detail/require_cxx20.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace weft {

// errc lists weft's own error conditions (errno values stay in std::generic_category).
// Each code's message (`category().message`, `std::error_code::message`) states the
// condition in general terms; a thrown weft::error adds the call it came from.
enum class errc {
  cancelled = 1,      // the fiber was cancelled while (or before) it blocked
  timed_out,          // a deadline passed
  not_in_fiber,       // a blocking call or fiber-only call made outside a fiber
  not_joinable,       // join/wait/detach on an empty, joined or detached handle
  would_deadlock,     // the call could never return: a fiber joining itself, locking a
                      //   mutex it holds, or run() finding every fiber blocked for good
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
  build_mismatch,     // the program and the weft library were built with different
                      //   sanitizers (link weft-asan / weft-tsan, or plain weft)
  queue_shut_down,    // a put on a shut-down queue, or a get once it is also empty
};

// category() is the std::error_category of weft::errc ("weft"). Codes with a POSIX
// counterpart compare equal to its std::errc condition: cancelled ==
// std::errc::operation_canceled, timed_out == std::errc::timed_out, invalid_argument ==
// std::errc::invalid_argument, would_deadlock == std::errc::resource_deadlock_would_occur.
// Bad sizes and counts throw weft::error(errc::invalid_argument) (a std::system_error,
// not a std::invalid_argument), so that one `catch (const weft::error&)` sees every
// misuse of weft; test them with `e.code() == std::errc::invalid_argument`.
const std::error_category& category() noexcept;

std::error_code make_error_code(errc e) noexcept;

// error is the base of every exception weft throws. Its what() names the call the
// user made, once, then what went wrong, without repeating itself:
//   error(e)                 "<condition>"              (the code's message)
//   error(e, call)           "<call>: <condition>"
//   error(e, call, detail)   "<call>: <detail>"         (detail replaces the condition)
// e.g. error(errc::not_in_fiber, "weft::this_fiber::sleep_for") says
// "weft::this_fiber::sleep_for: called outside a weft fiber". code() is always `e`.
class error : public std::system_error {
 public:
  explicit error(errc e);
  error(errc e, const char* call);
  error(errc e, const std::string& call);
  error(errc e, std::string_view call, std::string_view detail);
  // The same for a code of another weft category (weft::http::error): what() is
  // "<call>: <detail>", or "<call>: <code's message>" without a detail.
  error(std::error_code code, std::string_view call, std::string_view detail);
  const char* what() const noexcept override;

 private:
  // Shared, so that copying the exception (as throw and exception_ptr may) cannot throw.
  std::shared_ptr<const char[]> what_;
};

// cancelled_error ends a blocking call of a fiber that was cancelled. Catch it only
// to clean up, then rethrow: swallowing it makes the fiber ignore its cancellation.
// what() names the call that was waiting: "weft::channel::recv: fiber cancelled".
class cancelled_error : public error {
 public:
  cancelled_error();
  explicit cancelled_error(const char* call);  // null: no call named


 protected:
  // what() "<call>: <why>" (empty why: the code's message), for a call name that is
  // not a static string, or a cancellation with a cause of its own (a deadline).
  cancelled_error(std::string_view call, std::string_view why);
};

// timeout_error ends a call that produces something (net/ I/O, a deadline scope)
// when its deadline passes; waits report their deadline in their result instead
// (see the convention at the top of this file).
// what() names the call, when known: "weft::net::stream_socket::read_some: deadline passed".
class timeout_error : public error {
 public:
  timeout_error();
  explicit timeout_error(const char* call);  // null: no call named

 protected:
  timeout_error(std::string_view call, std::string_view why);  // as cancelled_error's
};

}  // namespace weft

template <>
struct std::is_error_code_enum<weft::errc> : std::true_type {};
