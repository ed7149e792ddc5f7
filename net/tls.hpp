// tls.hpp: TLS (OpenSSL) over a TCP connection, with the calls of tcp_stream.
//
//   weft::net::tls_context web = weft::net::tls_context::client();  // the system's CAs
//   auto conn = weft::net::tls_stream::connect(web, "example.com", "443", 5s);
//   conn.write_all("GET / HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n");
//   char buf[4096];
//   while (std::size_t n = conn.read_some(buf)) consume(buf, n);   // 0: the peer closed
//
//   auto site = weft::net::tls_context::server("cert.pem", "key.pem");
//   auto conn = weft::net::tls_stream::accept(site, listener.accept(), 10s);
//
// OpenSSL's engine works on memory (a BIO pair) and the ciphertext travels through
// the tcp_stream's own calls, so TLS follows weft's rules for sockets (stream.hpp):
// every call suspends only its fiber and takes an optional deadline and an optional
// std::error_code& (without it: timeout_error at the deadline, std::system_error
// otherwise); cancellation and misuse always throw. Errors:
//   - the socket's, as tcp_stream reports them (std::generic_category, weft::errc);
//   - a certificate the peer sent that does not verify: tls_verify_category(), the
//     X.509 verdict ("certificate has expired", "Hostname mismatch", ...);
//   - everything else TLS: tls_category(), OpenSSL's reason ("wrong version number",
//     "unexpected eof while reading": the peer closed without TLS's close_notify,
//     which may have cut the data short).
// A read after the peer's close_notify returns 0, like the end of a TCP stream.
//
// One fiber may read while another writes, as with tcp_stream; a second reader at
// once is refused with errc::already_waited, and a second writer waits its turn
// (the two writers' bytes may interleave, record by record). After a timeout or a
// cancellation, a read may be retried (nothing was lost); a write may have sent part
// of a TLS record, so the stream must be closed. A tls_stream belongs to the
// scheduler (thread) of the tcp_stream under it. Protocol versions: TLS 1.2 and 1.3;
// renegotiation is refused.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <weft/net/buffer.hpp>
#include <weft/net/deadline.hpp>
#include <weft/net/stream.hpp>

// OpenSSL's types (<openssl/types.h>), so that this header does not need OpenSSL's.
struct ssl_ctx_st;
struct ssl_st;

namespace weft::net {

// tls_category: OpenSSL's error codes (ERR_get_error), named by OpenSSL's reason text.
const std::error_category& tls_category() noexcept;
// tls_verify_category: why a peer's certificate was refused (X509_V_ERR_*).
const std::error_category& tls_verify_category() noexcept;

// tls_context: the settings TLS connections are made with (OpenSSL's SSL_CTX):
// certificates, trusted authorities, whether the peer must prove who it is. Copies
// share one SSL_CTX (reference counted); a context may be used from any thread, but
// change it (trust, set_verify_peer) before its first connection.
class tls_context {
 public:
  // client: for connecting. Trusts the system's certificate authorities
  // (Debian: ca-certificates) and verifies the server's certificate and name.
  static tls_context client();
  // server: for accepting, with a certificate chain (PEM, the server's certificate
  // first) and its private key (PEM). Clients are not asked for certificates.
  // Throws std::system_error (tls_category) naming the file that cannot be used.
  static tls_context server(const std::string& certificate_chain_file, const std::string& private_key_file);

  // trust adds the certificate authorities in a PEM file (a test's own CA, a
  // company's) to those a peer's certificate is checked against.
  void trust(const std::string& ca_file);
  // set_verify_peer: whether a peer without a valid certificate is refused (on by
  // default for client(); for server(), on means clients must present one).
  void set_verify_peer(bool on);

  ssl_ctx_st* native_handle() const noexcept { return ctx_.get(); }

 private:
  struct free_ctx {
    void operator()(ssl_ctx_st* ctx) const noexcept;
  };
  explicit tls_context(ssl_ctx_st* ctx);
  std::shared_ptr<ssl_ctx_st> ctx_;
};

// tls_stream: a TLS connection over a tcp_stream it owns. Move-only.
class tls_stream {
 public:
  tls_stream() noexcept;  // closed
  tls_stream(tls_stream&&) noexcept;
  tls_stream& operator=(tls_stream&&) noexcept;
  ~tls_stream();

  // connect opens a TCP connection (tcp_stream::connect) and makes the TLS
  // handshake as a client, sending `host` as the server name (SNI) and checking the
  // certificate against it (a name or an IP address). The deadline covers both; on
  // failure the connection is closed.
  static tls_stream connect(const tls_context& ctx, std::string_view host, std::string_view service, deadline d = {});
  static tls_stream connect(const tls_context& ctx, std::string_view host, std::string_view service, deadline d,
                            std::error_code& ec);
  // client makes the client handshake on a connection made another way.
  static tls_stream client(const tls_context& ctx, tcp_stream conn, std::string_view host, deadline d = {});
  static tls_stream client(const tls_context& ctx, tcp_stream conn, std::string_view host, deadline d,
                           std::error_code& ec);
  // accept makes the server handshake on an accepted connection. Give it a
  // deadline: a client that never speaks would hold the fiber otherwise.
  static tls_stream accept(const tls_context& ctx, tcp_stream conn, deadline d = {});
  static tls_stream accept(const tls_context& ctx, tcp_stream conn, deadline d, std::error_code& ec);

  bool is_open() const noexcept;
  explicit operator bool() const noexcept { return is_open(); }
  // has_pending_input: bytes from the peer are already off the socket, decrypted or
  // not yet (read_some would return them, or work on them, without waiting for the
  // socket). A connection about to carry a new exchange (a pooled keep-alive one)
  // must have none: they belong to no request of its. Never blocks; false when closed.
  bool has_pending_input() const noexcept;

  // read_some decrypts what has arrived, at least 1 byte, waiting if there is none;
  // 0 when the peer closed the TLS session (close_notify) or for an empty buffer.
  std::size_t read_some(mutable_buffer buf, deadline d = {});
  std::size_t read_some(mutable_buffer buf, std::error_code& ec) { return read_some(buf, {}, ec); }
  std::size_t read_some(mutable_buffer buf, deadline d, std::error_code& ec);
  // read_exact fills the whole buffer; the end of the stream first is
  // errc::end_of_stream.
  std::size_t read_exact(mutable_buffer buf, deadline d = {});
  std::size_t read_exact(mutable_buffer buf, deadline d, std::error_code& ec);
  // write_all encrypts and sends every byte; returns buf.size on success. The
  // vectored form sends the buffers in order, in as few records as fit.
  std::size_t write_all(const_buffer buf, deadline d = {});
  std::size_t write_all(const_buffer buf, std::error_code& ec) { return write_all(buf, {}, ec); }
  std::size_t write_all(const_buffer buf, deadline d, std::error_code& ec);
  std::size_t write_all(std::span<const const_buffer> bufs, deadline d = {});
  std::size_t write_all(std::span<const const_buffer> bufs, deadline d, std::error_code& ec);

  // shutdown ends the session from this side: sends close_notify, then ends the
  // TCP stream's writing direction. Reading may go on until the peer's close_notify.
  void shutdown(deadline d = {});
  void shutdown(deadline d, std::error_code& ec);
  // close closes the connection at once (no close_notify); a fiber blocked in a
  // call on it wakes with errc::socket_closed.
  void close() noexcept;

  // The connection underneath (its descriptor, endpoints, options).
  tcp_stream& next_layer();
  ssl_st* native_handle() const noexcept;

 private:
  struct engine;
  explicit tls_stream(std::unique_ptr<engine> e) noexcept;
  static tls_stream handshake(const tls_context& ctx, tcp_stream conn, std::string_view host, bool as_server,
                              deadline d, std::error_code& ec);
  std::unique_ptr<engine> e_;
};

}  // namespace weft::net
