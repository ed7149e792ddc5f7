// gather.hpp: run several things at once and combine them: gather (asyncio.gather,
// Promise.all), wait_any (asyncio.wait FIRST_COMPLETED, Promise.race),
// first_success (Promise.any) and as_completed.
//
//   auto [page, ads] = weft::gather([&] { return fetch(a); }, [&] { return fetch(b); });
//   auto fastest = weft::wait_any([&] { return ask(dns1); }, [&] { return ask(dns2); });
//   for (auto& done : weft::as_completed(jobs)) use(done.index, done.value());
//
// Each callable runs in its own fiber of the calling fiber's scheduler (copied in,
// like weft::spawn's function), inside a task_group: none outlives the call, and
// cancelling the caller cancels them all. The callable forms take any callables
// (and ranges of them); gather also takes fiber handles. Deadlines come from a
// deadline scope around the call (runtime/scope.hpp): `weft::with_timeout(1s, [&] {
// return weft::gather(...); })` cancels what is still running at the deadline and
// throws timeout_error; the same holds for as_completed_set::next().
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
#include <weft/sync/channel.hpp>
#include <weft/sync/outcome.hpp>
#include <weft/sync/task_group.hpp>

namespace weft {

// return_exceptions selects gather's collecting mode (asyncio's return_exceptions=True).
inline constexpr struct return_exceptions_t {
} return_exceptions;

namespace detail {

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

}  // namespace detail

// ---- gather ---------------------------------------------------------------------------

// gather(f1, f2, ...) runs every callable at once and returns their results in
// input order as a std::tuple (a void result is std::monostate). The first failure
// cancels the others, waits for them, and is rethrown; later failures go to the
// unhandled exception handler.
template <class... F>
  requires(sizeof...(F) > 0 && (std::invocable<std::decay_t<F>&> && ...))
auto gather(F&&... fns) {
  std::tuple<std::optional<detail::gather_result_t<F>>...> slots;
  task_group group;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (group.spawn([&slot = std::get<I>(slots), fn = std::forward<F>(fns)]() mutable {
       slot.emplace(detail::call_for_result(fn));
     }),
     ...);
  }(std::index_sequence_for<F...>{});
  group.join_first();
  // A child cancelled from outside (not a failure) left its slot empty: gather as a
  // whole was cancelled then, as in asyncio.
  if (!std::apply([](auto&... slot) { return (slot.has_value() && ...); }, slots)) throw cancelled_error();
  return std::apply([](auto&... slot) { return std::tuple{std::move(*slot)...}; }, slots);
}

// gather(return_exceptions, f1, ...) never throws for the callables: each result
// comes back as an outcome (a value, or the exception it threw).
template <class... F>
  requires(sizeof...(F) > 0 && (std::invocable<std::decay_t<F>&> && ...))
auto gather(return_exceptions_t, F&&... fns) {
  std::tuple<std::optional<outcome<std::invoke_result_t<std::decay_t<F>&>>>...> slots;
  task_group group;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (group.spawn([&slot = std::get<I>(slots), fn = std::forward<F>(fns)]() mutable {
       slot.emplace(detail::call_for_outcome(fn));
     }),
     ...);
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
  std::vector<std::optional<detail::gather_result_t<callable>>> slots;
  if constexpr (std::ranges::sized_range<R>) slots.reserve(std::ranges::size(fns));
  for (auto&& f : fns) slots.emplace_back(), (void)f;
  task_group group;
  std::size_t i = 0;
  for (auto&& f : fns) {
    group.spawn([&slots, i, fn = callable(f)]() mutable { slots[i].emplace(detail::call_for_result(fn)); });
    ++i;
  }
  group.join_first();
  std::vector<detail::gather_result_t<callable>> out;
  out.reserve(slots.size());
  for (auto& s : slots) {
    if (!s) throw cancelled_error();  // see the tuple form
    out.push_back(std::move(*s));
  }
  return out;
}

template <std::ranges::input_range R>
  requires std::invocable<detail::range_callable_t<R>&>
auto gather(return_exceptions_t, R&& fns) {
  using callable = detail::range_callable_t<R>;
  using result = outcome<std::invoke_result_t<callable&>>;
  std::vector<std::optional<result>> slots;
  for (auto&& f : fns) slots.emplace_back(), (void)f;
  task_group group;
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

// ---- wait_any / first_success --------------------------------------------------------

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
  task_group group;
  std::size_t i = 0;
  for (auto& f : fns) {
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
        if (cancelled) return;  // a loser we cancelled, or the caller's cancellation
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

template <class... F>
using common_result_t = std::common_type_t<std::invoke_result_t<std::decay_t<F>&>...>;

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
  if (!winner) throw cancelled_error();  // every callable was cancelled from outside
  return detail::to_any_result<T>(std::move(*winner));
}
template <std::ranges::input_range R>
  requires std::invocable<detail::range_callable_t<R>&>
auto wait_any(R&& fns) {
  using T = std::invoke_result_t<detail::range_callable_t<R>&>;
  std::vector<std::exception_ptr> lost;
  auto winner = detail::race<T>(fns, true, lost);
  if (!winner) throw cancelled_error();
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
  task_group group;
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
  if (!first) throw cancelled_error();
  return *first;
}
template <class T>
std::size_t wait_any(std::vector<fiber<T>>& handles) {
  return wait_any(std::span<fiber<T>>(handles));
}

// when_all and when_any are gather and wait_any under the names C++ proposals and
// other libraries use.
template <class... A>
auto when_all(A&&... args) -> decltype(gather(std::forward<A>(args)...)) {
  return gather(std::forward<A>(args)...);
}
template <class... A>
auto when_any(A&&... args) -> decltype(wait_any(std::forward<A>(args)...)) {
  return wait_any(std::forward<A>(args)...);
}

// ---- as_completed ---------------------------------------------------------------------

// completed is one finished callable: its index in the input and its outcome.
template <class T>
struct completed {
  std::size_t index;
  outcome<T> result;
  // value() is the result, or rethrows what the callable threw.
  decltype(auto) value() { return result.value(); }
};

// as_completed_set delivers results in the order the callables finish. Iterate it
// with range-for, or call next(). Destroying it cancels the callables still running
// and waits for them. Obtain one from as_completed().
template <class T>
class as_completed_set {
 public:
  template <class Range>
  explicit as_completed_set(Range& fns) {
    std::size_t i = 0;
    for (auto& f : fns) {
      group_.spawn([this, i, fn = f]() mutable {
        done_.try_send(completed<T>{i, detail::call_for_outcome(fn)});
      });
      ++i;
    }
    remaining_ = i;
  }
  as_completed_set(const as_completed_set&) = delete;
  as_completed_set& operator=(const as_completed_set&) = delete;

  // next waits for the next callable to finish; nullopt once all were delivered.
  // Throws cancelled_error (or timeout_error in an expired scope) while waiting.
  std::optional<completed<T>> next() {
    if (remaining_ == 0) return std::nullopt;
    auto got = done_.recv();
    --remaining_;
    return got;
  }
  std::size_t remaining() const noexcept { return remaining_; }

  class iterator {
   public:
    using value_type = completed<T>;
    using difference_type = std::ptrdiff_t;
    completed<T>& operator*() const { return *set_->current_; }
    iterator& operator++() {
      set_->current_ = set_->next();
      return *this;
    }
    void operator++(int) { ++*this; }
    bool operator==(std::default_sentinel_t) const { return !set_->current_; }

   private:
    friend class as_completed_set;
    explicit iterator(as_completed_set* s) : set_(s) {}
    as_completed_set* set_;
  };
  iterator begin() {
    current_ = next();
    return iterator(this);
  }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  // Declared before the group: the children send into it until the group is gone.
  channel<completed<T>> done_{unbounded};
  std::optional<completed<T>> current_;
  std::size_t remaining_ = 0;
  task_group group_;
};

// as_completed(f1, f2, ...) / as_completed(range) start every callable at once.
template <class... F>
  requires(sizeof...(F) > 0 && (std::invocable<std::decay_t<F>&> && ...))
auto as_completed(F&&... fns) {
  using T = detail::common_result_t<F...>;
  std::vector<std::function<T()>> all{std::function<T()>(std::forward<F>(fns))...};
  return as_completed_set<T>(all);
}
template <std::ranges::input_range R>
  requires std::invocable<detail::range_callable_t<R>&>
auto as_completed(R&& fns) {
  return as_completed_set<std::invoke_result_t<detail::range_callable_t<R>&>>(fns);
}

}  // namespace weft
