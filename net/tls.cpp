#include <weft/net/tls.hpp>

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <mutex>
#include <string>
#include <utility>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scope_state.hpp>
#include <weft/runtime/error.hpp>
#include <weft/sync/mutex.hpp>

namespace weft::net {

// ---- error categories -------------------------------------------------------------------

namespace {

class tls_error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int code) const override {
    const char* reason = ERR_reason_error_string(static_cast<unsigned long>(code));
    return reason ? reason : "TLS error " + std::to_string(code);
  }
};

class tls_verify_error_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "tls verify"; }
  std::string message(int code) const override {
    return std::string("certificate refused: ") + X509_verify_cert_error_string(code);
  }
};

// last_tls_error: the oldest error OpenSSL queued for this thread (the cause; later
// ones are consequences), or `otherwise` when the queue is empty.
std::error_code last_tls_error(std::error_code otherwise) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return otherwise;
  // An errno OpenSSL saw (fopen of a missing certificate file): report it as one.
  if (ERR_SYSTEM_ERROR(code)) return {static_cast<int>(ERR_GET_REASON(code)), std::generic_category()};
  return {static_cast<int>(code), tls_category()};
}

[[noreturn]] void throw_tls(const std::string& what) {
  throw std::system_error(last_tls_error({EINVAL, std::generic_category()}), what);
}

bool is_ip_address(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

const std::error_category& tls_category() noexcept {
  static const tls_error_category instance;
  return instance;
}

const std::error_category& tls_verify_category() noexcept {
  static const tls_verify_error_category instance;
  return instance;
}

// ---- tls_context ------------------------------------------------------------------------

void tls_context::free_ctx::operator()(ssl_ctx_st* ctx) const noexcept { SSL_CTX_free(ctx); }

tls_context::tls_context(ssl_ctx_st* ctx) : ctx_(ctx, free_ctx{}) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // Writes may go out a record at a time, from a buffer that moves between retries.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

tls_context tls_context::client() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) throw_tls("weft::net::tls_context::client");
  tls_context c(ctx);
  if (SSL_CTX_set_default_verify_paths(ctx) != 1) throw_tls("weft::net::tls_context::client: the system's CAs");
  c.set_verify_peer(true);
  return c;
}

tls_context tls_context::server(const std::string& certificate_chain_file, const std::string& private_key_file) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) throw_tls("weft::net::tls_context::server");
  tls_context c(ctx);
  if (SSL_CTX_use_certificate_chain_file(ctx, certificate_chain_file.c_str()) != 1)
    throw_tls("weft::net::tls_context::server: cannot use certificate chain file \"" + certificate_chain_file + "\"");
  if (SSL_CTX_use_PrivateKey_file(ctx, private_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw_tls("weft::net::tls_context::server: cannot use private key file \"" + private_key_file + "\"");
  if (SSL_CTX_check_private_key(ctx) != 1)
    throw_tls("weft::net::tls_context::server: the private key in \"" + private_key_file +
              "\" does not match the certificate");
  return c;
}

void tls_context::trust(const std::string& ca_file) {
  if (SSL_CTX_load_verify_locations(ctx_.get(), ca_file.c_str(), nullptr) != 1)
    throw_tls("weft::net::tls_context::trust: cannot use CA file \"" + ca_file + "\"");
}

void tls_context::set_verify_peer(bool on) {
  const bool server = SSL_CTX_get_ssl_method(ctx_.get()) == TLS_server_method();
  SSL_CTX_set_verify(ctx_.get(), on ? SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0) : SSL_VERIFY_NONE,
                     nullptr);
}

// ---- tls_stream's engine ----------------------------------------------------------------

// engine: one TLS session. OpenSSL reads and writes ciphertext through `network`,
// the far end of a BIO pair; pump_in and pump_out move it between there and the
// socket with the socket's own calls (deadlines, cancellation, errors).
struct tls_stream::engine {
  tcp_stream tcp;
  SSL* ssl = nullptr;
  BIO* network = nullptr;
  // Held while ciphertext goes out: a reader whose SSL_read produced some (an
  // alert, a TLS 1.3 key update) leaves it to a writer already sending.
  weft::mutex sending;

  explicit engine(tcp_stream conn) : tcp(std::move(conn)) {}
  ~engine() {
    SSL_free(ssl);  // and the BIO of the pair it reads and writes
    BIO_free(network);
  }

  // pump_in reads what the socket has into the pair for OpenSSL; the socket's end of
  // stream becomes the pair's, which OpenSSL reports as a truncation unless a
  // close_notify came first.
  bool pump_in(time_point deadline, std::error_code& ec) {
    char* room = nullptr;
    const int space = BIO_nwrite0(network, &room);
    if (space <= 0) {  // OpenSSL asks for more while its input is full: never expected
      ec = std::make_error_code(std::errc::no_buffer_space);
      return false;
    }
    const std::size_t n = tcp.read_some(mutable_buffer(room, static_cast<std::size_t>(space)), deadline, ec);
    if (ec) return false;
    if (n == 0)
      BIO_shutdown_wr(network);
    else
      BIO_nwrite(network, &room, static_cast<int>(n));
    return true;
  }

  // write_broken: the socket's writing direction failed (EPIPE, ECONNRESET: the peer
  // stopped reading). A read goes on without sending OpenSSL's leftover ciphertext
  // again (it would fail the same way before the read began), so what the peer
  // sent before it stopped (an HTTP server's early 413 to an upload) can still be
  // read; every later write reports this error.
  std::error_code write_broken;

  // pump_out sends every byte of ciphertext OpenSSL has produced. `must`: the caller
  // cannot go on until it is out (its own data, or OpenSSL's output is full);
  // otherwise a writer already sending takes it along.
  bool pump_out(time_point deadline, bool must, std::error_code& ec) {
    if (write_broken) {
      if (!must) return true;
      ec = write_broken;
      return false;
    }
    if (BIO_ctrl_pending(network) == 0) return true;
    if (!sending.try_lock()) {
      if (!must) return true;
      if (!sending.try_lock_until(deadline)) {
        ec = make_error_code(errc::timed_out);
        return false;
      }
    }
    std::lock_guard<weft::mutex> held(sending, std::adopt_lock);
    while (BIO_ctrl_pending(network) > 0) {
      char* data = nullptr;
      const int n = BIO_nread0(network, &data);
      const std::size_t sent = tcp.write_all(const_buffer(data, static_cast<std::size_t>(n)), deadline, ec);
      BIO_nread(network, &data, static_cast<int>(sent));
      if (ec) {
        if (ec != errc::timed_out) write_broken = ec;
        return false;
      }
    }
    return true;
  }

  // drive runs op (an SSL_* call: 1 done, else see SSL_get_error) until it is done,
  // moving ciphertext as OpenSSL asks. Returns 1 when done, 0 when the peer closed
  // the session (close_notify), -1 with ec on failure.
  template <class Op>
  int drive(time_point deadline, std::error_code& ec, Op op) {
    for (;;) {
      ERR_clear_error();
      const int r = op();
      const int status = r == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl, r);
      if (!pump_out(deadline, status == SSL_ERROR_WANT_WRITE, ec)) return -1;
      switch (status) {
        case SSL_ERROR_NONE:
          return 1;
        case SSL_ERROR_ZERO_RETURN:
          return 0;
        case SSL_ERROR_WANT_READ:
          if (!pump_in(deadline, ec)) return -1;
          break;
        case SSL_ERROR_WANT_WRITE:
          break;  // pump_out made room
        default:
          ec = failure();
          return -1;
      }
    }
  }

  // failure: why the session failed: the certificate's verdict if it was refused,
  // OpenSSL's reason otherwise.
  std::error_code failure() {
    const long verdict = SSL_get_verify_result(ssl);
    if (verdict != X509_V_OK) {
      ERR_clear_error();
      return {static_cast<int>(verdict), tls_verify_category()};
    }
    return last_tls_error(make_error_code(errc::end_of_stream));
  }
};

// ---- tls_stream -------------------------------------------------------------------------

// interruptions_named runs f, a part of the TLS call `call` that waits in the TCP
// stream's calls (or on the send lock): a cancellation or a scope's expiry that
// comes while it waits names the TLS call the user made, not the inner one.
template <class F>
static auto interruptions_named(const char* call, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const weft::error&) {
    weft::detail::rethrow_naming(call);
  }
}

tls_stream::tls_stream() noexcept = default;
tls_stream::tls_stream(std::unique_ptr<engine> e) noexcept : e_(std::move(e)) {}
tls_stream::tls_stream(tls_stream&&) noexcept = default;
tls_stream& tls_stream::operator=(tls_stream&&) noexcept = default;
tls_stream::~tls_stream() = default;

bool tls_stream::is_open() const noexcept { return e_ && e_->tcp.is_open(); }
// Decrypted or buffered in the SSL object (SSL_has_pending), or ciphertext pump_in
// put into the BIO pair that SSL has not read yet.
bool tls_stream::has_pending_input() const noexcept {
  return is_open() && (SSL_has_pending(e_->ssl) == 1 || BIO_ctrl_pending(SSL_get_rbio(e_->ssl)) > 0);
}
ssl_st* tls_stream::native_handle() const noexcept { return e_ ? e_->ssl : nullptr; }

tcp_stream& tls_stream::next_layer() {
  if (!e_) throw weft::error(errc::socket_closed, "weft::net::tls_stream::next_layer");
  return e_->tcp;
}

void tls_stream::close() noexcept {
  if (e_) e_->tcp.close();
}

tls_stream tls_stream::handshake(const tls_context& ctx, tcp_stream conn, std::string_view host_name,
                                 bool as_server, deadline d, std::error_code& ec) {
  const char* call = as_server ? "weft::net::tls_stream::accept" : "weft::net::tls_stream::client";
  ec.clear();
  weft::detail::scheduler::require_fiber(call);
  if (!conn.is_open()) {
    ec = make_error_code(errc::socket_closed);
    return {};
  }
  auto e = std::make_unique<engine>(std::move(conn));
  e->ssl = SSL_new(ctx.native_handle());
  BIO* inner = nullptr;
  // 32 KiB each way: two full records, so a record never waits for room.
  if (!e->ssl || BIO_new_bio_pair(&inner, 32 << 10, &e->network, 32 << 10) != 1) {
    ec = last_tls_error(std::make_error_code(std::errc::not_enough_memory));
    return {};
  }
  SSL_set_bio(e->ssl, inner, inner);
  if (as_server) {
    SSL_set_accept_state(e->ssl);
  } else {
    SSL_set_connect_state(e->ssl);
    const std::string host(host_name);
    if (is_ip_address(host)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(e->ssl), host.c_str());
    } else if (!host.empty()) {
      SSL_set_tlsext_host_name(e->ssl, host.c_str());
      SSL_set1_host(e->ssl, host.c_str());
    }
  }
  const int r = interruptions_named(call, [&] { return e->drive(d.at, ec, [&] { return SSL_do_handshake(e->ssl); }); });
  if (r != 1) {
    if (r == 0) ec = make_error_code(errc::end_of_stream);
    return {};  // the engine closes the connection
  }
  return tls_stream(std::move(e));
}

tls_stream tls_stream::client(const tls_context& ctx, tcp_stream conn, std::string_view host, deadline d,
                              std::error_code& ec) {
  return handshake(ctx, std::move(conn), host, false, d, ec);
}
tls_stream tls_stream::client(const tls_context& ctx, tcp_stream conn, std::string_view host, deadline d) {
  return detail::or_throw("weft::net::tls_stream::client",
                          [&](std::error_code& ec) { return client(ctx, std::move(conn), host, d, ec); });
}

tls_stream tls_stream::accept(const tls_context& ctx, tcp_stream conn, deadline d, std::error_code& ec) {
  return handshake(ctx, std::move(conn), {}, true, d, ec);
}
tls_stream tls_stream::accept(const tls_context& ctx, tcp_stream conn, deadline d) {
  return detail::or_throw("weft::net::tls_stream::accept",
                          [&](std::error_code& ec) { return accept(ctx, std::move(conn), d, ec); });
}

tls_stream tls_stream::connect(const tls_context& ctx, std::string_view host, std::string_view service, deadline d,
                               std::error_code& ec) {
  tcp_stream conn = tcp_stream::connect(host, service, d, ec);
  if (ec) return {};
  conn.set_nodelay(true);
  return handshake(ctx, std::move(conn), host, false, d, ec);
}
tls_stream tls_stream::connect(const tls_context& ctx, std::string_view host, std::string_view service, deadline d) {
  return detail::or_throw("weft::net::tls_stream::connect",
                          [&](std::error_code& ec) { return connect(ctx, host, service, d, ec); });
}

std::size_t tls_stream::read_some(mutable_buffer buf, deadline d, std::error_code& ec) {
  static constexpr const char* call = "weft::net::tls_stream::read_some";
  ec.clear();
  weft::detail::scheduler::require_fiber(call);
  if (!is_open()) {
    ec = make_error_code(errc::socket_closed);
    return 0;
  }
  if (buf.size == 0) return 0;
  std::size_t got = 0;
  const int r =
      interruptions_named(call, [&] { return e_->drive(d.at, ec, [&] { return SSL_read_ex(e_->ssl, buf.data, buf.size, &got); }); });
  return r == 1 ? got : 0;
}
std::size_t tls_stream::read_some(mutable_buffer buf, deadline d) {
  return detail::or_throw("weft::net::tls_stream::read_some",
                          [&](std::error_code& ec) { return read_some(buf, d, ec); });
}

std::size_t tls_stream::read_exact(mutable_buffer buf, deadline d, std::error_code& ec) {
  std::size_t done = 0;
  do {
    const std::size_t n = read_some(mutable_buffer(static_cast<char*>(buf.data) + done, buf.size - done), d, ec);
    if (ec) return done;
    if (n == 0 && buf.size > 0) {
      ec = make_error_code(errc::end_of_stream);
      return done;
    }
    done += n;
  } while (done < buf.size);
  return done;
}
std::size_t tls_stream::read_exact(mutable_buffer buf, deadline d) {
  return detail::or_throw("weft::net::tls_stream::read_exact",
                          [&](std::error_code& ec) { return read_exact(buf, d, ec); });
}

std::size_t tls_stream::write_all(std::span<const const_buffer> bufs, deadline d, std::error_code& ec) {
  static constexpr const char* call = "weft::net::tls_stream::write_all";
  ec.clear();
  weft::detail::scheduler::require_fiber(call);
  if (!is_open()) {
    ec = make_error_code(errc::socket_closed);
    return 0;
  }
  // Each buffer is encrypted into the pair as records; they go out when the pair
  // is full and once at the end, so small pieces share system calls.
  std::size_t total = 0;
  for (const const_buffer& b : bufs) {
    std::size_t done = 0;
    while (done < b.size) {
      std::size_t n = 0;
      ERR_clear_error();
      const int r = SSL_write_ex(e_->ssl, static_cast<const char*>(b.data) + done, b.size - done, &n);
      if (r == 1) {
        done += n;
        total += n;
        continue;
      }
      const int status = SSL_get_error(e_->ssl, r);
      if (status == SSL_ERROR_WANT_WRITE) {
        if (!interruptions_named(call, [&] { return e_->pump_out(d.at, true, ec); })) return total;
      } else if (status == SSL_ERROR_WANT_READ) {  // refused renegotiation: not expected
        if (!interruptions_named(call, [&] { return e_->pump_in(d.at, ec); })) return total;
      } else {
        ec = e_->failure();
        return total;
      }
    }
  }
  interruptions_named(call, [&] { return e_->pump_out(d.at, true, ec); });
  return total;
}
std::size_t tls_stream::write_all(std::span<const const_buffer> bufs, deadline d) {
  return detail::or_throw("weft::net::tls_stream::write_all",
                          [&](std::error_code& ec) { return write_all(bufs, d, ec); });
}
std::size_t tls_stream::write_all(const_buffer buf, deadline d, std::error_code& ec) {
  return write_all(std::span<const const_buffer>(&buf, 1), d, ec);
}
std::size_t tls_stream::write_all(const_buffer buf, deadline d) {
  return write_all(std::span<const const_buffer>(&buf, 1), d);
}

void tls_stream::shutdown(deadline d, std::error_code& ec) {
  static constexpr const char* call = "weft::net::tls_stream::shutdown";
  ec.clear();
  weft::detail::scheduler::require_fiber(call);
  if (!is_open()) {
    ec = make_error_code(errc::socket_closed);
    return;
  }
  // SSL_shutdown queues close_notify and returns 0 (the peer's has not come): that
  // is all this side owes; pump_out sends it.
  ERR_clear_error();
  if (SSL_shutdown(e_->ssl) < 0) {
    ec = e_->failure();
    return;
  }
  if (!interruptions_named(call, [&] { return e_->pump_out(d.at, true, ec); })) return;
  e_->tcp.shutdown(shutdown_type::write, ec);
}
void tls_stream::shutdown(deadline d) {
  detail::or_throw("weft::net::tls_stream::shutdown", [&](std::error_code& ec) { shutdown(d, ec); });
}

}  // namespace weft::net
