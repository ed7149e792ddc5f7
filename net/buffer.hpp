// buffer.hpp: the byte ranges socket calls read into and write from.
//
// Anything contiguous of trivially copyable elements converts implicitly: a
// std::string, std::vector<char>, std::array, std::span, a C array, or (data, size).
// String literals (and other const char arrays) write their characters up to the
// terminating '\0'; a non-const char array is its whole size.
#pragma once

#include <cstddef>
#include <ranges>
#include <span>
#include <string_view>
#include <type_traits>

namespace weft::net {

struct mutable_buffer;
struct const_buffer;

namespace detail {
// A range of buffers is a scatter/gather list, not bytes.
template <class R>
concept byte_range = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                     std::is_trivially_copyable_v<std::ranges::range_value_t<R>> &&
                     !std::is_same_v<std::ranges::range_value_t<R>, mutable_buffer> &&
                     !std::is_same_v<std::ranges::range_value_t<R>, const_buffer>;
// A string literal: written up to its terminator, not including it.
template <class R>
concept const_char_array = std::is_array_v<std::remove_reference_t<R>> &&
                           std::is_same_v<std::remove_extent_t<std::remove_reference_t<R>>, const char>;
}  // namespace detail

// mutable_buffer: where a read may store bytes.
struct mutable_buffer {
  void* data = nullptr;
  std::size_t size = 0;

  mutable_buffer() noexcept = default;
  mutable_buffer(void* d, std::size_t n) noexcept : data(d), size(n) {}
  template <detail::byte_range R>
    requires(!std::is_const_v<std::remove_reference_t<std::ranges::range_reference_t<R>>>)
  mutable_buffer(R&& r) noexcept  // NOLINT: implicit on purpose
      : data(std::ranges::data(r)), size(std::ranges::size(r) * sizeof(std::ranges::range_value_t<R>)) {}

  std::span<std::byte> bytes() const noexcept { return {static_cast<std::byte*>(data), size}; }
};

// const_buffer: bytes a write sends.
struct const_buffer {
  const void* data = nullptr;
  std::size_t size = 0;

  const_buffer() noexcept = default;
  const_buffer(const void* d, std::size_t n) noexcept : data(d), size(n) {}
  const_buffer(mutable_buffer b) noexcept : data(b.data), size(b.size) {}  // NOLINT
  const_buffer(std::string_view s) noexcept : data(s.data()), size(s.size()) {}  // NOLINT
  const_buffer(const char* s) noexcept : const_buffer(std::string_view(s)) {}   // NOLINT
  template <detail::byte_range R>
    requires(!detail::const_char_array<R> && !std::is_same_v<std::remove_cvref_t<R>, std::string_view>)
  const_buffer(R&& r) noexcept  // NOLINT: implicit on purpose
      : data(std::ranges::data(r)), size(std::ranges::size(r) * sizeof(std::ranges::range_value_t<R>)) {}

  std::span<const std::byte> bytes() const noexcept { return {static_cast<const std::byte*>(data), size}; }
};

}  // namespace weft::net
