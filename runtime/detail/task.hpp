// task.hpp: the typed fiber record: the user's callable and where its result goes.
#pragma once

#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/context/detail/exception.hpp>

#include <weft/runtime/detail/fiber_record.hpp>

namespace weft::detail {

// task_state<T> holds the result of a fiber returning T until a join takes it.
template <class T>
struct task_state : fiber_record {
  std::optional<T> result_;
  T take_result() { return std::move(*result_); }
};

template <>
struct task_state<void> : fiber_record {
  void take_result() {}
};

// task<T, Fn> owns the callable; it is destroyed on the fiber, right after it
// returns, so whatever it captured is released before anyone joins.
template <class T, class Fn>
struct task final : task_state<T> {
  using result_type = T;
  explicit task(Fn&& fn) : fn_(std::move(fn)) {}

  void run_body() override {
    try {
      if constexpr (std::is_void_v<T>)
        std::invoke(*fn_);
      else
        this->result_.emplace(std::invoke(*fn_));
      fn_.reset();
    } catch (const boost::context::detail::forced_unwind&) {
      throw;  // boost unwinding a fiber's stack: never swallow it
    } catch (...) {
      this->error_ = std::current_exception();
      fn_.reset();
    }
  }

  std::optional<Fn> fn_;
};

// make_task packages fn(args...) like std::thread does: decayed copies, moved in.
template <class F, class... Args>
auto make_task(F&& f, Args&&... args) {
  static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                "weft::spawn, weft::run: the function cannot be called with copies of these arguments, "
                "passed as rvalues (as std::thread does); to share a variable, pass std::ref(x) or capture "
                "it. If an error inside the function's body comes before this one, fix that: this follows");
  using result = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
  auto call = [fn = std::forward<F>(f), ... as = std::forward<Args>(args)]() mutable -> result {
    return std::invoke(std::move(fn), std::move(as)...);
  };
  return new task<result, decltype(call)>(std::move(call));
}

}  // namespace weft::detail
