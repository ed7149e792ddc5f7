// scope_state.hpp: a fiber's stack of deadline scopes, and what keeps its cleanup
// from being interrupted by the expiry or cancellation it is cleaning up after.
//
// The rule (runtime/scope.hpp says it for users): when a blocking call throws
// timeout_error (a deadline scope expired) or cancelled_error, deadline scopes the
// fiber is in at that moment (which: below) stop interrupting its blocking calls
// while that exception object is alive *and* the fiber is in cleanup: unwinding, or
// inside a catch block (the C++ runtime's stack of exceptions being handled is not
// empty; it is per fiber, eh_state.hpp). Scopes opened after it (a with_timeout
// inside a destructor) still interrupt, a call's own deadline still ends the call,
// and a new cancel() still counts in a catch block (while unwinding it waits: see
// fiber_record::takes_cancel_now). Once the exception is gone (caught and not
// rethrown), an expired scope fails the next call again.
//
// Why the exception's lifetime and not std::uncaught_exceptions() alone: a catch
// block is not unwinding (uncaught_exceptions() is back to 0 inside it, and
// `catch (...) { flush(); throw; }` is cleanup too). Why also "in cleanup": an
// exception kept in an exception_ptr after its catch block (a retry loop's last
// error) must not keep the scope quiet for good (breaker, 2026-12-07: the next
// attempt's wait never ended).
//
// Which scopes: those whose deadline had passed when the exception was thrown (the
// expiry being cleaned up after, or one a cancellation came before). So an outer
// scope that expires later still interrupts a catch block (asyncio's outer timeout
// fires there too); until 2026-12-06 every scope the fiber was in stayed quiet.
// Only the first expiry a scope delivers is masked (scope_link::expiry_delivered):
// a repeat means the last one was swallowed, and a handler that swallows every
// expiry and blocks (`catch (const std::exception&) { back_off(); }`) must not
// keep the loop alive past the deadline.
//
// A cancellation is not lost to an expiry of a scope that was open when it came:
// such an expiry thrown while the cancellation is being handled puts it back,
// deferred until the cleanup is over (fiber_record::defer_cancel), and that scope's
// with_timeout lets it out as cancelled_error. A scope opened during the cleanup
// expires as a timeout_error and puts nothing back (asyncio.timeout's rule).
//
// And while the fiber unwinds (a destructor run by a throw, where another throw
// would call std::terminate), every scope opened before that unwinding began stays
// quiet, whatever is being thrown: weft's exception or the program's own (a catch
// block that turned a timeout_error into another exception, or any exception thrown
// after a scope expired). A scope records std::uncaught_exceptions() when it opens;
// one that recorded fewer than there are now was opened before the unwinding.
// Scopes a destructor opens itself record the same count, and still interrupt.
//
// How: every scope is a scope_link on the fiber's own stack, numbered in the order
// they were opened. A delivery throws an exception that holds a token (a
// shared_ptr, so copies and exception_ptrs share it) and pushes an expiry_mask
// with a weak reference to it, covering the scopes numbered below the next number
// (those with a deadline past at the delivery, or all of them while unwinding).
// scope_deadline_ stays the earliest deadline of all scopes (masks do not change it),
// so a park looks at masks only when that deadline has passed, i.e. only in cleanup.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/error.hpp>

namespace weft::detail {

struct fiber_record;

// scope_link: one deadline_scope in its fiber's stack of scopes, innermost first.
struct scope_link {
  time_point deadline;
  scope_link* outer;
  std::uint64_t number;  // fiber_record::scopes_opened_ when it was opened
  int uncaught_at_open;  // std::uncaught_exceptions() then: fewer than now means
                         // it was opened before the unwinding in progress began
  const char* converting_call;  // a with_timeout's (wait_for's, with_deadline's)
                                // scope: that function's name; its expiry is a
                                // scope_cancelled inside it, a timeout_error as it
                                // leaves. Null for a deadline_scope object.
  bool expiry_delivered = false;  // its expiry has been thrown once (a repeat is not masked)
};

// rethrow_naming, in a catch block, throws the cancelled_error or timeout_error being
// handled again, naming `call` instead: for a library call (a generator's loop, an
// HTTP request) whose inner blocking call was waiting when the cancellation or the
// expiry came, so that the message names the call the user made. The new exception
// keeps what the old one carried (its mask, its scope). Any other exception,
// including the program's own types derived from those two, is rethrown unchanged.
[[noreturn]] void rethrow_naming(std::string_view call);

// scope_cancelled is what the blocking calls inside a with_deadline / with_timeout /
// wait_for throw once its deadline has passed: a cancelled_error, as asyncio's
// CancelledError inside asyncio.timeout(), so that the code inside cannot mistake it
// for a timeout of its own (a retry loop's `catch (timeout_error&)` around each
// attempt lets the overall budget's expiry through). with_deadline catches the one
// that names its scope and throws timeout_error instead (throw_timeout), naming the
// same call and keeping the mask (below) alive. A deadline_scope object has no exit
// it could do that at: its expiry is a timeout_error from the call itself.
class scope_cancelled final : public cancelled_error {
 public:
  // `fiber` is the fiber's id (process-unique; its record is reused after it ends).
  scope_cancelled(std::shared_ptr<const void> token, std::string_view call, std::uint64_t fiber,
                  std::uint64_t scope, const char* scope_call);
  // from: this is the expiry of scope number `scope` of fiber `fiber` (an id).
  bool from(std::uint64_t fiber, std::uint64_t scope) const noexcept { return fiber == fiber_ && scope == scope_; }
  // throw_leaving throws what leaves the scope: timeout_error, or, if a cancel() of
  // the fiber is pending meanwhile (outside a shield), cancelled_error: as with
  // asyncio.timeout, an outside cancellation is not turned into a timeout.
  [[noreturn]] void throw_leaving() const;

 private:
  friend void rethrow_naming(std::string_view call);  // copies token_, fiber_, scope_
  std::string_view call() const noexcept;  // what() begins with it
  std::shared_ptr<const void> token_;  // the mask's token (below), shared with the timeout_error
  std::size_t call_length_;
  std::uint64_t fiber_;
  std::uint64_t scope_;
  const char* scope_call_;  // the with_timeout (or wait_for, ...) whose expiry this is
};

// expiry_mask: scopes numbered below `covers` whose deadline is at or before
// `delivered_at` do not interrupt while `exception` (the delivered exception's
// token) is alive. Newer masks cover at least
// what older ones do, so only the newest live one matters.
struct expiry_mask {
  std::weak_ptr<const void> exception;
  std::uint64_t covers;
  time_point delivered_at;
  std::shared_ptr<expiry_mask> older;
  bool cancellation;  // the exception is a cancel()'s: an expiry that replaces it
                      // while it is handled puts the cancel back (deferred)
  bool redelivery = false;  // ...a deferred one's second delivery, not deferred again
};

// cleanup_state: what a fiber's delivered timeouts and cancellations leave while
// their cleanup runs (fiber_record::cleanup_, made at the first delivery inside a
// scope). Owner thread only.
struct cleanup_state {
  // The masks, newest first (dropped as their exceptions go: live_mask).
  std::shared_ptr<expiry_mask> masks;
  // A cancellation whose cleanup a scope's expiry interrupted (the scope was open
  // when the cancellation came: asyncio.timeout lets the cancellation out of such a
  // scope, not a timeout) is put back, but not as a pending one: a blocking call in
  // the rest of that cleanup (a destructor's, where a throw is std::terminate) must
  // not take it. It is taken by the with_timeout of a scope numbered below
  // `deferred_cancel_covers` (one open when the cancellation came) as it leaves
  // (scope_cancelled::throw_leaving), or becomes pending at the first blocking call
  // or check_cancelled after the cleanup (fiber_record::settle_deferred_cancel).
  // `deferred_for` is the cancellation's exception (its mask's token): the cleanup is
  // over when that exception is gone, or when no exception is handled or unwinds at
  // all. If the cancellation itself leaves a scope numbered below
  // `deferred_cancel_covers` (the handler rethrew it), it goes on as itself and the
  // deferred copy is dropped: one cancel(), one cancelled_error
  // (scope_left_by_exception). The attention bit cancel_after_cleanup says one is
  // deferred.
  std::uint64_t deferred_cancel_covers = 0;
  std::weak_ptr<const void> deferred_for;
  // The pending cancellation is a deferred one made pending again: delivered inside
  // a scope, it is not deferred a second time (a breaker's finding: a request loop
  // whose every goodbye outlasted its with_timeout was cancelled in every later
  // request by one cancel()). Cleared when that cancellation is delivered, wherever
  // (inside a scope, as a with_timeout leaves, outside every scope:
  // fiber_record::cancel_delivered); left set, it kept the next cancel() from being
  // deferred, and its cleanup's expiry replaced it (a breaker's finding: a blocking
  // destructor in the first cleanup lost every second cancel()).
  bool redelivering_cancel = false;
};

// scope_left_by_exception: `scope` of `self` closes while an exception unwinds out
// of it and a cancellation is deferred (fiber_record::defer_cancel).
void scope_left_by_exception(fiber_record* self, const scope_link& scope) noexcept;

// unmasked_scope_deadline is the earliest deadline among the scopes that may still
// interrupt `self` (not covered by a live mask, not opened before an unwinding in
// progress, not hidden by a shield).
time_point unmasked_scope_deadline(fiber_record* self) noexcept;

// throw_masked_delivery throws what an expiry (`timeout`) or a cancellation reports
// for `self`, which is inside a scope, and masks the scopes it is in while the thrown
// exception lives (see above). An expiry is a timeout_error, or a scope_cancelled
// when the outermost expired scope is a with_deadline's (as in Trio, the outermost
// expired scope is the one the exception unwinds to). Callers go through
// throw_delivered (scheduler.hpp).
[[noreturn, gnu::cold]] void throw_masked_delivery(fiber_record* self, bool timeout, const char* call);

}  // namespace weft::detail
