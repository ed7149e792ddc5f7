// test_server.hpp: an http::serve on a loopback port, in a fiber, for the length of
// a test; over TLS when its options say so.
#pragma once

#include <weft/http/client.hpp>
#include <weft/http/server.hpp>

#include <string>
#include <string_view>

#include "../net/net_test.hpp"

namespace weft_test {

class test_server {
 public:
  explicit test_server(weft::http::handler h, weft::http::server_options o = {})
      : listener_(weft::net::tcp_listener::bind(loopback_any_port())), handler_(std::move(h)),
        options_(std::move(o)),
        fiber_(weft::spawn([this] { weft::http::serve(listener_, handler_, options_); })) {}
  ~test_server() {
    listener_.close();
    fiber_.join();
  }
  weft::net::endpoint at() const { return endpoint_; }
  // url: http://127.0.0.1:port/path, or https://localhost:port/path (the name the
  // test certificates carry) when the server speaks TLS.
  std::string url(std::string_view path) const {
    if (options_.tls) return "https://localhost:" + std::to_string(endpoint_.port()) + std::string(path);
    return "http://" + endpoint_.to_string() + std::string(path);
  }

 private:
  weft::net::tcp_listener listener_;
  weft::net::endpoint endpoint_ = listener_.local_endpoint();
  weft::http::handler handler_;
  weft::http::server_options options_;
  weft::fiber<void> fiber_;
};

// echo answers "METHOD target body".
inline weft::http::response echo(weft::http::request& r) {
  return weft::http::response::text(200, r.method + " " + r.target + " " + r.body);
}

}  // namespace weft_test
