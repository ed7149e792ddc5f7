// placement.hpp: where spawn() starts a fiber (spawn_options::on).
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace weft {

// placement is where spawn() starts a fiber (spawn_options::on): a scheduler's
// index in the runtime (0 is run()'s own thread, up to run_options::threads - 1),
// given as any integer type (`.on = 1`, `.on = this_fiber::scheduler_index()`), or
// one of on_caller and on_any below. An index the runtime does not have (negative,
// or past its last scheduler) is reported by spawn (errc::invalid_argument), never
// taken for one of those two.
class placement {
 public:
  template <std::integral I>
    requires(!std::is_same_v<I, bool>)
  constexpr placement(I index) noexcept  // NOLINT(google-explicit-constructor): `.on = i`
      : kind_(std::cmp_less(index, 0) ? kind::negative : kind::index),
        index_(std::cmp_less(index, 0) ? 0 : static_cast<std::uintmax_t>(index)),
        negative_(std::cmp_less(index, 0) ? static_cast<std::intmax_t>(index) : 0) {}

  static constexpr placement caller() noexcept { return placement(kind::caller); }
  static constexpr placement any() noexcept { return placement(kind::any); }

  constexpr bool is_caller() const noexcept { return kind_ == kind::caller; }
  constexpr bool is_any() const noexcept { return kind_ == kind::any; }
  // index: the scheduler's index, if this names one by a non-negative number.
  constexpr std::optional<std::uintmax_t> index() const noexcept {
    if (kind_ != kind::index) return std::nullopt;
    return index_;
  }
  // describe: how spawn's error message shows this placement ("-3", "7", ...).
  std::string describe() const {
    switch (kind_) {
      case kind::caller: return "weft::on_caller";
      case kind::any: return "weft::on_any";
      case kind::negative: return std::to_string(negative_);
      case kind::index: break;
    }
    return std::to_string(index_);
  }
  friend constexpr bool operator==(const placement&, const placement&) noexcept = default;

 private:
  enum class kind : std::uint8_t { index, negative, caller, any };
  explicit constexpr placement(kind k) noexcept : kind_(k) {}
  kind kind_;
  std::uintmax_t index_ = 0;    // kind::index
  std::intmax_t negative_ = 0;  // kind::negative, kept for the error message
};

// The calling fiber's scheduler (the default).
inline constexpr placement on_caller = placement::caller();
// Any scheduler: queued on the caller's, which starts it when it gets to it, unless
// an idle scheduler of the runtime takes it first (work stealing). It moves only
// before it starts; then it stays. With one scheduler, the same as on_caller.
inline constexpr placement on_any = placement::any();

}  // namespace weft
