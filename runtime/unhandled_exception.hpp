// unhandled_exception.hpp: what happens to an exception nobody will ever join.
//
// An exception that escapes a detached fiber (or one whose handle was dropped) has
// nowhere to go. weft never loses it silently: it is handed to the unhandled
// exception handler, which by default prints, like asyncio's "Task exception was
// never retrieved":
//
//   weft: exception in fiber 7 "worker" was never retrieved: <what()>
//
// A fiber that ends by cancellation (cancelled_error) is not reported.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <string_view>

namespace weft {

using fiber_id = std::uint64_t;

// unhandled_exception_handler receives the fiber's id, its name and the exception.
// It runs on the scheduler's thread and must not block.
using unhandled_exception_handler =
    std::function<void(fiber_id id, std::string_view name, std::exception_ptr error)>;

// set_unhandled_exception_handler installs `handler` for every scheduler of the
// process and returns the previous one; an empty handler restores the default.
unhandled_exception_handler set_unhandled_exception_handler(unhandled_exception_handler handler);

// describe_exception returns what() of a std::exception, or a generic text.
std::string describe_exception(std::exception_ptr error);

}  // namespace weft

namespace weft::detail {
struct fiber_record;
// report_unretrieved hands rec's exception to the handler unless it is a
// cancellation; call it once, when the exception becomes unreachable.
void report_unretrieved(const fiber_record& rec) noexcept;
// report_unhandled hands `error` to the handler unless it is a cancellation (for
// exceptions that leave no fiber handle behind, such as a task group's extras).
void report_unhandled(fiber_id id, std::string_view name, std::exception_ptr error) noexcept;
}  // namespace weft::detail
