// read_buffer.hpp: bytes read from a stream that a parser has not consumed yet
// (Go's bufio.Reader buffer, for protocols parsed in place).
//
//   weft::net::read_buffer in;
//   for (;;) {
//     in.consume(parser.feed(in.unparsed()));  // whatever whole messages it holds
//     if (in.read_from(conn) == 0) break;      // then wait for more bytes
//   }
//
// Parsers that take a message only once it is complete (Boost.Beast's header,
// RESP) need the unconsumed tail offered again with what arrives next; this keeps
// that tail and reads after it. The storage grows (doubling) only while a single
// message is bigger than it, and is never zero-filled again on later reads;
// shrink() gives it back once such a message has gone.
// A read_buffer belongs to one fiber at a time; it is not thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string_view>
#include <system_error>
#include <vector>

#include <weft/net/buffer.hpp>
#include <weft/net/deadline.hpp>

namespace weft::net {

class read_buffer {
 public:
  // min_read: room offered to each read (the buffer's first size, too).
  explicit read_buffer(std::size_t min_read = 16384) : min_read_(min_read) {}

  std::string_view unparsed() const noexcept { return {storage_.data() + start_, end_ - start_}; }
  // consume drops the first n unparsed bytes (n <= unparsed().size()).
  void consume(std::size_t n) noexcept {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }

  // capacity: the bytes of storage held (unparsed or free).
  std::size_t capacity() const noexcept { return storage_.size(); }

  // shrink gives back storage that grew past a few min_read for a large message,
  // once nothing is left unparsed: a long-lived connection that once carried a
  // large message keeps min_read, not that message's size.
  void shrink() {
    if (start_ != end_ || storage_.size() <= 4 * min_read_) return;
    std::vector<char>().swap(storage_);
    start_ = end_ = 0;
  }

  // read_from appends what one read_some on `stream` (a tcp_stream, unix_stream or
  // tls_stream) returns: the count, 0 at the end of the stream. Deadline,
  // cancellation and errors as that read_some's.
  template <class Stream>
  std::size_t read_from(Stream& stream, deadline d, std::error_code& ec) {
    make_room();
    const std::size_t n = stream.read_some(mutable_buffer(storage_.data() + end_, storage_.size() - end_), d, ec);
    end_ += n;
    return n;
  }
  template <class Stream>
  std::size_t read_from(Stream& stream, deadline d = {}) {
    make_room();
    const std::size_t n = stream.read_some(mutable_buffer(storage_.data() + end_, storage_.size() - end_), d);
    end_ += n;
    return n;
  }

 private:
  // make_room leaves at least min_read_ bytes free after end_: by moving the tail
  // to the front, or by growing when the tail itself fills most of the storage.
  void make_room() {
    if (storage_.size() - end_ >= min_read_) return;
    if (start_ > 0) {
      std::memmove(storage_.data(), storage_.data() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
    if (storage_.size() - end_ < min_read_) storage_.resize(std::max(storage_.size() * 2, end_ + min_read_));
  }

  std::size_t min_read_;
  std::vector<char> storage_;
  std::size_t start_ = 0, end_ = 0;  // storage_[start_, end_) is unparsed
};

}  // namespace weft::net
