#include <weft/net/serve.hpp>

#include <cstdint>
#include <string>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/scope.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/unhandled_exception.hpp>

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

void connection_set::report(std::exception_ptr error) noexcept {
  try {
    if (options_.on_error) {
      options_.on_error(error);
      return;
    }
  } catch (...) {
    error = std::current_exception();  // on_error itself threw: that is reported instead
  }
  weft::detail::report_unhandled(this_fiber::id(), this_fiber::name(), error);
}

}  // namespace weft::net::detail
