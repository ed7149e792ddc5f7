// outcome.hpp: a result or the exception that took its place (what gather's
// collecting mode and as_completed hand back).
#pragma once

#include <exception>
#include <utility>
#include <variant>

namespace weft {

template <class T>
class outcome {
 public:
  outcome(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT: implicit
      : v_(std::in_place_index<0>, std::move(value)) {}
  outcome(std::exception_ptr error) noexcept : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool has_value() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }
  // value() is the result, or rethrows the exception.
  T& value() & {
    if (!has_value()) std::rethrow_exception(std::get<1>(v_));
    return std::get<0>(v_);
  }
  T&& value() && { return std::move(value()); }
  // error() is the exception, or null for a result.
  std::exception_ptr error() const noexcept { return has_value() ? nullptr : std::get<1>(v_); }

 private:
  std::variant<T, std::exception_ptr> v_;
};

template <>
class outcome<void> {
 public:
  outcome() noexcept = default;
  outcome(std::exception_ptr error) noexcept : error_(std::move(error)) {}  // NOLINT
  bool has_value() const noexcept { return !error_; }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (error_) std::rethrow_exception(error_);
  }
  std::exception_ptr error() const noexcept { return error_; }

 private:
  std::exception_ptr error_;
};

}  // namespace weft
