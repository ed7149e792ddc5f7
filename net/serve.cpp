#include <weft/net/serve.hpp>

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <string>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/scope.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/unhandled_exception.hpp>

namespace weft::net {

void connection_control::set_idle(bool idle) noexcept {
  idle_ = idle;
  // Idle during the shutdown: it would have been cancelled at once had it been
  // idle when the shutdown began; its next blocking call is.
  if (idle && draining_)
    if (weft::detail::scheduler* s = weft::detail::this_fiber_scheduler) s->running()->request_cancel();
}

}  // namespace weft::net

namespace weft::net::detail {

namespace {

std::ptrdiff_t checked_max_connections(std::size_t max_connections, const char* call) {
  weft::detail::scheduler::require_fiber(call);
  if (max_connections == 0 || max_connections > static_cast<std::size_t>(PTRDIFF_MAX))
    throw error(errc::invalid_argument, call,
                "max_connections is " + std::to_string(max_connections) + " (at least 1: it caps open connections)");
  return static_cast<std::ptrdiff_t>(max_connections);
}

}  // namespace

connection_set::connection_set(const serve_options& options, const char* call)
    : options_(options), free_slots_(checked_max_connections(options.max_connections, call)) {}

namespace {

// client_waiting: a connection waits in the listener's backlog (it polls readable).
bool client_waiting(const socket_base& listener) noexcept {
  pollfd p{listener.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

}  // namespace

bool connection_set::wait_for_slot(const socket_base& listener) {
  if (free_slots_.try_acquire()) return true;
  // At the cap. Once a client waits in the backlog, the oldest idle connection
  // makes room for it (its fiber ends soon and gives its slot back). Nothing wakes
  // this wait when a client arrives or the user closes the listener (the listener
  // is not ours to watch): look every 50 ms, which costs nothing below the cap.
  bool making_room = false;
  for (;;) {
    if (!listener.is_open()) return false;
    if (!making_room && client_waiting(listener)) making_room = cancel_oldest_idle();
    if (free_slots_.acquire_for(std::chrono::milliseconds(50))) return true;
  }
}

bool connection_set::cancel_oldest_idle() noexcept {
  for (open_connection& c : open_) {
    if (!c.control.idle_ || c.control.draining_) continue;
    c.control.draining_ = true;  // cancelled once; it is on its way out
    c.handle.cancel();
    return true;
  }
  return false;
}

void connection_set::cancel(bool idle_only) noexcept {
  for (open_connection& c : open_) {
    c.control.draining_ = true;
    if (!idle_only || c.control.idle_) c.handle.cancel();
  }
}

void connection_set::drain() {
  cancel(/*idle_only=*/true);
  if (!active_.wait_for(options_.shutdown_grace)) cancel(/*idle_only=*/false);
  active_.wait();
}

void connection_set::abort() noexcept {
  // Shielded: this fiber is being cancelled, and still must wait for every
  // connection, whose fibers use this object.
  shield_scope shielded;
  cancel(/*idle_only=*/false);
  try {
    active_.wait();
  } catch (...) {
    // a shielded wait is not cancelled; nothing else can end it early
  }
}

void connection_set::finished(std::list<open_connection>::iterator entry) noexcept {
  open_.erase(entry);  // detaches the connection's own handle
  free_slots_.release();
  active_.done();
}

namespace {

// peer_went_away: the client reset or abandoned the connection, or stopped
// talking past a deadline: its doing, not the server's, and no news to report.
bool peer_went_away(std::exception_ptr error) noexcept {
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    const std::error_code c = e.code();
    return c == std::errc::connection_reset || c == std::errc::broken_pipe || c == std::errc::connection_aborted ||
           c == errc::end_of_stream || c == errc::timed_out;
  } catch (...) {
    return false;
  }
}

}  // namespace

void connection_set::report(std::exception_ptr error) noexcept {
  try {
    if (options_.on_error) {
      options_.on_error(error);
      return;
    }
    if (peer_went_away(error)) return;
  } catch (...) {
    error = std::current_exception();  // on_error itself threw: that is reported instead
  }
  weft::detail::report_unhandled(this_fiber::id(), this_fiber::name(), error);
}

}  // namespace weft::net::detail
