// call.hpp: calling a user's callable for gather, wait_any, first_success and
// as_completed: its result (a void result as std::monostate) or its outcome.
#pragma once

#include <exception>
#include <functional>
#include <ranges>
#include <type_traits>
#include <variant>

#include <boost/context/fiber.hpp>

#include <weft/runtime/error.hpp>
#include <weft/structured/outcome.hpp>

namespace weft::detail {

// A void result is std::monostate in a tuple or vector of results.
template <class F>
using gather_result_t = std::conditional_t<std::is_void_v<std::invoke_result_t<std::decay_t<F>&>>, std::monostate,
                                           std::invoke_result_t<std::decay_t<F>&>>;

template <class F>
gather_result_t<F> call_for_result(F& fn) {
  if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
    fn();
    return {};
  } else {
    return fn();
  }
}

template <class F>
outcome<std::invoke_result_t<F&>> call_for_outcome(F& fn) {
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      fn();
      return {};
    } else {
      return fn();
    }
  } catch (const boost::context::detail::forced_unwind&) {
    throw;
  } catch (...) {
    return std::current_exception();
  }
}

template <class R>
using range_callable_t = std::ranges::range_value_t<R>;

[[noreturn]] inline void throw_empty(const char* call) { throw error(errc::invalid_argument, call, "nothing to wait for"); }

// common_result_t: the type wait_any and as_completed deliver for several callables.
template <class... F>
using common_result_t = std::common_type_t<std::invoke_result_t<std::decay_t<F>&>...>;

}  // namespace weft::detail
