// race.hpp: run several things at once and take the first: wait_any
// (asyncio.wait FIRST_COMPLETED, Promise.race), also over fiber handles,
// first_success (Promise.any) and when_any.
//
//   auto fastest = weft::wait_any([&] { return ask(dns1); }, [&] { return ask(dns2); });
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
#include <weft/structured/detail/call.hpp>
#include <weft/structured/outcome.hpp>
#include <weft/structured/task_group.hpp>
#include <weft/sync/channel.hpp>

namespace weft {

// any_result is which callable finished first (its index) and its result.
template <class T>
struct any_result {
  std::size_t index;
  T value;
};
template <>
struct any_result<void> {
  std::size_t index;
};

namespace detail {

// race runs every callable at once; the first to finish in a way `counts` accepts
// wins, the rest are cancelled and awaited. Returns the winner's index and outcome,
// or nullopt if none counted (then `lost` holds every failure, in completion order).
template <class T, class Range>
std::optional<std::pair<std::size_t, outcome<T>>> race(Range& fns, bool failures_win,
                                                       std::vector<std::exception_ptr>& lost) {
  std::optional<std::pair<std::size_t, outcome<T>>> winner;
  std::size_t children = 0;
  if constexpr (std::ranges::sized_range<Range>) children = static_cast<std::size_t>(std::ranges::size(fns));
  task_group group(group_call{failures_win ? "weft::wait_any" : "weft::first_success", children});
  std::size_t i = 0;
  for (auto&& f : fns) {  // && binds what a view yields by value, too
    group.spawn([&, i, fn = f]() mutable {
      outcome<T> result = call_for_outcome(fn);
      if (!result.has_value()) {
        bool cancelled = false;
        try {
          std::rethrow_exception(result.error());
        } catch (const cancelled_error&) {
          cancelled = true;
        } catch (...) {
        }
        // A loser we cancelled, or the caller's cancellation (either way the group
        // is cancelled by then): not a result. A cancelled_error of the callable's
        // own (it joined a fiber someone cancelled) is a failure like any other.
        if (cancelled && (winner || group.cancelled())) return;
        if (!failures_win || winner) {
          // Not a win: kept (first_success reports them all if nobody succeeds)
          // or, after the race is decided, handed to the unhandled handler.
          if (winner) {
            auto* self = scheduler::current()->running();
            report_unhandled(self->id_, self->name_, result.error());
          } else {
            lost.push_back(result.error());
          }
          return;
        }
      }
      if (winner) return;  // finished too, but second
      winner.emplace(i, std::move(result));
      group.cancel();
    });
    ++i;
  }
  if (i == 0) throw_empty(failures_win ? "weft::wait_any" : "weft::first_success");
  group.join();
  return winner;
}

template <class T>
any_result<T> to_any_result(std::pair<std::size_t, outcome<T>>&& w) {
  if constexpr (std::is_void_v<T>) {
    w.second.value();
    return {w.first};
  } else {
    return {w.first, std::move(w.second).value()};
  }
}

}  // namespace detail

// wait_any(f1, f2, ...) runs every callable at once and returns the index and
// result of the first to finish; the others are cancelled and awaited. If the first
// to finish failed, its exception is rethrown (Promise.race). The callables'
// results must share a common type. Over a range: wait_any(range).
template <class... F>
  requires(sizeof...(F) > 0 && (std::invocable<std::decay_t<F>&> && ...))
auto wait_any(F&&... fns) {
  using T = detail::common_result_t<F...>;
  std::vector<std::function<T()>> all{std::function<T()>(std::forward<F>(fns))...};
  std::vector<std::exception_ptr> lost;
  auto winner = detail::race<T>(all, true, lost);
  if (!winner) throw cancelled_error("weft::wait_any");  // every callable was cancelled from outside
  return detail::to_any_result<T>(std::move(*winner));
}
template <std::ranges::input_range R>
  requires std::invocable<detail::range_callable_t<R>&>
auto wait_any(R&& fns) {
  using T = std::invoke_result_t<detail::range_callable_t<R>&>;
  std::vector<std::exception_ptr> lost;
  auto winner = detail::race<T>(fns, true, lost);
  if (!winner) throw cancelled_error("weft::wait_any");
  return detail::to_any_result<T>(std::move(*winner));
}

// first_success(f1, ...) is the first callable to *succeed* (Promise.any): failures
// do not end the race; if every callable fails, an exception_group with all the
// failures (in the order they happened) is thrown.
template <class... F>
  requires(sizeof...(F) > 0 && (std::invocable<std::decay_t<F>&> && ...))
auto first_success(F&&... fns) {
  using T = detail::common_result_t<F...>;
  std::vector<std::function<T()>> all{std::function<T()>(std::forward<F>(fns))...};
  std::vector<std::exception_ptr> lost;
  auto winner = detail::race<T>(all, false, lost);
  if (!winner) throw exception_group(std::move(lost));
  return detail::to_any_result<T>(std::move(*winner));
}
template <std::ranges::input_range R>
  requires std::invocable<detail::range_callable_t<R>&>
auto first_success(R&& fns) {
  using T = std::invoke_result_t<detail::range_callable_t<R>&>;
  std::vector<std::exception_ptr> lost;
  auto winner = detail::race<T>(fns, false, lost);
  if (!winner) throw exception_group(std::move(lost));
  return detail::to_any_result<T>(std::move(*winner));
}

// wait_any(handles) is asyncio.wait(FIRST_COMPLETED) over fibers spawned earlier:
// it returns the index of the first that is done, and leaves every fiber as it is
// (join the winner, cancel the rest if you want them gone).
template <class T>
std::size_t wait_any(std::span<fiber<T>> handles) {
  if (handles.empty()) detail::throw_empty("weft::wait_any");
  for (std::size_t i = 0; i < handles.size(); ++i)
    if (handles[i].done()) return i;
  std::optional<std::size_t> first;
  task_group group(detail::group_call{"weft::wait_any", handles.size()});
  for (std::size_t i = 0; i < handles.size(); ++i) {
    group.spawn([&, i] {
      handles[i].wait();
      if (!first) {
        first = i;
        group.cancel();
      }
    });
  }
  group.join();
  if (!first) throw cancelled_error("weft::wait_any");
  return *first;
}
template <class T>
std::size_t wait_any(std::vector<fiber<T>>& handles) {
  return wait_any(std::span<fiber<T>>(handles));
}

// when_any is wait_any under the name C++ proposals and other libraries use.
template <class... A>
auto when_any(A&&... args) -> decltype(wait_any(std::forward<A>(args)...)) {
  return wait_any(std::forward<A>(args)...);
}

}  // namespace weft
