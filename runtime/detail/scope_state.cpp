#include <weft/runtime/detail/scope_state.hpp>

#include <utility>

#include <weft/runtime/detail/fiber_record.hpp>
#include <weft/runtime/error.hpp>

namespace weft::detail {
namespace {

// The exceptions a delivery throws: the public types, plus the token whose lifetime
// is the mask's. Caught as timeout_error / cancelled_error like any other; slicing
// a copy off in a `catch (timeout_error e)` leaves the original (and its token) alive
// until the handler ends, which is the point.
class delivered_timeout final : public timeout_error {
 public:
  delivered_timeout(std::shared_ptr<const void> token, const char* call)
      : timeout_error(call), token_(std::move(token)) {}

 private:
  std::shared_ptr<const void> token_;
};

class delivered_cancel final : public cancelled_error {
 public:
  delivered_cancel(std::shared_ptr<const void> token, const char* call)
      : cancelled_error(call), token_(std::move(token)) {}

 private:
  std::shared_ptr<const void> token_;
};

// live_mask_cover: scopes numbered below it are masked; 0 when no mask is alive.
// Drops the masks whose exception has gone.
std::uint64_t live_mask_cover(fiber_record* self) noexcept {
  while (self->masks_ && self->masks_->exception.expired()) self->masks_ = std::move(self->masks_->older);
  return self->masks_ ? self->masks_->covers : 0;
}

}  // namespace

time_point unmasked_scope_deadline(fiber_record* self) noexcept {
  const std::uint64_t covered = live_mask_cover(self);
  time_point earliest = no_deadline;
  for (scope_link* s = self->innermost_scope_; s != self->shield_boundary_; s = s->outer)
    if (s->number >= covered && s->deadline < earliest) earliest = s->deadline;
  return earliest;
}

void throw_masked_delivery(fiber_record* self, bool timeout, const char* call) {
  auto token = std::make_shared<const char>('\0');
  self->masks_ = std::make_shared<expiry_mask>(expiry_mask{token, self->scopes_opened_, std::move(self->masks_)});
  if (timeout) throw delivered_timeout(std::move(token), call);
  throw delivered_cancel(std::move(token), call);
}

}  // namespace weft::detail
