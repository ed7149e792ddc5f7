// weft::http over TLS: the server with server_options::tls answered by weft's
// client and by curl, keep-alive over one TLS session, streamed bodies, and the
// failures a user meets: an untrusted certificate, plain HTTP sent to an HTTPS
// port, a client that never finishes its handshake.
#include <openssl/ssl.h>

#include <weft/runtime/to_thread.hpp>

#include <cstdio>
#include <string>

#include "../tls_certificates.hpp"
#include "test_server.hpp"

namespace {

using namespace std::chrono_literals;
using namespace weft_test;
namespace http = weft::http;
namespace net = weft::net;

const tls_certificates& certificates() {
  static const tls_certificates made;
  return made;
}

http::server_options over_tls(http::server_options o = {}) {
  o.tls = net::tls_context::server(certificates().server_chain(), certificates().server_key());
  return o;
}

http::client trusting_client() {
  http::client_options o;
  o.tls = net::tls_context::client();
  o.tls->trust(certificates().ca());
  return http::client(std::move(o));
}

TEST(Https, ClientAndServerKeepOneSessionForManyRequests) {
  certificates();
  run_checked([] {
    test_server s(echo, over_tls());
    http::client c = trusting_client();
    for (int i = 0; i < 3; ++i) {
      http::response r = c.get(s.url("/hello?x=1"), 10s);
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body, "GET /hello?x=1 ");
      EXPECT_EQ(c.idle_connections(), 1u);
    }
    const std::string big = pattern(3, 300000);  // many TLS records each way
    http::response p = c.post(s.url("/up"), big, {{"Content-Type", "application/octet-stream"}}, 10s);
    EXPECT_TRUE(p.body == "POST /up " + big);
    EXPECT_EQ(c.idle_connections(), 1u);
  });
}

TEST(Https, StreamedBodiesGoOutChunkedOverTls) {
  certificates();
  run_checked([] {
    test_server s(
        [](http::request&) {
          http::response r;
          r.stream = [](http::body_writer& out) {
            for (int i = 0; i < 100; ++i) out.write(std::string(1000, static_cast<char>('a' + i % 26)));
          };
          return r;
        },
        over_tls());
    http::client c = trusting_client();
    std::string got;
    http::response r =
        c.send(http::request_builder("GET", s.url("/stream")), [&](std::string_view piece) { got += piece; }, 10s);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.headers.value("Transfer-Encoding"), "chunked");
    ASSERT_EQ(got.size(), 100000u);
    EXPECT_EQ(got[99999], static_cast<char>('a' + 99 % 26));
  });
}

TEST(Https, StreamedUploadsGoOutOverTls) {
  certificates();
  run_checked([] {
    test_server s([](http::request& r) { return http::response::text(200, std::to_string(r.body.size())); }, over_tls());
    http::client c = trusting_client();
    const auto produce = [](http::body_writer& w) {
      for (int i = 0; i < 100; ++i) w.write(std::string(1000, 'u'));
    };
    EXPECT_EQ(c.send(http::request_builder("PUT", s.url("/up")).body_stream(produce), 10s).body, "100000");
    EXPECT_EQ(c.send(http::request_builder("PUT", s.url("/up")).body_stream(produce, 100000), 10s).body, "100000");
  });
}

TEST(Https, AnUntrustedServerIsRefusedWithTheCertificatesReason) {
  certificates();
  run_checked([] {
    test_server s(echo, over_tls());
    http::client system_cas_only;  // the test's CA is not among them
    try {
      system_cas_only.get(s.url("/"), 10s);
      ADD_FAILURE() << "a certificate from an unknown CA was accepted";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().category(), net::tls_verify_category()) << e.what();
      EXPECT_NE(std::string(e.what()).find("localhost"), std::string::npos) << e.what();
    }
    EXPECT_EQ(system_cas_only.idle_connections(), 0u);
  });
}

TEST(Https, PlainHttpToTheTlsPortAndASilentClientAreDropped) {
  certificates();
  run_checked([] {
    http::server_options o = over_tls();
    o.header_timeout = 50ms;
    test_server s(echo, o);
    // Plain HTTP: the handshake fails; the connection closes without an HTTP answer.
    http::client plain;
    EXPECT_THROW(plain.get("http://" + s.at().to_string() + "/", 10s), std::system_error);
    // A client that never speaks is closed after header_timeout.
    auto silent = net::tcp_stream::connect(s.at(), 10s);
    char c;
    std::error_code ec;
    EXPECT_EQ(silent.read_some({&c, 1}, 10s, ec), 0u);
    EXPECT_FALSE(ec);
    // The server still serves whoever speaks TLS.
    http::client c2 = trusting_client();
    EXPECT_EQ(c2.get(s.url("/ok"), 10s).body, "GET /ok ");
  });
}

TEST(Https, AHandshakeThatNeverEndsTimesOutNamingTheRequest) {
  certificates();
  run_checked([] {
    auto silent = net::tcp_listener::bind(loopback_any_port());  // connects, never answers
    const std::string url = "https://" + silent.local_endpoint().to_string() + "/x";
    http::client c = trusting_client();
    try {
      c.get(url, 50ms);
      ADD_FAILURE() << "a handshake nobody answers ended";
    } catch (const weft::timeout_error& e) {
      EXPECT_NE(std::string(e.what()).find("GET " + url), std::string::npos) << e.what();
    }
  });
}

TEST(Https, CurlGetsItsAnswersAndItsFilesWhole) {
  certificates();
  const std::string curl = find_program("curl");
  if (curl.empty()) GTEST_SKIP() << "curl is not installed (./run test installs it)";
  run_checked([&] {
    const std::string big = pattern(5, 1 << 20);
    test_server s(
        [&](http::request& r) {
          if (r.target == "/big") return http::response::text(200, big);
          return echo(r);
        },
        over_tls());
    // curl runs off the scheduler (weft::to_thread), the server in this thread's fibers.
    const auto fetch = [&](const std::string& args) {
      return weft::to_thread([&, args] {
        std::string out;
        const std::string command = curl + " -sS --max-time 20 --cacert '" + certificates().ca() + "' " + args;
        FILE* p = ::popen(command.c_str(), "r");
        if (!p) return out;
        char buf[65536];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
        ::pclose(p);
        return out;
      });
    };
    EXPECT_EQ(fetch("'" + s.url("/a") + "' '" + s.url("/b") + "'"), "GET /a GET /b ");  // one session, two requests
    EXPECT_EQ(fetch("-d 'x=1' '" + s.url("/form") + "'"), "POST /form x=1");
    EXPECT_TRUE(fetch("'" + s.url("/big") + "'") == big);
  });
}

TEST(Https, BytesPastAnAnswerKeepTheConnectionOutOfThePool) {
  certificates();
  run_checked([] {
    // A server that sends a stray second answer, in a record of its own, right after
    // the first. The TLS layer may already hold it when the first answer is done
    // (not the socket, which the pool's check looks at): the next request must not
    // take it for its own answer.
    auto listener = net::tcp_listener::bind(loopback_any_port());
    const auto ctx = net::tls_context::server(certificates().server_chain(), certificates().server_key());
    int accepted = 0;
    auto server = weft::spawn([&] {
      weft::task_group conns;
      for (int i = 0; i < 2; ++i) {
        net::tcp_stream raw = listener.accept(10s);
        ++accepted;
        conns.spawn([&ctx, raw = std::move(raw)]() mutable {
          raw.set_nodelay(true);
          net::tls_stream tls = net::tls_stream::accept(ctx, std::move(raw), 10s);
          std::string got;
          char buf[4096];
          while (got.find("\r\n\r\n") == std::string::npos) {
            const std::size_t n = tls.read_some(buf, 10s);
            if (n == 0) return;
            got.append(buf, n);
          }
          tls.write_all(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"), 10s);
          tls.write_all(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTRAY"), 10s);
          std::error_code ec;
          tls.read_some(buf, 10s, ec);  // a request on this connection gets no answer
        });
      }
      conns.join();
    });
    {
      http::client c = trusting_client();
      const std::string url = "https://localhost:" + std::to_string(listener.local_endpoint().port()) + "/";
      EXPECT_EQ(c.get(url, 10s).body, "first");
      weft::this_fiber::sleep_for(50ms);  // the stray record has arrived, wherever it waits
      EXPECT_EQ(c.get(url, 10s).body, "first");  // from a new connection, not "STRAY"
      EXPECT_EQ(accepted, 2);
    }  // the client closes what it pooled: the server's fibers end
    server.join();
  });
}

TEST(Https, ASessionTicketAfterAnAnswerLeavesTheConnectionReusable) {
  certificates();
  run_checked([] {
    // A TLS 1.3 server may send a session ticket (or a key update) whenever it
    // likes, also after an answer, while the connection sits in the client's pool.
    // Such records carry no data: the connection is as good as before.
    auto listener = net::tcp_listener::bind(loopback_any_port());
    const auto ctx = net::tls_context::server(certificates().server_chain(), certificates().server_key());
    int accepted = 0;
    auto server = weft::spawn([&] {
      net::tcp_stream raw = listener.accept(10s);
      ++accepted;
      net::tls_stream tls = net::tls_stream::accept(ctx, std::move(raw), 10s);
      char buf[4096];
      for (int answered = 0; answered < 2; ++answered) {
        std::string got;
        while (got.find("\r\n\r\n") == std::string::npos) {
          const std::size_t n = tls.read_some(buf, 10s);
          if (n == 0) return;
          got.append(buf, n);
        }
        tls.write_all(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 10s);
        if (answered == 0) {  // then a ticket, in records of its own
          ASSERT_EQ(SSL_new_session_ticket(tls.native_handle()), 1);
          ASSERT_EQ(SSL_do_handshake(tls.native_handle()), 1);
          tls.write_all(std::string_view(), 10s);  // sends what OpenSSL produced
        }
      }
      std::error_code ec;
      tls.read_some(buf, 10s, ec);  // until the client closes
    });
    {
      http::client c = trusting_client();
      const std::string url = "https://localhost:" + std::to_string(listener.local_endpoint().port()) + "/";
      EXPECT_EQ(c.get(url, 10s).body, "ok");
      weft::this_fiber::sleep_for(50ms);  // the ticket has arrived on the pooled connection's socket
      EXPECT_EQ(c.get(url, 10s).body, "ok");
      EXPECT_EQ(accepted, 1);  // the pooled connection answered (was dropped, as if closed)
    }
    listener.close();
    server.join();
  });
}

TEST(Https, AnAnswerToAnUploadTheServerStoppedReadingArrives) {
  certificates();
  run_checked([] {
    http::server_options o = over_tls();
    o.max_body_bytes = 1000;
    test_server s(echo, o);
    http::client c = trusting_client();
    // 8 MB: far more than the buffers take before the server stops reading; the
    // write fails, and the 413 already sent must still be read through TLS.
    EXPECT_EQ(c.post(s.url("/up"), std::string(8 << 20, 'x'), {}, 10s).status, 413);
    EXPECT_EQ(c.get(s.url("/after"), 10s).body, "GET /after ");
  });
}

}  // namespace

