// scope.hpp: deadlines that apply to a whole block of code, and shields against
// cancellation (asyncio.timeout / wait_for / shield, Trio's cancel scopes).
//
//   auto page = weft::with_timeout(2s, [&] { return fetch(conn); });  // timeout_error after 2 s
//
//   {
//     weft::deadline_scope scope(500ms);   // every blocking call in here ends by then
//     a.recv(); b.send(x); sleep_for(1s);  // ... with weft::timeout_error
//   }
//
//   weft::shield([&] { journal.flush(); });   // a cancellation waits until it ends
//
// A deadline scope gives every blocking call of this fiber inside it (sleep,
// channel, lock, socket, join, select, ...) the scope's deadline, or the call's own
// if that comes first. When the scope's deadline passes, the call it is in, and every
// later one inside the scope, throws, so the code unwinds through its destructors
// (closing sockets, unlocking, releasing permits), and the code outside gets
// weft::timeout_error, told apart from a cancellation (cancelled_error). What the
// code inside sees differs by form:
//   - with_timeout / with_deadline / wait_for (the form to prefer): a cancelled_error
//     (asyncio.timeout(), Trio's fail_after), which with_timeout turns into
//     timeout_error as it leaves. So a `catch (timeout_error&)` inside it, a retry
//     loop's around each attempt, catches only the attempts' own timeouts, never the
//     overall budget's: that one always ends the loop.
//   - a deadline_scope object has no exit that could do that: the call itself throws
//     timeout_error.
// Nested, the outermost expired scope decides. A call's
// own `_for`/`_until` deadline still reports as that call documents (false, a
// status). Scopes nest; the earliest deadline rules. Scopes belong to one fiber and
// must end in the order they began (they are RAII objects, so they do). A deadline
// too far to represent (hours::max(), time_point::max()) never expires; one already
// past expires at the first blocking call.
//
// Cleanup may block. Once a blocking call has thrown timeout_error (or
// cancelled_error), the scopes that had expired at that moment no longer interrupt
// the fiber's blocking calls while that exception is being dealt with: while it
// unwinds through destructors, while a catch block handles it, until it is rethrown
// out of them (`catch (...) { flush(); throw; }`). And while any exception unwinds
// (in a destructor, where a throw would call std::terminate), every scope opened
// before that unwinding began stays quiet, whatever is thrown: weft's exception or
// the program's own (a catch block that turned the timeout into another
// exception), and a new cancel() waits (stays pending) until the unwinding is over.
// So a destructor that sleeps, sends a goodbye or waits for an event runs to
// completion or to its own deadline (asyncio's `finally: await ...`); then the
// original exception goes on. What still interrupts cleanup: a scope it opens itself
// (`with_timeout(100ms, [&] { conn.write_all(bye); })`, the way to bound it), a
// call's own deadline, in a catch block a new cancel(), and, in a catch block or
// after it, an outer scope that expires meanwhile (a retry loop's overall budget
// ends its back-off sleep, as asyncio's outer timeout does).
//
// Swallowed expiries do not make a scope toothless. When the exception is gone
// (caught and not rethrown), an expired scope fails the next call again. An expiry
// kept in an exception_ptr (a retry loop's last error) quiets nothing outside the
// catch block that took it. And the first expiry a scope delivers keeps catch
// blocks quiet, the next ones do not: a loop that catches everything
// (`catch (const std::exception&)`: cancelled_error is one) and blocks in its
// handler still ends at the scope's deadline. A cancel() is not lost to the
// expiry of a scope that was open when it came: if such a scope expires while a
// catch block (or a destructor) cleans up after the cancellation, the rest of the
// cleanup runs as it would have (the cancellation does not interrupt its blocking
// calls again), that with_timeout lets the cancellation out as
// cancelled_error, not timeout_error (asyncio.timeout does the same), and if the
// cleanup swallows the expiry instead, the first blocking call after the cleanup
// takes the cancellation. A with_timeout the cleanup opens itself (bounding a
// flush) reports its own expiry as timeout_error and puts nothing back, also as
// asyncio.timeout does: whether the cancellation goes on is the handler's choice
// (`throw;` after the cleanup; a deferred cancellation is dropped when `throw;`
// lets it out of its scope, while a copy thrown or a swallowed one comes back once,
// at the next blocking call, and is not deferred again). The rule is per fiber: other fibers' scopes are
// not affected.
//
// A destructor that blocks inside a catch block (not during unwinding) is not
// kept quiet: an outer scope expiring meanwhile, a repeat of a scope's expiry that
// was swallowed, and a new cancel() reach its blocking calls as exceptions there,
// as they reach the catch block itself. A destructor must not let them out (that
// is std::terminate): catch `const weft::error&` around its blocking calls, not
// only timeout_error (inside a with_timeout, the scope's expiry is a
// cancelled_error).
//
// Blocking in cleanup is safe for the C++ runtime's exception state too (for any
// exception, not only weft's): each fiber has its own stack of exceptions being
// handled and its own uncaught count. While a fiber blocks in a catch block or in a
// destructor during unwinding, std::current_exception(), `throw;` and
// std::uncaught_exceptions() in it keep naming its own exception, other fibers of
// the thread throw, catch and leave their catch blocks without touching it, and the
// fibers may leave their catch blocks in any order. A new fiber starts with none.
#pragma once

#include <chrono>
#include <exception>
#include <type_traits>
#include <utility>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/this_fiber.hpp>
#include <weft/runtime/error.hpp>

namespace weft {

namespace detail {
class timeout_block;
}

class deadline_scope {
 public:
  // Throws errc::not_in_fiber outside a fiber.
  explicit deadline_scope(time_point deadline) : deadline_scope(deadline, "weft::deadline_scope", nullptr) {}
  template <class Rep, class Period>
  explicit deadline_scope(std::chrono::duration<Rep, Period> d) : deadline_scope(deadline_after(d)) {}
  ~deadline_scope() {
    if (self_->cancel_deferred() && std::uncaught_exceptions() > link_.uncaught_at_open) [[unlikely]]
      detail::scope_left_by_exception(self_, link_);
    self_->innermost_scope_ = link_.outer;
    if (link_.outer == nullptr && self_->cleanup_) [[unlikely]]
      self_->cleanup_->masks.reset();  // nothing left to mask
    self_->set_scope_deadline(saved_);
  }
  deadline_scope(const deadline_scope&) = delete;
  deadline_scope& operator=(const deadline_scope&) = delete;

  time_point deadline() const noexcept { return link_.deadline; }
  // expired: this scope's deadline has passed.
  bool expired() const { return clock::now() >= link_.deadline; }

 private:
  friend class detail::timeout_block;
  // converting_call: see scope_link (null for this object form).
  deadline_scope(time_point deadline, const char* call, const char* converting_call)
      : self_(detail::scheduler::require_fiber(call).running()),
        saved_(self_->scope_deadline_),
        link_{deadline, self_->innermost_scope_, self_->scopes_opened_++, std::uncaught_exceptions(),
              converting_call, false} {
    self_->innermost_scope_ = &link_;
    if (deadline < saved_) self_->set_scope_deadline(deadline);
  }

  detail::fiber_record* self_;
  time_point saved_;  // the enclosing scopes' deadline, restored at the end
  detail::scope_link link_;  // this scope in the fiber's stack of scopes
};

namespace detail {
// timeout_block: with_deadline's scope, whose expiry reaches the code inside as a
// scope_cancelled (scope_state.hpp) and leaves it as timeout_error (leave).
class timeout_block {
 public:
  // `call` (a static string) names the function the user called, for misuse errors.
  timeout_block(time_point deadline, const char* call) : scope_(deadline, call, call) {}
  // leave: `e` unwinds out of this block; throws timeout_error if `e` is this
  // block's own expiry (cancelled_error if a cancel() came meanwhile), rethrows `e`
  // otherwise.
  [[noreturn]] void leave(const scope_cancelled& e) const {
    if (e.from(scope_.self_->id_, scope_.link_.number)) e.throw_leaving();
    throw;
  }

 private:
  deadline_scope scope_;
};
}  // namespace detail

// with_deadline(t, fn) runs fn() with deadline t for every blocking call in it and
// returns fn's result; with_timeout(d, fn) and wait_for(d, fn) (asyncio's name) do
// it for a duration of any type (weft::deadline_after: hours::max() never expires,
// zero or negative has expired already). When the deadline passes, the blocking call
// fn is in, and every later one in it, throws cancelled_error (as in asyncio.timeout()
// and Trio's fail_after: the code inside sees a cancellation, so that its own
// `catch (timeout_error&)`, a retry loop's around each attempt, cannot swallow an
// outer budget's expiry); as it leaves fn, with_deadline throws timeout_error
// instead, naming the call that was waiting. Throws what fn throws otherwise;
// errc::not_in_fiber outside a fiber. Nested, the outermost expired one wins: an
// inner with_timeout lets an outer one's expiry pass as the cancellation it is.
namespace detail {
template <class F>
decltype(auto) run_with_deadline(time_point deadline, F&& fn, const char* call) {
  timeout_block block(deadline, call);
  try {
    return std::forward<F>(fn)();
  } catch (const scope_cancelled& e) {
    block.leave(e);
  }
}
}  // namespace detail

template <class F>
decltype(auto) with_deadline(time_point deadline, F&& fn) {
  return detail::run_with_deadline(deadline, std::forward<F>(fn), "weft::with_deadline");
}
template <class Rep, class Period, class F>
decltype(auto) with_timeout(std::chrono::duration<Rep, Period> d, F&& fn) {
  return detail::run_with_deadline(deadline_after(d), std::forward<F>(fn), "weft::with_timeout");
}
template <class Rep, class Period, class F>
decltype(auto) wait_for(std::chrono::duration<Rep, Period> d, F&& fn) {
  return detail::run_with_deadline(deadline_after(d), std::forward<F>(fn), "weft::wait_for");
}

// shield_scope: while it lives, cancelling this fiber does not interrupt its
// blocking calls (the request stays pending) and the enclosing deadline scopes do
// not apply (scopes opened inside still do).
class shield_scope {
 public:
  // Throws errc::not_in_fiber outside a fiber.
  shield_scope() : guard_(detail::scheduler::require_fiber("weft::shield").running()) {}

 private:
  detail::shield_guard guard_;
};

// this_fiber::check_cancelled and cancellation_requested: runtime/this_fiber.hpp.

// shield(fn) runs fn() so that cancellation cannot interrupt it (asyncio.shield).
// A cancellation that arrives meanwhile is delivered when fn returns: shield then
// throws cancelled_error instead of returning (fn's result is dropped, its work is
// done); likewise what an enclosing scope's expiry throws (above), if one expired
// meanwhile.
// If fn throws, its exception propagates and the cancellation stays pending.
template <class F>
decltype(auto) shield(F&& fn) {
  using result = std::invoke_result_t<F>;
  if constexpr (std::is_void_v<result>) {
    {
      shield_scope guard;
      std::forward<F>(fn)();
    }
    detail::check_cancelled_as("weft::shield");
  } else {
    auto value = [&] {
      shield_scope guard;
      return std::forward<F>(fn)();
    }();
    detail::check_cancelled_as("weft::shield");
    return value;
  }
}

}  // namespace weft
