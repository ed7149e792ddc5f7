#include <weft/runtime/error.hpp>

#include <algorithm>
#include <memory>
#include <string>

namespace weft {
namespace {

class weft_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "weft"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::cancelled: return "fiber cancelled";
      case errc::timed_out: return "deadline passed";
      case errc::not_in_fiber: return "called outside a weft fiber";
      case errc::not_joinable: return "fiber handle is not joinable";
      case errc::would_deadlock: return "the call would deadlock";
      case errc::already_waited: return "another fiber is already waiting on this";
      case errc::scheduler_running: return "a weft scheduler already runs on this thread";
      case errc::scheduler_stopped: return "the scheduler has stopped";
      case errc::invalid_argument: return "invalid argument";
      case errc::channel_closed: return "channel is closed";
      case errc::not_owner: return "the calling fiber does not own this mutex";
      case errc::semaphore_overflow: return "semaphore released beyond its limit";
      case errc::socket_closed: return "socket is closed";
      case errc::end_of_stream: return "the peer closed the stream early";
      case errc::destroyed_while_waiting: return "destroyed while this fiber waited on it";
      case errc::build_mismatch: return "the program and the weft library were built with different sanitizers";
      case errc::queue_shut_down: return "queue is shut down";
    }
    return "unknown weft error";
  }

  // The codes that have a POSIX counterpart compare equal to it, so code written
  // against the standard conditions works unchanged: `e.code() ==
  // std::errc::invalid_argument` holds for a weft::error(errc::invalid_argument), and
  // `ec == std::errc::timed_out` for a deadline whether a socket call or weft saw it.
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<errc>(value)) {
      case errc::cancelled: return std::errc::operation_canceled;
      case errc::timed_out: return std::errc::timed_out;
      case errc::invalid_argument: return std::errc::invalid_argument;
      case errc::would_deadlock: return std::errc::resource_deadlock_would_occur;
      default: return {value, *this};
    }
  }
};

}  // namespace

const std::error_category& category() noexcept {
  static const weft_category instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

error::error(errc e) : error(e, std::string_view{}, std::string_view{}) {}
error::error(errc e, const char* call) : error(e, std::string_view(call), std::string_view{}) {}
error::error(errc e, const std::string& call) : error(e, std::string_view(call), std::string_view{}) {}
error::error(errc e, std::string_view call, std::string_view detail) : error(make_error_code(e), call, detail) {}

// The text is built in one allocation (count, then copy): a cancellation throws one
// of these from every blocking call it ends, and string appends allocated up to
// three times (weft/cancel_blocked).
error::error(std::error_code code, std::string_view call, std::string_view detail) : std::system_error(code) {
  // Without a detail, the code's message: system_error has it already (libstdc++'s
  // what() is code.message() for this constructor), no second virtual call and copy.
  const std::string_view tail = detail.empty() ? std::string_view(std::system_error::what()) : detail;
  constexpr std::string_view separator = ": ";
  const std::size_t length = call.size() + (call.empty() ? 0 : separator.size()) + tail.size();
  auto text = std::make_shared_for_overwrite<char[]>(length + 1);
  char* out = text.get();
  if (!call.empty()) {
    out = std::copy(call.begin(), call.end(), out);
    out = std::copy(separator.begin(), separator.end(), out);
  }
  out = std::copy(tail.begin(), tail.end(), out);
  *out = '\0';
  what_ = std::move(text);
}

const char* error::what() const noexcept { return what_.get(); }

cancelled_error::cancelled_error() : error(errc::cancelled) {}
cancelled_error::cancelled_error(const char* call)
    : error(errc::cancelled, std::string_view(call != nullptr ? call : ""), std::string_view{}) {}
cancelled_error::cancelled_error(std::string_view call, std::string_view why) : error(errc::cancelled, call, why) {}
timeout_error::timeout_error() : error(errc::timed_out) {}
timeout_error::timeout_error(const char* call)
    : error(errc::timed_out, std::string_view(call != nullptr ? call : ""), std::string_view{}) {}
timeout_error::timeout_error(std::string_view call, std::string_view why) : error(errc::timed_out, call, why) {}

}  // namespace weft
