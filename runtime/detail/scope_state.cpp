#include <weft/runtime/detail/scope_state.hpp>

#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

#include <weft/runtime/detail/eh_state.hpp>
#include <weft/runtime/detail/fiber_record.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>

namespace weft::detail {

// The exceptions a delivery throws: the public types, plus the token whose lifetime
// is the mask's. Caught as timeout_error / cancelled_error like any other; slicing
// a copy off in a `catch (timeout_error e)` leaves the original (and its token) alive
// until the handler ends, which is the point. Their names start with the public
// type's, and they are outside an anonymous namespace, because an uncaught one ends
// the program with "terminate called after throwing an instance of '<name>'": a
// user looks up weft::timeout_error from there.
class timeout_error_delivered final : public timeout_error {
 public:
  timeout_error_delivered(std::shared_ptr<const void> token, std::string_view call)
      : timeout_error(call, {}), token_(std::move(token)) {}
  const std::shared_ptr<const void>& token() const noexcept { return token_; }

 private:
  std::shared_ptr<const void> token_;
};

class cancelled_error_delivered final : public cancelled_error {
 public:
  cancelled_error_delivered(std::shared_ptr<const void> token, std::string_view call)
      : cancelled_error(call, {}), token_(std::move(token)) {}
  const std::shared_ptr<const void>& token() const noexcept { return token_; }

 private:
  std::shared_ptr<const void> token_;
};

namespace {

std::string_view name_or_none(const char* call) noexcept { return call != nullptr ? call : ""; }

// live_mask: the newest mask whose exception is alive, or null. Drops the masks
// whose exception has gone.
const expiry_mask* live_mask(fiber_record* self) noexcept {
  if (!self->cleanup_) return nullptr;
  std::shared_ptr<expiry_mask>& masks = self->cleanup_->masks;
  while (masks && masks->exception.expired()) masks = std::move(masks->older);
  return masks.get();
}

// active_mask: the live mask, while the fiber is in cleanup: unwinding, or inside a
// catch block (the C++ runtime's stack of exceptions being handled, which is the
// running fiber's own: eh_state.hpp). Outside both, an exception kept in an
// exception_ptr (a retry loop's last error) masks nothing.
const expiry_mask* active_mask(fiber_record* self, int uncaught) noexcept {
  const expiry_mask* mask = live_mask(self);
  if (mask == nullptr || uncaught > 0 || this_thread_eh_state()->caught != nullptr) return mask;
  return nullptr;
}

bool in_cleanup() noexcept { return std::uncaught_exceptions() > 0 || this_thread_eh_state()->caught != nullptr; }

// cancellation_in_cleanup: the newest delivered cancellation that is alive while the
// fiber is in cleanup (unwinding, or in a catch block), or null.
const expiry_mask* cancellation_in_cleanup(fiber_record* self) noexcept {
  if (!in_cleanup() || !self->cleanup_) return nullptr;
  for (const expiry_mask* m = self->cleanup_->masks.get(); m != nullptr; m = m->older.get())
    if (m->cancellation && !m->exception.expired()) return m;
  return nullptr;
}

// interrupts: scope `s` may interrupt its fiber now: it is not covered by the live
// `mask` and was not opened before the unwinding in progress began.
bool interrupts(const scope_link* s, const expiry_mask* mask, int uncaught) noexcept {
  const bool masked = mask != nullptr && s->number < mask->covers && s->deadline <= mask->delivered_at;
  return !masked && s->uncaught_at_open >= uncaught;
}

// outermost_expired: the outermost scope of `self` that has expired at `now` and may
// interrupt it (the one an expiry unwinds to), or null.
scope_link* outermost_expired(fiber_record* self, time_point now) noexcept {
  const int uncaught = std::uncaught_exceptions();
  const expiry_mask* mask = active_mask(self, uncaught);
  scope_link* found = nullptr;
  for (scope_link* s = self->innermost_scope_; s != self->shield_boundary_; s = s->outer)
    if (s->deadline <= now && interrupts(s, mask, uncaught)) found = s;
  return found;
}

}  // namespace

time_point unmasked_scope_deadline(fiber_record* self) noexcept {
  const int uncaught = std::uncaught_exceptions();
  const expiry_mask* mask = active_mask(self, uncaught);
  time_point earliest = no_deadline;
  for (scope_link* s = self->innermost_scope_; s != self->shield_boundary_; s = s->outer)
    if (s->deadline < earliest && interrupts(s, mask, uncaught)) earliest = s->deadline;
  return earliest;
}

namespace {
std::string expired_scope_text(const char* scope_call) {
  return std::string("the deadline of an enclosing ") + scope_call + " passed";
}
}  // namespace

scope_cancelled::scope_cancelled(std::shared_ptr<const void> token, std::string_view call, std::uint64_t fiber,
                                 std::uint64_t scope, const char* scope_call)
    : cancelled_error(call, expired_scope_text(scope_call)),
      token_(std::move(token)),
      call_length_(call.empty() ? 0 : call.size()),
      fiber_(fiber),
      scope_(scope),
      scope_call_(scope_call) {}

std::string_view scope_cancelled::call() const noexcept { return {what(), call_length_}; }

void scope_cancelled::throw_leaving() const {
  fiber_record* self = scheduler::current()->running();
  if (self->cancel_requested() && self->takes_cancel_now() && self->take_cancel()) {
    self->cancel_delivered();
    throw cancelled_error_delivered(token_, call());
  }
  // A cancellation this scope's expiry interrupted the cleanup of (the scope was
  // open when it came) leaves as the cancellation it is.
  if (self->cancel_deferred() && scope_ < self->cleanup_->deferred_cancel_covers && self->take_deferred_cancel())
    throw cancelled_error_delivered(token_, call());
  throw timeout_error_delivered(token_, call());
}

void rethrow_naming(std::string_view call) {
  try {
    throw;
  } catch (const scope_cancelled& e) {
    throw scope_cancelled(e.token_, call, e.fiber_, e.scope_, e.scope_call_);
  } catch (const timeout_error_delivered& e) {
    throw timeout_error_delivered(e.token(), call);
  } catch (const cancelled_error_delivered& e) {
    throw cancelled_error_delivered(e.token(), call);
  } catch (const weft::error& e) {
    // weft's own plain ones (no scope was open); a type of the program's passes as it is
    if (typeid(e) == typeid(cancelled_error)) throw cancelled_error(std::string(call).c_str());
    if (typeid(e) == typeid(timeout_error)) throw timeout_error(std::string(call).c_str());
    throw;
  }
}

void throw_masked_delivery(fiber_record* self, bool timeout, const char* call) {
  const time_point now = clock::now();
  scope_link* expired = timeout ? outermost_expired(self, now) : nullptr;  // before the new mask
  // The same scope's expiry again: the last one was swallowed (caught, not rethrown,
  // the scope still open). Its catch blocks get no quiet this time, so a loop that
  // catches everything and blocks in its handler still ends at the scope's deadline.
  const bool again = expired != nullptr && expired->expiry_delivered;
  for (scope_link* s = self->innermost_scope_; s != self->shield_boundary_; s = s->outer)
    if (s->deadline <= now) s->expiry_delivered = true;
  // An expiry thrown while a cancellation is handled (a catch block's cleanup, or a
  // destructor's) replaces it. If the scope that expired was open when the
  // cancellation came, the cancellation is put back, deferred until the cleanup is
  // over (fiber_record::defer_cancel), not lost. A scope the cleanup opened itself
  // (a with_timeout bounding a flush) reports its own expiry and puts nothing back,
  // as asyncio.timeout does: the handler decides whether the cancellation goes on.
  if (timeout && expired != nullptr)
    if (const expiry_mask* handled = cancellation_in_cleanup(self);
        handled && !handled->redelivery && expired->number < handled->covers)
      self->defer_cancel(handled->covers, handled->exception);
  auto token = std::make_shared<const char>('\0');
  if (!again) {
    cleanup_state& c = self->cleanup();
    c.masks = std::make_shared<expiry_mask>(expiry_mask{token, self->scopes_opened_, now, std::move(c.masks), !timeout,
                                                        !timeout && std::exchange(c.redelivering_cancel, false)});
  }
  if (expired != nullptr && expired->converting_call != nullptr)
    throw scope_cancelled(std::move(token), name_or_none(call), self->id_, expired->number, expired->converting_call);
  if (timeout) throw timeout_error_delivered(std::move(token), name_or_none(call));
  throw cancelled_error_delivered(std::move(token), name_or_none(call));
}

void fiber_record::settle_deferred_cancel() noexcept {
  // The cancellation's exception gone: its handler has ended (a breaker's finding:
  // asking only "is any exception handled" kept it deferred for good inside the
  // catch block of an unrelated exception around the scope).
  // Deferred, so cleanup_ exists.
  if ((!in_cleanup() || cleanup_->deferred_for.expired()) && take_deferred_cancel()) {
    cleanup_->redelivering_cancel = true;
    request_cancel();
  }
}

void scope_left_by_exception(fiber_record* self, const scope_link& scope) noexcept {
  // Left by an exception while the deferring cancellation's is alive: that is the
  // cancellation leaving (rethrown). Left by the scope's own expiry, the handler
  // has ended and the cancellation's exception with it; throw_leaving takes it.
  const cleanup_state& c = *self->cleanup_;  // a cancellation is deferred, so it exists
  if (scope.number < c.deferred_cancel_covers && !c.deferred_for.expired()) self->take_deferred_cancel();
}

}  // namespace weft::detail
