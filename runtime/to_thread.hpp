// to_thread.hpp: run a blocking call on a thread pool while only the calling fiber
// waits (asyncio.to_thread, run_in_executor).
//
//   std::string page = weft::to_thread(read_whole_file, path);      // fn, args...
//   auto rows = weft::with_timeout(2s, [&] { return weft::to_thread([q] { return db_query(q); }); });
//
// to_thread(fn, args...) copies fn and args (decayed, as std::thread does), runs
// fn(args...) on weft's pool of threads for blocking calls, and suspends the calling
// fiber until it returns; it returns the result or rethrows the exception fn threw.
// The scheduler runs its other fibers meanwhile.
//
// Deadline and cancellation: a deadline scope around the call (with_timeout,
// deadline_scope) ends it with timeout_error, a cancellation with cancelled_error,
// at once. A call still queued then never starts; one already running cannot be
// interrupted (no thread can be, safely): it runs to its end on its own, and its
// result or exception is dropped. So fn must own what it uses: capture by value,
// never a reference to the waiting fiber's locals (fn may be move-only). A call
// made when the scope has expired already, or with a cancellation pending, throws
// before fn is queued: fn never runs.
//
// The pool: threads start on demand, up to a limit (default min(32, cores + 4),
// asyncio's); at the limit, calls queue in order instead of starting more threads.
// A thread idle for 10 s leaves. Pool threads start with every signal blocked.
//
// Thread rules: from fibers only (errc::not_in_fiber elsewhere). fn runs on a pool
// thread, not in a fiber: it must not call weft's fiber-only functions.
#pragma once

#include <cstddef>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/call_blocking.hpp>

namespace weft {

// The copies are handed to fn as rvalues, as std::thread hands them: fn may take a
// std::unique_ptr by value.
template <class F, class... Args>
  requires std::invocable<std::decay_t<F>, std::decay_t<Args>...>
auto to_thread(F&& fn, Args&&... args) -> std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...> {
  using result = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
  auto call = [fn = std::forward<F>(fn), args = std::make_tuple(std::forward<Args>(args)...)]() mutable -> result {
    return std::apply(std::move(fn), std::move(args));  // called once
  };
  auto value = detail::call_blocking(std::move(call), no_deadline, "weft::to_thread");
  if constexpr (!std::is_void_v<result>) return std::move(*value);
}

// set_to_thread_limit sets how many threads the pool may have (at least 1, else
// weft::error(errc::invalid_argument)); to_thread_limit reads it. Lowering it lets
// the threads above the limit finish their call and leave; raising it starts
// threads for the calls queued at the old limit. Any thread.
inline void set_to_thread_limit(std::size_t threads) { detail::set_blocking_pool_limit(threads); }
inline std::size_t to_thread_limit() noexcept { return detail::blocking_pool_limit(); }

}  // namespace weft
