// serve.hpp: a server's accept loop, one fiber per connection (asyncio's
// start_server and serve_forever; the loop every Go server writes by hand).
//
//   weft::net::serve(listener, [](weft::net::tcp_stream& conn) {
//     char buf[16384];
//     while (std::size_t n = conn.read_some(buf)) conn.write_all({buf, n});
//   });
//
// serve accepts on `listener` and runs the handler for each connection in a fiber
// of its own, on the calling fiber's scheduler, until the listener is closed (by
// another fiber of that scheduler, on SIGTERM say; for a listener per scheduler,
// see examples/echo_server.cpp). Then it shuts down gracefully: it stops
// accepting, cancels idle connections at once, gives busy ones
// `shutdown_grace`, cancels what is left, and returns once every connection's
// fiber has ended. A connection's stream is closed when its handler returns.
//
// Nothing is lost: an exception a handler lets escape (cancellation aside) goes to
// `on_error`, and only that connection ends. If accept fails for good (the
// listener's descriptor was shut down or closed behind weft's back: EINVAL, EBADF,
// ENOTSOCK), serve shuts down the same way and then throws that error as
// std::system_error ("weft::net::serve: accept: ..."); running out of descriptors
// (EMFILE) is no such failure: accept waits for one (listener.hpp). Cancelling the
// fiber in serve (or a deadline scope around it expiring) cancels every
// connection, waits for them, and throws cancelled_error.
//
// A handler takes the stream, and optionally the connection's connection_control:
//   void(tcp_stream&)  or  void(tcp_stream&, connection_control&)
// (unix_stream for a unix_listener). With the control it can say when it is idle
// (waiting for the client's next request, so a shutdown cancels it at once) and
// see that a shutdown has begun (draining: finish the request at hand and return).
//
// Threads: call serve from a fiber (errc::not_in_fiber otherwise); its connections
// run on that fiber's scheduler. For several scheduler threads, bind one listener
// per scheduler with reuse_port and serve each from a fiber on its scheduler
// (examples/echo_server.cpp).
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <functional>
#include <list>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include <weft/net/listener.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/fiber.hpp>
#include <weft/sync/semaphore.hpp>
#include <weft/sync/wait_group.hpp>

namespace weft::net {

namespace detail {
class connection_set;
}

struct serve_options {
  // Open connections at most. At the cap, when a new client waits, serve cancels
  // the oldest idle connection (one whose handler waits for its client's next
  // request, see connection_control) to make room for it, as nginx reuses idle
  // keep-alive connections (it looks every 50 ms); with none idle it stops
  // accepting until one closes: new clients wait in the listener's
  // backlog (their connect succeeds; they are served when a connection frees up),
  // as Go's LimitListener does. At least 1; 0, or more than PTRDIFF_MAX, is
  // weft::error(errc::invalid_argument).
  std::size_t max_connections = 10'000;
  // Once the listener is closed: how long connections busy with a request may
  // go on before they are cancelled (idle ones are cancelled at once).
  std::chrono::milliseconds shutdown_grace{5'000};
  // Called with each exception a handler lets escape (cancelled_error aside), in
  // that connection's fiber. Default: weft's unhandled exception handler
  // ("weft: exception in fiber 9 \"connection\" was never retrieved: ..."),
  // except for a client that went away (connection reset, broken pipe, the end of
  // the stream, a deadline it let pass), which ends the connection quietly, as
  // http::serve does.
  std::function<void(std::exception_ptr)> on_error;
  // The name of each connection's fiber (in reports and this_fiber::name()).
  std::string connection_name = "connection";
};

// connection_control is one connection's line to serve(). Used from the
// connection's own fiber (serve's scheduler thread) only.
class connection_control {
 public:
  // set_idle(true) while the handler waits for the client's next request (a
  // keep-alive connection between requests): a shutdown then cancels it at once
  // instead of granting it shutdown_grace, and serve may cancel it to make room
  // at max_connections. set_idle(false) when a request begins. Once draining(),
  // set_idle(true) cancels the calling fiber (its next blocking call throws
  // cancelled_error): the connection is idle, and the shutdown has begun.
  void set_idle(bool idle) noexcept;
  bool idle() const noexcept { return idle_; }
  // draining() is true once serve has begun to shut down: finish the request at
  // hand (no keep-alive), then return.
  bool draining() const noexcept { return draining_; }

 private:
  friend class detail::connection_set;
  bool idle_ = false;
  bool draining_ = false;
};

namespace detail {

// connection_set is serve's book of open connections: the cap on them, their
// fibers and controls, and the graceful shutdown. Not a template: only start()
// depends on the handler.
class connection_set {
 public:
  // Throws weft::error(errc::invalid_argument) naming `call` for a bad max_connections.
  connection_set(const serve_options& options, const char* call);
  connection_set(const connection_set&) = delete;
  connection_set& operator=(const connection_set&) = delete;

  // wait_for_slot waits until fewer than max_connections are open and takes a
  // slot; false (no slot) if `listener` was closed meanwhile. At the cap, once a
  // client waits, it cancels the oldest idle connection (see max_connections).
  // give_back_slot returns a slot that start() did not use.
  bool wait_for_slot(const socket_base& listener);
  void give_back_slot() noexcept { free_slots_.release(); }

  // start runs body(control) in a new fiber that owns the slot taken before.
  template <class Body>
  void start(Body body) {
    active_.add();
    const auto entry = open_.emplace(open_.end());
    try {
      entry->handle = spawn({.name = options_.connection_name}, [this, entry, body = std::move(body)]() mutable {
        // However the connection ends, the books are settled: its entry (which
        // detaches this fiber's own handle), its slot, the count shutdown waits on.
        struct settle {
          connection_set* set;
          std::list<open_connection>::iterator entry;
          ~settle() { set->finished(entry); }
        } on_exit{this, entry};
        try {
          body(entry->control);
        } catch (const cancelled_error&) {
          // the shutdown, or serve itself was cancelled
        } catch (...) {
          report(std::current_exception());
        }
      });
    } catch (...) {  // no fiber could be made (no memory for a stack): undo the books
      open_.erase(entry);
      active_.done();
      free_slots_.release();
      throw;
    }
  }

  // drain: the listener closed: idle connections are cancelled now, busy ones
  // after shutdown_grace; returns once all have ended.
  void drain();
  // abort: serve is being cancelled: every connection is cancelled, and this
  // returns once all have ended (their fibers use this object).
  void abort() noexcept;

 private:
  struct open_connection {
    fiber<void> handle;
    connection_control control;
  };
  void cancel(bool idle_only) noexcept;
  bool cancel_oldest_idle() noexcept;
  void finished(std::list<open_connection>::iterator entry) noexcept;
  void report(std::exception_ptr error) noexcept;

  const serve_options& options_;
  std::list<open_connection> open_;  // stable addresses; each entry removes itself
  semaphore free_slots_;
  wait_group active_;
};

// serve_as is serve() reporting its failures under the name `call` (http::serve
// runs its connections through it).
template <class Listener, class Handler>
void serve_as(Listener& listener, Handler& handler, const serve_options& options, const char* call) {
  using stream_type = std::remove_cvref_t<decltype(listener.accept(std::declval<std::error_code&>()))>;
  static_assert(std::is_invocable_v<Handler&, stream_type&, connection_control&> ||
                    std::is_invocable_v<Handler&, stream_type&>,
                "weft::net::serve: the handler takes (stream&) or (stream&, weft::net::connection_control&)");
  connection_set connections(options, call);
  std::error_code failure;
  try {
    for (;;) {
      if (!connections.wait_for_slot(listener)) break;  // closed while at the cap
      std::error_code ec;
      stream_type conn = listener.accept(ec);
      if (ec) {
        connections.give_back_slot();
        if (ec != errc::socket_closed) failure = ec;  // broken for good; closed: shutting down
        break;
      }
      connections.start([&handler, c = std::move(conn)](connection_control& control) mutable {
        struct closer {
          stream_type& stream;
          ~closer() { stream.close(); }
        } close_on_exit{c};
        if constexpr (std::is_invocable_v<Handler&, stream_type&, connection_control&>)
          handler(c, control);
        else
          handler(c);
      });
    }
    connections.drain();
  } catch (...) {
    connections.abort();
    throw;
  }
  if (failure) throw std::system_error(failure, std::string(call) + ": accept");
}

}  // namespace detail

// serve accepts connections on `listener` and runs `handler` for each in a fiber,
// until the listener is closed; see the top of this file.
template <class Listener, class Handler>
void serve(Listener& listener, Handler handler, const serve_options& options = {}) {
  detail::serve_as(listener, handler, options, "weft::net::serve");
}

}  // namespace weft::net
