#include "runtime/error.hpp"

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
      case errc::not_in_fiber: return "call requires a running weft fiber";
      case errc::not_joinable: return "fiber handle is not joinable";
      case errc::would_deadlock: return "a fiber cannot join itself";
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
    }
    return "unknown weft error";
  }
};

}  // namespace

const std::error_category& category() noexcept {
  static const weft_category instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), category()}; }

error::error(errc e) : std::system_error(make_error_code(e)) {}
error::error(errc e, const char* what) : std::system_error(make_error_code(e), what) {}
error::error(errc e, const std::string& what) : std::system_error(make_error_code(e), what) {}

cancelled_error::cancelled_error() : error(errc::cancelled) {}
timeout_error::timeout_error() : error(errc::timed_out) {}

}  // namespace weft
