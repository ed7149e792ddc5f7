// input_buffer.hpp: bytes read from a stream that a parser has not consumed yet.
//
// Beast's parser consumes a header only once it is complete, so the unconsumed
// tail must be offered again with what arrives next; this keeps that tail and
// appends reads after it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

#include <weft/net/deadline.hpp>
#include <weft/net/stream.hpp>

namespace weft::http::detail {

class input_buffer {
 public:
  std::string_view unparsed() const noexcept { return std::string_view(bytes_).substr(start_); }
  void consume(std::size_t n) noexcept { start_ += n; }

  // read_from appends what one read_some returns (0 at the end of the stream).
  std::size_t read_from(net::stream_socket& stream, net::deadline d, std::error_code& ec) {
    constexpr std::size_t chunk = 16384;
    if (start_ > 0) {  // keep only the unconsumed tail
      bytes_.erase(0, start_);
      start_ = 0;
    }
    const std::size_t had = bytes_.size();
    bytes_.resize(had + chunk);
    const std::size_t n = stream.read_some(net::mutable_buffer(bytes_.data() + had, chunk), d, ec);
    bytes_.resize(had + n);
    return n;
  }

 private:
  std::string bytes_;
  std::size_t start_ = 0;  // bytes_[start_, end) are unconsumed
};

}  // namespace weft::http::detail
