// gather.hpp: run several things at once and wait for all of them: gather
// (asyncio.gather, Promise.all), also over fiber handles, and when_all.
//
//   auto [page, ads] = weft::gather([&] { return fetch(a); }, [&] { return fetch(b); });
//
// Each callable runs in its own fiber of the calling fiber's scheduler (copied in,
// like weft::spawn's function), inside a task_group: none outlives the call, and
// cancelling the caller cancels them all. Deadlines come from a deadline scope
// around the call (runtime/scope.hpp): `weft::with_timeout(1s, [&] { return ...; })`
// cancels what is still running at the deadline and throws timeout_error.
#pragma once

#include <cstddef>
#include <functional>
#include <iterator>
#include <optional>
#include <ranges>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber.hpp>
#include <weft/runtime/scope.hpp>
#include <weft/runtime/unhandled_exception.hpp>
#include <weft/structured/detail/call.hpp>
#include <weft/structured/outcome.hpp>
#include <weft/structured/task_group.hpp>

namespace weft {

namespace detail {

// spawn_result and spawn_outcome spawn fn into `group`; the child puts fn's result
// (or its outcome: value or exception) into `slot`.
template <class Slot, class F>
void spawn_result(task_group& group, Slot& slot, F&& fn) {
  group.spawn([&slot, fn = std::forward<F>(fn)]() mutable { slot.emplace(call_for_result(fn)); });
}
template <class Slot, class F>
void spawn_outcome(task_group& group, Slot& slot, F&& fn) {
  group.spawn([&slot, fn = std::forward<F>(fn)]() mutable { slot.emplace(call_for_outcome(fn)); });
}

}  // namespace detail

// return_exceptions selects gather's collecting mode (asyncio's return_exceptions=True).
inline constexpr struct return_exceptions_t {
} return_exceptions;

// gather(f1, f2, ...) runs every callable at once and returns their results in
// input order as a std::tuple (a void result is std::monostate). The first failure
// cancels the others, waits for them, and is rethrown; later failures go to the
// unhandled exception handler.
template <class... F>
  requires(sizeof...(F) > 0 && (std::invocable<std::decay_t<F>&> && ...))
auto gather(F&&... fns) {
  std::tuple<std::optional<detail::gather_result_t<F>>...> slots;
  task_group group(detail::group_call{"weft::gather", sizeof...(F)});
  // One child per callable, each filling its slot. (Through a function, not a
  // capturing lambda inside the pack expansion: clang 14, Debian 12's, crashes on
  // init-captures expanded there.)
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (detail::spawn_result(group, std::get<I>(slots), std::forward<F>(fns)), ...);
  }(std::index_sequence_for<F...>{});
  group.join_first();
  // A child cancelled from outside (not a failure) left its slot empty: gather as a
  // whole was cancelled then, as in asyncio.
  if (!std::apply([](auto&... slot) { return (slot.has_value() && ...); }, slots))
    throw cancelled_error("weft::gather");
  return std::apply([](auto&... slot) { return std::tuple{std::move(*slot)...}; }, slots);
}

// gather(return_exceptions, f1, ...) never throws for the callables: each result
// comes back as an outcome (a value, or the exception it threw).
template <class... F>
  requires(sizeof...(F) > 0 && (std::invocable<std::decay_t<F>&> && ...))
auto gather(return_exceptions_t, F&&... fns) {
  std::tuple<std::optional<outcome<std::invoke_result_t<std::decay_t<F>&>>>...> slots;
  task_group group(detail::group_call{"weft::gather", sizeof...(F)});
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (detail::spawn_outcome(group, std::get<I>(slots), std::forward<F>(fns)), ...);  // (see above)
  }(std::index_sequence_for<F...>{});
  group.join();
  return std::apply([](auto&... slot) { return std::tuple{std::move(*slot)...}; }, slots);
}

// gather(range) and gather(return_exceptions, range): the same over a range of
// callables, results in a std::vector in the range's order.
template <std::ranges::input_range R>
  requires std::invocable<detail::range_callable_t<R>&>
auto gather(R&& fns) {
  using callable = detail::range_callable_t<R>;
  if constexpr (!std::ranges::forward_range<R>) {
    // A single-pass range (an istream view, say) can be walked once: keep its
    // callables first (below, the range is walked twice).
    std::vector<callable> kept;
    for (auto&& f : fns) kept.emplace_back(std::forward<decltype(f)>(f));
    return gather(kept);
  } else {
    std::vector<std::optional<detail::gather_result_t<callable>>> slots;
    if constexpr (std::ranges::sized_range<R>) slots.reserve(std::ranges::size(fns));
    for (auto&& f : fns) slots.emplace_back(), (void)f;
    task_group group(detail::group_call{"weft::gather", slots.size()});
    std::size_t i = 0;
    for (auto&& f : fns) {
      group.spawn([&slots, i, fn = callable(f)]() mutable { slots[i].emplace(detail::call_for_result(fn)); });
      ++i;
    }
    group.join_first();
    std::vector<detail::gather_result_t<callable>> out;
    out.reserve(slots.size());
    for (auto& s : slots) {
      if (!s) throw cancelled_error("weft::gather");  // see the tuple form
      out.push_back(std::move(*s));
    }
    return out;
  }
}

template <std::ranges::input_range R>
  requires std::invocable<detail::range_callable_t<R>&>
auto gather(return_exceptions_t, R&& fns) {
  using callable = detail::range_callable_t<R>;
  using result = outcome<std::invoke_result_t<callable&>>;
  if constexpr (!std::ranges::forward_range<R>) {
    std::vector<callable> kept;  // walked once (see above)
    for (auto&& f : fns) kept.emplace_back(std::forward<decltype(f)>(f));
    return gather(return_exceptions, kept);
  } else {
    std::vector<std::optional<result>> slots;
    for (auto&& f : fns) slots.emplace_back(), (void)f;
    task_group group(detail::group_call{"weft::gather", slots.size()});
    std::size_t i = 0;
    for (auto&& f : fns) {
      group.spawn([&slots, i, fn = callable(f)]() mutable { slots[i].emplace(detail::call_for_outcome(fn)); });
      ++i;
    }
    group.join();
    std::vector<result> out;
    out.reserve(slots.size());
    for (auto& s : slots) out.push_back(std::move(*s));
    return out;
  }
}

// gather(handles...) joins fibers spawned earlier and returns their results in
// order. The first failure cancels the other fibers, waits for them, and is
// rethrown; cancelling the caller cancels them all. The handles are joined (empty)
// afterwards, except those of fibers cancelled because of a failure, which stay
// joinable (joining them throws cancelled_error).
template <class... T>
  requires(sizeof...(T) > 0)
auto gather(fiber<T>&... handles) {
  auto join_one = [](auto& handle) {
    return [&handle]() {
      try {
        if constexpr (std::is_void_v<decltype(handle.join())>) {
          handle.join();
          return std::monostate{};
        } else {
          return handle.join();
        }
      } catch (const cancelled_error&) {
        // We were cancelled (a sibling failed, or our caller was): so is the fiber
        // we stand for, and it must end before the group does.
        if (handle.joinable() && !handle.done()) {
          handle.cancel();
          shield([&] { handle.wait(); });
        }
        throw;
      }
    };
  };
  return gather(join_one(handles)...);
}

// when_all is gather under the name C++ proposals and other libraries use.
template <class... A>
auto when_all(A&&... args) -> decltype(gather(std::forward<A>(args)...)) {
  return gather(std::forward<A>(args)...);
}

}  // namespace weft
