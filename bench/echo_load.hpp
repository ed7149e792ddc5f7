// echo_load.hpp: the load client both echo benchmarks share.
//
// Hand-written epoll on the benchmark's own thread: C connections, each with one
// 64-byte request in flight; every response is checked byte for byte before the
// connection sends its next request. One complete_one() is one round trip.
#pragma once

#include <sys/epoll.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace weft_bench {

class echo_load {
 public:
  static constexpr std::size_t message_size = 64;

  // Connects `connections` sockets to 127.0.0.1:port. Throws std::system_error.
  echo_load(std::uint16_t port, int connections);
  ~echo_load();  // closes every connection (servers see EOF)
  echo_load(const echo_load&) = delete;
  echo_load& operator=(const echo_load&) = delete;

  // start sends the first request on every connection.
  void start();
  // complete_one waits for one response, verifies it and sends that connection's
  // next request. Returns false (and sets error()) if a response was wrong or a
  // connection failed.
  bool complete_one();
  // finish collects the responses still in flight, sending nothing more.
  bool finish();

  const std::string& error() const noexcept { return error_; }
  std::uint64_t verified_bytes() const noexcept { return verified_; }

 private:
  struct connection {
    int fd = -1;
    std::uint32_t sequence = 0;  // of the request in flight
    std::size_t received = 0;    // bytes of its response so far
    bool in_flight = false;
    unsigned char response[message_size];
  };
  // read_ready reads from c once; true if that completed a verified response.
  bool read_ready(connection& c);
  void send_request(connection& c);
  bool fail(std::string what);

  int epoll_fd_ = -1;
  std::vector<connection> connections_;
  std::vector<epoll_event> events_;
  int ready_ = 0;     // events from the last epoll_wait ...
  int next_ = 0;      // ... and the next one to handle
  std::size_t in_flight_ = 0;
  std::uint64_t verified_ = 0;
  std::string error_;
};

// raise_fd_limit lifts the soft RLIMIT_NOFILE to at least n; false if it cannot.
bool raise_fd_limit(std::size_t n);

}  // namespace weft_bench
