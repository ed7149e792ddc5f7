// TLS streams: data both ways (one fiber reading while another writes), close_notify
// as end of stream, certificates refused by name and by issuer, a plain-text peer,
// truncation, handshake deadlines, cancellation, close while blocked, misuse.
#include <openssl/x509_vfy.h>

#include <string>

#include "../tls_certificates.hpp"
#include "net_test.hpp"

#include <weft/net/tls.hpp>

namespace {

using namespace weft_test;
using namespace std::chrono_literals;
using weft::net::tcp_listener;
using weft::net::tcp_stream;
using weft::net::tls_context;
using weft::net::tls_stream;

const tls_certificates& certificates() {
  static const tls_certificates made;
  return made;
}

tls_context server_context() {
  return tls_context::server(certificates().server_chain(), certificates().server_key());
}

tls_context trusting_client() {
  tls_context c = tls_context::client();
  c.trust(certificates().ca());
  return c;
}

std::string port_of(const tcp_listener& l) { return std::to_string(l.local_endpoint().port()); }

TEST(Tls, BothWaysAtOnceThenCloseNotifyIsTheEndOfTheStream) {
  certificates();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const tls_context site = server_context();
    const std::string big = pattern(1, 1 << 20);
    auto server = weft::spawn([&] {
      tls_stream conn = tls_stream::accept(site, listener.accept(), 10s);
      // Echo until the client's close_notify, then close ours.
      char buf[8192];
      while (std::size_t n = conn.read_some(buf)) conn.write_all({buf, n});
      conn.shutdown();
    });
    const tls_context web = trusting_client();
    tls_stream client = tls_stream::connect(web, "localhost", port_of(listener), 10s);
    EXPECT_TRUE(client.is_open());
    // A writer fiber sends 1 MiB while this fiber reads the echo: a reader and a
    // writer at once, as on a tcp_stream.
    auto writer = weft::spawn([&] {
      const weft::net::const_buffer halves[] = {{big.data(), big.size() / 2},
                                                {big.data() + big.size() / 2, big.size() / 2}};
      EXPECT_EQ(client.write_all(halves), big.size());
      client.shutdown();
    });
    std::string back(big.size(), '\0');
    EXPECT_EQ(client.read_exact(back), big.size());
    EXPECT_TRUE(back == big);
    char c;
    EXPECT_EQ(client.read_some({&c, 1}), 0u);  // the server's close_notify
    writer.join();
    server.join();
  });
}

TEST(Tls, AnIpAddressIsCheckedAgainstTheCertificate) {
  certificates();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const tls_context site = server_context();
    auto server = weft::spawn([&] {
      tls_stream conn = tls_stream::accept(site, listener.accept(), 10s);
      conn.write_all("hi");
      conn.shutdown();
    });
    const tls_context web = trusting_client();
    tls_stream client = tls_stream::connect(web, "127.0.0.1", port_of(listener), 10s);
    std::string got(2, '\0');
    client.read_exact(got);
    EXPECT_EQ(got, "hi");
    server.join();
  });
}

// refused_by_client: the client's handshake error against a server with `chain`,
// connecting as `host`.
std::error_code refused_by_client(const tls_context& web, const std::string& chain, const std::string& key,
                                  const std::string& host) {
  std::error_code client_ec, server_ec;
  run_checked([&] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const tls_context site = tls_context::server(chain, key);
    auto server = weft::spawn([&] { tls_stream::accept(site, listener.accept(), 10s, server_ec); });
    tcp_stream conn = tcp_stream::connect(listener.local_endpoint(), 10s);
    tls_stream s = tls_stream::client(web, std::move(conn), host, 10s, client_ec);
    EXPECT_FALSE(s.is_open());
    server.join();
  });
  EXPECT_TRUE(server_ec) << "the server saw the client's alert";
  return client_ec;
}

TEST(Tls, AServerOfAnotherNameIsRefused) {
  certificates();
  const std::error_code ec =
      refused_by_client(trusting_client(), certificates().server_chain(), certificates().server_key(), "weft.invalid");
  EXPECT_EQ(ec.category(), weft::net::tls_verify_category());
  EXPECT_EQ(ec.value(), X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_NE(ec.message().find("mismatch"), std::string::npos) << ec.message();
}

TEST(Tls, ACertificateFromAnUntrustedIssuerIsRefused) {
  certificates();
  const std::error_code ec = refused_by_client(trusting_client(), certificates().self_signed_chain(),
                                               certificates().self_signed_key(), "localhost");
  EXPECT_EQ(ec.category(), weft::net::tls_verify_category());
  EXPECT_EQ(ec.value(), X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT) << ec.message();
  // The system's CAs alone do not know the test's CA either.
  const std::error_code system_only = refused_by_client(
      tls_context::client(), certificates().server_chain(), certificates().server_key(), "localhost");
  EXPECT_EQ(system_only.category(), weft::net::tls_verify_category()) << system_only.message();
}

TEST(Tls, VerificationOffAcceptsAnyCertificate) {
  certificates();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const tls_context site = tls_context::server(certificates().self_signed_chain(), certificates().self_signed_key());
    auto server = weft::spawn([&] {
      tls_stream conn = tls_stream::accept(site, listener.accept(), 10s);
      conn.write_all("ok");
    });
    tls_context careless = tls_context::client();
    careless.set_verify_peer(false);
    tls_stream client = tls_stream::connect(careless, "127.0.0.1", port_of(listener), 10s);
    std::string got(2, '\0');
    client.read_exact(got);
    EXPECT_EQ(got, "ok");
    server.join();
  });
}

TEST(Tls, APlainTextClientGetsNoSessionAndTheServerAReason) {
  certificates();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const tls_context site = server_context();
    std::error_code ec;
    auto server = weft::spawn([&] { tls_stream::accept(site, listener.accept(), 10s, ec); });
    tcp_stream plain = tcp_stream::connect(listener.local_endpoint(), 10s);
    plain.write_all("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    server.join();
    EXPECT_EQ(ec.category(), weft::net::tls_category());
    EXPECT_FALSE(ec.message().empty());
    std::string rest;
    char buf[256];
    while (std::size_t n = plain.read_some(buf, 10s)) rest.append(buf, n);  // an alert, then the end
  });
}

TEST(Tls, AConnectionCutWithoutCloseNotifyIsReportedAsTruncated) {
  certificates();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const tls_context site = server_context();
    auto server = weft::spawn([&] {
      tls_stream conn = tls_stream::accept(site, listener.accept(), 10s);
      conn.write_all("partial");
      conn.close();  // no close_notify
    });
    const tls_context web = trusting_client();
    tls_stream client = tls_stream::connect(web, "localhost", port_of(listener), 10s);
    std::string got(7, '\0');
    client.read_exact(got);
    EXPECT_EQ(got, "partial");
    std::error_code ec;
    char c;
    EXPECT_EQ(client.read_some({&c, 1}, 10s, ec), 0u);
    EXPECT_EQ(ec.category(), weft::net::tls_category());
    EXPECT_NE(ec.message().find("unexpected eof"), std::string::npos) << ec.message();
    server.join();
  });
}

TEST(Tls, HandshakesHaveDeadlines) {
  certificates();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const tls_context site = server_context();
    const tls_context web = trusting_client();
    // A client that connects and never speaks: the server's accept gives up.
    tcp_stream silent = tcp_stream::connect(listener.local_endpoint(), 10s);
    EXPECT_THROW(tls_stream::accept(site, listener.accept(), 20ms), weft::timeout_error);
    // A server that accepts and never answers: the client's connect gives up.
    std::error_code ec;
    tls_stream never = tls_stream::connect(web, "127.0.0.1", port_of(listener), 20ms, ec);
    EXPECT_EQ(ec, weft::errc::timed_out);
    EXPECT_FALSE(never.is_open());
  });
}

TEST(Tls, ACancelledReadLosesNothingAndCloseWakesAReader) {
  certificates();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const tls_context site = server_context();
    weft::event cancelled;
    auto server = weft::spawn([&] {
      tls_stream conn = tls_stream::accept(site, listener.accept(), 10s);
      cancelled.wait();
      conn.write_all("after");
      char c;
      std::error_code closed;  // the client closes without close_notify
      conn.read_some({&c, 1}, 10s, closed);
    });
    const tls_context web = trusting_client();
    tls_stream client = tls_stream::connect(web, "localhost", port_of(listener), 10s);
    auto reader = weft::spawn([&] {
      char c;
      client.read_some({&c, 1});
    });
    weft::this_fiber::sleep_for(5ms);
    reader.cancel();
    try {
      reader.join();
      ADD_FAILURE() << "the read was not cancelled";
    } catch (const weft::cancelled_error& e) {  // names the TLS call, not the TCP read inside it
      EXPECT_STREQ(e.what(), "weft::net::tls_stream::read_some: fiber cancelled");
    }
    cancelled.set();
    std::string got(5, '\0');
    client.read_exact(got, 10s);
    EXPECT_EQ(got, "after");

    auto blocked = weft::spawn([&] {
      std::error_code ec;
      char c;
      client.read_some({&c, 1}, ec);
      return ec;
    });
    weft::this_fiber::sleep_for(5ms);
    client.close();
    EXPECT_EQ(blocked.join(), weft::errc::socket_closed);
    server.join();
  });
}

TEST(Tls, MisuseIsReported) {
  certificates();
  tls_stream closed;
  char c;
  try {
    closed.read_some({&c, 1});
    ADD_FAILURE() << "a read outside a fiber";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::not_in_fiber);
    EXPECT_NE(std::string(e.what()).find("tls_stream::read_some"), std::string::npos) << e.what();
  }
  run_checked([&] {
    std::error_code ec;
    EXPECT_EQ(closed.read_some({&c, 1}, ec), 0u);
    EXPECT_EQ(ec, weft::errc::socket_closed);
    EXPECT_THROW(closed.write_all("x"), std::system_error);
  });
  try {
    tls_context::server("/nonexistent/cert.pem", certificates().server_key());
    ADD_FAILURE() << "a missing certificate file";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cert.pem"), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory) << e.what();  // OpenSSL's errno, as an errno
  }
  try {
    tls_context::client().trust("/nonexistent/ca.pem");
    ADD_FAILURE() << "a missing CA file";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), std::errc::no_such_file_or_directory) << e.what();
  }
  try {
    tls_context::server(certificates().server_chain(), certificates().self_signed_key());
    ADD_FAILURE() << "a key that does not match";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("mismatch"), std::string::npos) << e.what();
  }
}

}  // namespace
