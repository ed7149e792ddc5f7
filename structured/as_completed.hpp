// as_completed.hpp: run several things at once and take each result as it comes
// (asyncio.as_completed).
//
//   for (auto& done : weft::as_completed(jobs)) use(done.index, done.value());
//
// Each callable runs in its own fiber of the calling fiber's scheduler (copied in,
// like weft::spawn's function), inside a task_group: none outlives the call, and
// cancelling the caller cancels them all. Deadlines come from a deadline scope
// around the call (runtime/scope.hpp): `weft::with_timeout(1s, [&] { return ...; })`
// cancels what is still running at the deadline and throws timeout_error. The same holds
// for as_completed_set::next().
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

#include <weft/runtime/detail/scope_state.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber.hpp>
#include <weft/runtime/scope.hpp>
#include <weft/structured/detail/call.hpp>
#include <weft/structured/outcome.hpp>
#include <weft/structured/task_group.hpp>
#include <weft/sync/channel.hpp>

namespace weft {

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
// and waits for them; failures that finished but were never taken go to the
// unhandled exception handler. Obtain one from as_completed().
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
  // Throws cancelled_error (or what an expired scope throws) while waiting, named
  // "weft::as_completed (waiting for the next result)".
  std::optional<completed<T>> next() {
    if (remaining_ == 0) return std::nullopt;
    auto got = [&] {
      try {
        return done_.recv();
      } catch (const error&) {
        detail::rethrow_naming("weft::as_completed (waiting for the next result)");
      }
    }();
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
  // undelivered_failures reports, once the group is gone (so that no child sends
  // any more), the failures of callables that finished but were never taken: a
  // loop left early must not lose them (gather's rule).
  struct undelivered_failures {
    channel<completed<T>>& done;
    ~undelivered_failures() {
      while (recv_result<completed<T>> c = done.try_recv()) detail::report_unless_cancellation(c->result.error());
    }
  };

  // Declared before the group: the children send into it until the group is gone.
  channel<completed<T>> done_{unbounded};
  std::optional<completed<T>> current_;
  std::size_t remaining_ = 0;
  undelivered_failures undelivered_{done_};
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
