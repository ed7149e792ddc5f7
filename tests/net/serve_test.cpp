// net::serve: the accept loop with one fiber per connection; its cap, its graceful
// shutdown, its error reporting and its cancellation.
#include <atomic>
#include <exception>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "net_test.hpp"

namespace {

using namespace weft_test;
using weft::net::connection_control;
using weft::net::tcp_listener;
using weft::net::tcp_stream;

// echo_line answers one read with what it read, then returns (closing the stream).
void echo_once(tcp_stream& conn) {
  char buf[256];
  const std::size_t n = conn.read_some(buf);
  conn.write_all({buf, n});
}

// ask sends `what` and returns the answer, read until the server closes.
std::string ask(const weft::net::endpoint& at, const std::string& what) {
  tcp_stream c = tcp_stream::connect(at);
  c.write_all(what);
  std::string got;
  char buf[256];
  while (std::size_t n = c.read_some(buf)) got.append(buf, n);
  return got;
}

TEST(Serve, EachConnectionIsServedInItsOwnFiberAndClosedAfterIt) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const auto at = listener.local_endpoint();
    std::vector<weft::fiber_id> handlers;
    auto server = weft::spawn([&] {
      weft::net::serve(listener, [&](tcp_stream& conn) {
        handlers.push_back(weft::this_fiber::id());
        EXPECT_EQ(weft::this_fiber::name(), "connection");
        echo_once(conn);
      });
    });
    std::vector<weft::fiber<std::string>> clients;
    for (int i = 0; i < 8; ++i) clients.push_back(weft::spawn([&, i] { return ask(at, "hello " + std::to_string(i)); }));
    for (int i = 0; i < 8; ++i) EXPECT_EQ(clients[i].join(), "hello " + std::to_string(i));  // EOF: closed
    listener.close();
    server.join();
    ASSERT_EQ(handlers.size(), 8u);
    for (std::size_t i = 1; i < handlers.size(); ++i) EXPECT_NE(handlers[i], handlers[0]);
  });
}

// At the cap, the next client is accepted only once a connection closes; it
// waits in the backlog meanwhile and is served then.
TEST(Serve, MaxConnectionsMakesTheNextClientWaitUntilOneCloses) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const auto at = listener.local_endpoint();
    int open = 0, most_open = 0;
    weft::event release_first;
    auto server = weft::spawn([&] {
      weft::net::serve_options options;
      options.max_connections = 1;
      weft::net::serve(listener, [&](tcp_stream& conn) {
        most_open = std::max(most_open, ++open);
        char buf[16];
        const std::size_t n = conn.read_some(buf);
        if (std::string(buf, n) == "first") release_first.wait();
        conn.write_all({buf, n});
        --open;
      }, options);
    });
    auto first = weft::spawn([&] { return ask(at, "first"); });
    weft::this_fiber::sleep_for(20ms);
    auto second = weft::spawn([&] { return ask(at, "second"); });
    weft::this_fiber::sleep_for(50ms);
    EXPECT_FALSE(second.done()) << "served beside the first, above max_connections";
    release_first.set();
    EXPECT_EQ(first.join(), "first");
    EXPECT_EQ(second.join(), "second");
    EXPECT_EQ(most_open, 1);
    listener.close();
    server.join();
  });
}

// Closing the listener: idle connections are cancelled at once; busy ones may
// finish within shutdown_grace (and see draining()), and one still busy after it
// is cancelled; serve returns once all have ended.
TEST(Serve, ClosingTheListenerCancelsIdleConnectionsAtOnceAndBusyOnesAfterTheGrace) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const auto at = listener.local_endpoint();
    int cancelled = 0, draining_seen = 0, busy = 0;
    weft::event finish_slow;
    auto server = weft::spawn([&] {
      weft::net::serve_options options;
      options.shutdown_grace = 300ms;
      weft::net::serve(listener, [&](tcp_stream& conn, connection_control& control) {
        char buf[16];
        control.set_idle(true);
        const std::size_t n = conn.read_some(buf);  // the idle ones wait here
        control.set_idle(false);
        ++busy;
        try {
          if (std::string(buf, n) == "slow") finish_slow.wait();
          if (std::string(buf, n) == "stuck") weft::this_fiber::sleep_for(1h);
        } catch (const weft::cancelled_error&) {
          ++cancelled;
          throw;
        }
        if (control.draining()) ++draining_seen;
        conn.write_all(std::string("done"));
      }, options);
    });
    std::vector<tcp_stream> idle;
    for (int i = 0; i < 3; ++i) idle.push_back(tcp_stream::connect(at));
    tcp_stream slow = tcp_stream::connect(at), stuck = tcp_stream::connect(at);
    slow.write_all(std::string("slow"));
    stuck.write_all(std::string("stuck"));
    while (busy < 2) weft::this_fiber::sleep_for(1ms);
    listener.close();
    for (auto& c : idle) {  // the idle ones end at once: EOF, while the busy ones go on
      char b[4];
      EXPECT_EQ(c.read_some(b), 0u);
    }
    EXPECT_EQ(cancelled, 0);
    finish_slow.set();  // within the grace: it finishes its request
    char b[8];
    EXPECT_EQ(std::string(b, slow.read_exact({b, 4})), "done");
    server.join();  // the stuck one is cancelled after the grace
    EXPECT_EQ(cancelled, 1);
    EXPECT_EQ(draining_seen, 1);
    EXPECT_EQ(stuck.read_some(b), 0u);
  });
}

// A handler's exception goes to on_error and ends only its own connection.
TEST(Serve, AHandlersExceptionGoesToOnErrorAndTheServerGoesOn) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const auto at = listener.local_endpoint();
    std::vector<std::string> errors;
    auto server = weft::spawn([&] {
      weft::net::serve_options options;
      options.on_error = [&](std::exception_ptr e) { errors.push_back(weft::describe_exception(e)); };
      weft::net::serve(listener, [&](tcp_stream& conn) {
        char buf[16];
        const std::size_t n = conn.read_some(buf);
        if (std::string(buf, n) == "fail") throw std::runtime_error("handler failed");
        conn.write_all({buf, n});
      }, options);
    });
    EXPECT_EQ(ask(at, "fail"), "");  // closed without an answer
    EXPECT_EQ(ask(at, "fine"), "fine");
    listener.close();
    server.join();
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0], "handler failed");
  });
}

// Without on_error, the exception reaches the unhandled exception handler with the
// connection fiber's name: it is never lost; a client that went away (reset, broken
// pipe, end of stream) ends its connection quietly, as in http::serve.
TEST(Serve, WithoutOnErrorTheExceptionIsReportedAsUnhandled) {
  std::vector<std::string> reported;
  auto previous = weft::set_unhandled_exception_handler(
      [&](weft::fiber_id, std::string_view name, std::exception_ptr e) {
        reported.push_back(std::string(name) + ": " + weft::describe_exception(e));
      });
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const auto at = listener.local_endpoint();
    auto server = weft::spawn([&] {
      weft::net::serve_options options;
      options.connection_name = "client";
      weft::net::serve(listener, [](tcp_stream& conn) {
        char b[1];
        if (conn.read_some(b) == 1 && b[0] == 'r')  // a client that went away: quiet
          throw std::system_error(std::make_error_code(std::errc::connection_reset), "weft::net::stream_socket::read_some");
        throw std::runtime_error("lost?");
      }, options);
    });
    EXPECT_EQ(ask(at, "r"), "");
    EXPECT_EQ(ask(at, "x"), "");
    listener.close();
    server.join();
  });
  weft::set_unhandled_exception_handler(previous);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0], "client: lost?");
}

// Cancelling the fiber in serve cancels every connection, waits for them, and
// throws cancelled_error.
TEST(Serve, CancellingServeCancelsEveryConnectionAndWaitsForThem) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const auto at = listener.local_endpoint();
    int running = 0, cancelled = 0;
    auto server = weft::spawn([&] {
      weft::net::serve(listener, [&](tcp_stream&) {
        ++running;
        try {
          weft::this_fiber::sleep_for(1h);
        } catch (const weft::cancelled_error&) {
          ++cancelled;
          --running;
          throw;
        }
      });
    });
    std::vector<tcp_stream> clients;
    for (int i = 0; i < 4; ++i) clients.push_back(tcp_stream::connect(at));
    while (running < 4) weft::this_fiber::sleep_for(1ms);
    server.cancel();
    EXPECT_THROW(server.join(), weft::cancelled_error);
    EXPECT_EQ(cancelled, 4);
    EXPECT_EQ(running, 0);
  });
}

TEST(Serve, MisuseIsReported) {
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    weft::net::serve_options options;
    options.max_connections = 0;
    try {
      weft::net::serve(listener, [](tcp_stream&) {}, options);
      ADD_FAILURE() << "max_connections 0 accepted";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
      EXPECT_EQ(std::string(e.what()).rfind("weft::net::serve: ", 0), 0u) << e.what();
    }
  });
  tcp_listener outside;
  try {
    weft::net::serve(outside, [](tcp_stream&) {});
    ADD_FAILURE() << "serve ran outside a fiber";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::not_in_fiber);
  }
}

}  // namespace

namespace {

// At max_connections with every connection busy, serve waits for a slot; closing
// the listener then still shuts it down (it used to wait until a connection ended
// by itself, and idle ones never did).
TEST(Serve, ClosingTheListenerAtTheCapShutsServeDown) {
  hang_guard guard;
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const auto at = listener.local_endpoint();
    int cancelled = 0, started = 0;
    auto server = weft::spawn([&] {
      weft::net::serve_options options;
      options.max_connections = 2;
      options.shutdown_grace = 10ms;
      weft::net::serve(listener, [&](tcp_stream&) {
        ++started;
        try {
          weft::this_fiber::sleep_for(1h);  // busy, never idle
        } catch (const weft::cancelled_error&) {
          ++cancelled;
          throw;
        }
      }, options);
    });
    std::vector<tcp_stream> clients;
    for (int i = 0; i < 3; ++i) clients.push_back(tcp_stream::connect(at));  // the third waits in the backlog
    while (started < 2) weft::this_fiber::sleep_for(1ms);
    listener.close();
    server.join();
    EXPECT_EQ(started, 2);
    EXPECT_EQ(cancelled, 2);
  });
}

// At max_connections, an idle connection (between requests) makes room for a new
// client, oldest first, as nginx reuses idle keep-alive connections; busy ones are
// left alone.
TEST(Serve, AtTheCapTheOldestIdleConnectionMakesRoom) {
  hang_guard guard;
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    const auto at = listener.local_endpoint();
    auto server = weft::spawn([&] {
      weft::net::serve_options options;
      options.max_connections = 2;
      weft::net::serve(listener, [&](tcp_stream& conn, connection_control& control) {
        char buf[16];
        for (;;) {
          control.set_idle(true);
          const std::size_t n = conn.read_some(buf);
          control.set_idle(false);
          if (n == 0) return;
          conn.write_all({buf, n});
        }
      }, options);
    });
    auto talk = [](tcp_stream& c, const std::string& what) {
      c.write_all(what);
      char b[16];
      std::error_code ec;
      const std::size_t n = c.read_some(b, {}, ec);
      if (ec) return "(" + what + ": " + ec.message() + ")";
      return std::string(b, n);
    };
    tcp_stream first = tcp_stream::connect(at), second = tcp_stream::connect(at);
    EXPECT_EQ(talk(first, "1"), "1");
    EXPECT_EQ(talk(second, "2"), "2");
    tcp_stream third = tcp_stream::connect(at);  // at the cap: the oldest idle (first) goes
    EXPECT_EQ(talk(third, "3"), "3");
    char b[4];
    std::error_code ec;
    EXPECT_EQ(first.read_some(b, {}, ec), 0u);  // closed by the server
    EXPECT_TRUE(!ec || ec == std::errc::connection_reset) << ec.message();
    EXPECT_EQ(talk(second, "again"), "again");
    listener.close();
    server.join();
  });
}

}  // namespace
