// weft::http: the server answered by raw bytes and by the client (keep-alive,
// pipelining, chunked bodies both ways, HEAD, HTTP/1.0, every refusal status,
// handler failures, timeouts, shutdown), and the client's URL handling, pool,
// redirects and deadlines.
#include <weft/http/client.hpp>
#include <weft/http/server.hpp>

#include <sys/socket.h>

#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_server.hpp"

namespace {

using namespace std::chrono_literals;
using namespace weft_test;
namespace http = weft::http;
namespace net = weft::net;

// raw sends bytes on a new connection and returns everything the server answers
// until it closes the connection (or 10 s pass: a hang guard).
std::string raw(const test_server& s, std::string_view bytes) {
  auto conn = net::tcp_stream::connect(s.at());
  conn.write_all(bytes);
  std::string answer;
  char buf[4096];
  while (std::size_t n = conn.read_some(buf, 10s)) answer.append(buf, n);
  return answer;
}

// reporting_into: server options whose on_error keeps what() of each error.
http::server_options reporting_into(std::vector<std::string>& reported) {
  http::server_options o;
  o.on_error = [&reported](std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      reported.emplace_back(x.what());
    }
  };
  return o;
}

int count(std::string_view text, std::string_view what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string_view::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(HttpServer, AnswersTheClientAndKeepsTheConnection) {
  run_checked([] {
    test_server s(echo);
    http::client c;
    for (int i = 0; i < 3; ++i) {
      http::response r = c.get(s.url("/hello?x=1"), 10s);
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.body, "GET /hello?x=1 ");
      EXPECT_EQ(r.headers.value("Server"), "weft");
      EXPECT_TRUE(r.headers.contains("Date"));
      EXPECT_EQ(c.idle_connections(), 1u);  // one connection, reused
    }
    http::response p = c.post(s.url("/items"), "payload", {{"Content-Type", "text/plain"}}, 10s);
    EXPECT_EQ(p.body, "POST /items payload");
  });
}

TEST(HttpServer, PipelinedRequestsAreAnsweredInOrder) {
  run_checked([] {
    test_server s(echo);
    const std::string answer = raw(s,
                                   "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                                   "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                                   "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const auto a = answer.find("GET /a "), b = answer.find("POST /b abc"), c = answer.find("GET /c ");
    ASSERT_NE(a, std::string::npos);
    ASSERT_NE(b, std::string::npos);
    ASSERT_NE(c, std::string::npos);
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    EXPECT_EQ(count(answer, "HTTP/1.1 200 OK\r\n"), 3);
    EXPECT_EQ(count(answer, "Connection: close\r\n"), 1);
  });
}

TEST(HttpServer, ChunkedRequestBodyWithExtensionsAndTrailers) {
  run_checked([] {
    test_server s(echo);
    const std::string answer = raw(s,
                                   "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                   "Connection: close\r\n\r\n"
                                   "5;note=first\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n");
    EXPECT_NE(answer.find("POST /up hello world"), std::string::npos) << answer;
  });
}

// The fuzz target's find (Boost 1.74's Beast asserted here in builds with
// assertions on): a chunked body whose only chunk is the last, in pieces.
TEST(HttpServer, ChunkedBodyWhoseOnlyChunkIsTheLastArrivesInPieces) {
  run_checked([] {
    test_server s(echo);
    auto conn = net::tcp_stream::connect(s.at());
    for (std::string_view piece : {std::string_view("POST /empty HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                                                    "Connection: close\r\n\r\n0\r\n"),
                                   std::string_view("\r"), std::string_view("\n")}) {
      conn.write_all(piece);
      weft::this_fiber::sleep_for(5ms);  // so the server reads each piece alone
    }
    std::string answer;
    char buf[4096];
    while (std::size_t n = conn.read_some(buf, 10s)) answer.append(buf, n);
    EXPECT_NE(answer.find("200"), std::string::npos) << answer;
    EXPECT_NE(answer.find("POST /empty "), std::string::npos) << answer;
  });
}

TEST(HttpServer, HeadGetsTheHeadWithoutTheBody) {
  run_checked([] {
    test_server s([](http::request&) { return http::response::text(200, "twelve bytes"); });
    const std::string answer = raw(s, "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_NE(answer.find("Content-Length: 12\r\n"), std::string::npos) << answer;
    EXPECT_TRUE(answer.ends_with("\r\n\r\n")) << answer;
    http::client c;
    http::response r = c.head(s.url("/"), 10s);  // must not wait for 12 bytes
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "");
  });
}

TEST(HttpServer, Http10ClosesUnlessAskedToKeepAlive) {
  run_checked([] {
    test_server s(echo);
    const std::string closed = raw(s, "GET /old HTTP/1.0\r\n\r\n");
    EXPECT_NE(closed.find("Connection: close\r\n"), std::string::npos) << closed;
    EXPECT_NE(closed.find("GET /old "), std::string::npos);
    const std::string kept = raw(s,
                                 "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                                 "GET /2 HTTP/1.0\r\n\r\n");
    EXPECT_NE(kept.find("Connection: keep-alive\r\n"), std::string::npos) << kept;
    EXPECT_NE(kept.find("GET /2 "), std::string::npos) << kept;
  });
}

TEST(HttpServer, BadInputIsAnsweredThenClosed) {
  run_checked([] {
    http::server_options o;
    o.max_header_bytes = 1024;
    o.max_body_bytes = 100;
    test_server s(echo, o);
    const auto status_of = [&](std::string_view bytes) {
      const std::string answer = raw(s, bytes);
      return answer.substr(0, answer.find("\r\n"));
    };
    EXPECT_EQ(status_of("GARBAGE\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 400 Bad Request");  // no Host
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"),
              "HTTP/1.1 431 Request Header Fields Too Large");
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"),
              "HTTP/1.1 413 Content Too Large");
    EXPECT_EQ(status_of("GET / HTTP/2.0\r\nHost: x\r\n\r\n"), "HTTP/1.1 505 HTTP Version Not Supported");
    // Request smuggling: two framings at once.
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "0\r\n\r\n"),
              "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
              "HTTP/1.1 400 Bad Request");
    // A Transfer-Encoding that does not end in chunked has no trustworthy length
    // (RFC 9112 6.3): one 400 and a close, never the body read as a second request.
    for (const char* coding : {"identity", "gzip", "chunked, gzip"}) {
      const std::string answer = raw(s, std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + coding +
                                            "\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
      EXPECT_TRUE(answer.starts_with("HTTP/1.1 400 Bad Request\r\n")) << coding << ": " << answer;
      EXPECT_EQ(count(answer, "HTTP/1.1 "), 1) << coding << ": " << answer;
    }
    EXPECT_EQ(status_of("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), "HTTP/1.1 400 Bad Request");
    // A chunk size line or a trailer longer than the header limit is refused, not
    // buffered without end (Beast bounds neither).
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=" +
                        std::string(4000, 'e')),
              "HTTP/1.1 400 Bad Request");
    EXPECT_EQ(status_of("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: " +
                        std::string(4000, 't')),
              "HTTP/1.1 400 Bad Request");
  });
}

// A complete request followed by the start of the next: the first is answered at
// once, not when the second is complete (nor do answers pile up unwritten).
TEST(HttpServer, PipelinedAnswerGoesOutWhileTheNextRequestIsIncomplete) {
  run_checked([] {
    test_server s(echo);
    auto conn = net::tcp_stream::connect(s.at());
    conn.write_all("GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\n");
    std::string answer;
    char buf[4096];
    while (answer.find("/first") == std::string::npos) {
      const std::size_t n = conn.read_some(buf, 10s);  // (a hang guard: it used to wait for the header timeout)
      ASSERT_NE(n, 0u) << answer;
      answer.append(buf, n);
    }
    EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 OK\r\n")) << answer;
    EXPECT_EQ(answer.find("/second"), std::string::npos) << answer;
    conn.write_all("Host: x\r\nConnection: close\r\n\r\n");
    while (std::size_t n = conn.read_some(buf, 10s)) answer.append(buf, n);
    EXPECT_NE(answer.find("/second"), std::string::npos) << answer;
  });
}

TEST(HttpServer, SlowHeaderGets408AndIdleConnectionCloses) {
  run_checked([] {
    http::server_options o;
    o.header_timeout = 100ms;
    o.idle_timeout = 100ms;
    test_server s(echo, o);
    const std::string slow = raw(s, "GET / HTTP/1.1\r\nHost:");
    EXPECT_TRUE(slow.starts_with("HTTP/1.1 408 Request Timeout\r\n")) << slow;
    EXPECT_EQ(raw(s, ""), "");  // idle: closed without a word
  });
}

TEST(HttpServer, HandlerFailureIs500AndReported) {
  run_checked([] {
    int reported = 0;
    http::server_options o;
    o.on_error = [&](std::exception_ptr) { ++reported; };
    test_server s(
        [](http::request& r) -> http::response {
          if (r.path() == "/boom") throw std::runtime_error("boom");
          return http::response::text(200, "fine");
        },
        o);
    http::client c;
    EXPECT_EQ(c.get(s.url("/boom"), 10s).status, 500);
    EXPECT_EQ(c.get(s.url("/ok"), 10s).body, "fine");  // same connection, still usable
    EXPECT_EQ(reported, 1);
  });
}

TEST(HttpServer, AResponseThatWouldBreakItsLinesOrIsNotFinalIs500AndReported) {
  run_checked([] {
    std::vector<std::string> reports;
    const http::server_options o = reporting_into(reports);
    const auto reported = [&] { return reports.empty() ? std::string() : reports.back(); };
    test_server s(
        [](http::request& req) {
          if (req.path() == "/100") return http::response::text(100, "not final");
          if (req.path() == "/1000") return http::response::text(1000, "four digits");
          http::response r = http::response::text(200, "x");
          r.headers.add("X-Split", "a\r\nSet-Cookie: evil=1");  // response splitting
          return r;
        },
        o);
    const std::string answer = raw(s, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(answer.rfind("HTTP/1.1 500 ", 0), 0u) << answer;
    EXPECT_EQ(answer.find("evil"), std::string::npos) << answer;
    EXPECT_NE(reported().find("control character (CR, LF, NUL, ...) in the value of field X-Split"), std::string::npos)
        << reported();
    for (const std::string status : {"100", "1000"}) {
      const std::string bad = raw(s, "GET /" + status + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
      EXPECT_EQ(bad.rfind("HTTP/1.1 500 ", 0), 0u) << bad;
      EXPECT_NE(reported().find("status " + status), std::string::npos) << reported();
    }
  });
}

TEST(HttpServer, StreamedBodyIsChunkedOrRawForHttp10) {
  run_checked([] {
    test_server s([](http::request&) {
      http::response r;
      r.stream = [](http::body_writer& w) {
        for (int i = 0; i < 3; ++i) w.write("part" + std::to_string(i) + ";");
      };
      return r;
    });
    http::client c;
    std::string pieces;
    http::response r = c.send(http::request_builder("GET", s.url("/")), [&](std::string_view b) { pieces += b; }, 10s);
    EXPECT_EQ(r.headers.value("Transfer-Encoding"), "chunked");
    EXPECT_EQ(pieces, "part0;part1;part2;");
    const std::string old = raw(s, "GET / HTTP/1.0\r\n\r\n");
    EXPECT_TRUE(old.ends_with("\r\n\r\npart0;part1;part2;")) << old;
  });
}

// A stream whose length is known (a file's size) goes out with Content-Length:
// to a 1.1 client not chunked, to a 1.0 client on a connection that stays open,
// to HEAD as the length alone. Writing fewer or more bytes than it said is the
// stream's error: reported, and the connection closes (the client sees it short).
TEST(HttpServer, AStreamWithAKnownLengthGoesOutWithContentLength) {
  run_checked([] {
    std::vector<std::string> reported;
    const http::server_options o = reporting_into(reported);
    test_server s(
        [](http::request& req) {
          http::response r;
          const std::size_t wrote = req.path() == "/short" ? 2 : req.path() == "/long" ? 4 : 3;
          r.content_length = 18;  // three parts of six
          r.stream = [wrote](http::body_writer& w) {
            for (std::size_t i = 0; i < wrote; ++i) w.write("part" + std::to_string(i) + ";");
          };
          return r;
        },
        o);
    http::client c;
    std::string pieces;
    http::response r = c.send(http::request_builder("GET", s.url("/")), [&](std::string_view b) { pieces += b; }, 10s);
    EXPECT_EQ(r.headers.value("Content-Length"), "18");
    EXPECT_FALSE(r.headers.contains("Transfer-Encoding"));
    EXPECT_EQ(pieces, "part0;part1;part2;");
    EXPECT_EQ(c.head(s.url("/"), 10s).headers.value("Content-Length"), "18");
    const std::string old = raw(s, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n");
    EXPECT_EQ(count(old, "Content-Length: 18\r\n"), 2) << old;  // the first kept the connection open
    EXPECT_EQ(count(old, "part0;part1;part2;"), 2) << old;
    EXPECT_TRUE(reported.empty());
    EXPECT_THROW(c.get(s.url("/short"), 10s), std::system_error);  // the connection closed mid-body
    const std::string long_answer = raw(s, "GET /long HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_TRUE(long_answer.ends_with("part0;part1;part2;")) << long_answer;  // nothing past 18, no second answer
    ASSERT_EQ(reported.size(), 2u);
    EXPECT_NE(reported[0].find("wrote 12 bytes of its content_length 18"), std::string::npos) << reported[0];
    EXPECT_NE(reported[1].find("past the response's content_length"), std::string::npos) << reported[1];
  });
}

TEST(HttpServer, ExpectContinueIsAnsweredBeforeTheBody) {
  run_checked([] {
    test_server s(echo);
    auto conn = net::tcp_stream::connect(s.at());
    conn.write_all("PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
    std::string got(25, '\0');
    conn.read_exact(got, 10s);
    EXPECT_EQ(got, "HTTP/1.1 100 Continue\r\n\r\n");
    conn.write_all("data");
    std::string answer;
    char buf[4096];
    while (answer.find("PUT /f data") == std::string::npos) {
      const std::size_t n = conn.read_some(buf, 10s);
      ASSERT_NE(n, 0u);
      answer.append(buf, n);
    }
  });
}

// RFC 9110 10.1.1: an HTTP/1.0 client's Expect: 100-continue is ignored.
TEST(HttpServer, ExpectContinueFromAnHttp10ClientIsIgnored) {
  run_checked([] {
    test_server s(echo);
    const std::string answer = raw(s, "PUT /f HTTP/1.0\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\ndata");
    EXPECT_EQ(answer.find("100 Continue"), std::string::npos) << answer;
    EXPECT_NE(answer.find("PUT /f data"), std::string::npos) << answer;
  });
}

// RFC 9112 2.2: empty lines before a request line are skipped, not a 400.
TEST(HttpServer, EmptyLinesBeforeARequestAreSkipped) {
  run_checked([] {
    test_server s(echo);
    const std::string answer = raw(s,
                                   "\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                                   "\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(count(answer, "HTTP/1.1 200 OK\r\n"), 2) << answer;
    EXPECT_NE(answer.find("GET /b "), std::string::npos) << answer;
    // A CR alone is not an empty line.
    EXPECT_EQ(raw(s, "\r\r\rGET /c HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  });
}

// Empty lines do not keep a connection: once one came, the request line must
// follow within header_timeout (they used to renew idle_timeout, so a CRLF a
// minute held a connection for ever).
TEST(HttpServer, EmptyLinesAloneDoNotHoldAConnection) {
  run_checked([] {
    http::server_options o;
    o.header_timeout = 200ms;
    test_server s(echo, o);
    auto conn = net::tcp_stream::connect(s.at());
    bool closed = false;
    char buf[256];
    for (int i = 0; i < 100 && !closed; ++i) {  // 5 s at most: a hang guard
      std::error_code ec;
      conn.write_all("\r\n", ec);
      if (ec) {
        closed = true;
        break;
      }
      try {
        closed = conn.read_some(buf, 50ms) == 0;
      } catch (const weft::timeout_error&) {
      } catch (const std::system_error&) {
        closed = true;  // reset
      }
    }
    EXPECT_TRUE(closed);
  });
}

// Answers to pipelined requests go out once 64 KiB of them wait: a client that
// pipelines many and does not read holds the server to what the kernel's buffers
// take, and gets every answer once it reads. All the answers one read brought used
// to gather first (here 490 x 16 KB: 8 MB per connection, memory without bound),
// in one write whose one write_timeout also cut off a client reading slowly.
TEST(HttpServer, PipelinedAnswersWaitForAClientThatDoesNotRead) {
  run_checked([] {
    const std::string body(16000, 'x');
    int handled = 0;
    // Small kernel buffers on both sides (an accepted socket takes the listener's
    // send buffer), so what the kernel holds does not depend on the machine's TCP
    // settings: about 100 KB, a few answers.
    auto listener = net::tcp_listener::bind(loopback_any_port());
    const int small = 32 * 1024;
    ASSERT_EQ(::setsockopt(listener.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    auto server = weft::spawn([&] {
      http::serve(listener, [&](http::request&) {
        ++handled;
        return http::response::text(200, body);
      });
    });
    auto conn = net::tcp_stream::connect(listener.local_endpoint());
    ASSERT_EQ(::setsockopt(conn.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    constexpr int requests = 490;  // one 16 KiB read of the server's holds them all
    std::string pipeline;
    for (int i = 0; i < requests; ++i) pipeline += "GET /f HTTP/1.1\r\nHost: x\r\n\r\n";
    pipeline += "GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    conn.write_all(pipeline);
    weft::this_fiber::sleep_for(200ms);  // the server answers what the buffers take, then waits
    EXPECT_LT(handled, 50);
    std::string answer;
    std::vector<char> buf(64 * 1024);
    while (std::size_t n = conn.read_some(buf, 10s)) answer.append(buf.data(), n);
    EXPECT_EQ(handled, requests + 1);
    EXPECT_EQ(count(answer, "HTTP/1.1 200 OK\r\n"), requests + 1);
    listener.close();
    server.join();
  });
}

// write_timeout bounds a wait without progress, not the whole answer (nginx's
// send_timeout): a client that reads a large answer slowly, but steadily, gets
// all of it; one that stops reading is dropped.
TEST(HttpServer, ASlowReaderGetsALargeAnswerWhole) {
  run_checked([] {
    const std::string body(3 << 20, 'x');
    http::server_options o;
    o.write_timeout = 1s;  // the slow transfer below takes several seconds
    // Small kernel buffers on both sides, so the answer waits for the reader.
    auto listener = net::tcp_listener::bind(loopback_any_port());
    const int small = 32 * 1024;
    ASSERT_EQ(::setsockopt(listener.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    auto server = weft::spawn([&] { http::serve(listener, [&](http::request&) { return http::response::text(200, body); }, o); });
    const auto fetch = [&](bool stop_reading) {
      auto conn = net::tcp_stream::connect(listener.local_endpoint());
      EXPECT_EQ(::setsockopt(conn.native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
      conn.write_all(std::string_view("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
      std::string answer;
      std::vector<char> buf(16 * 1024);
      std::error_code ec;
      bool stopped = false;
      while (std::size_t n = conn.read_some(buf, 10s, ec)) {
        answer.append(buf.data(), n);
        if (stop_reading && !stopped && answer.size() > 100'000) {
          weft::this_fiber::sleep_for(2500ms);  // past write_timeout: the server drops it
          stopped = true;
        }
        if (!stopped) weft::this_fiber::sleep_for(10ms);  // at most 16 KiB per 10 ms
      }
      return answer;
    };
    const std::string slow = fetch(false);
    EXPECT_NE(slow.find("\r\n\r\n"), std::string::npos);
    EXPECT_EQ(slow.size() - (slow.find("\r\n\r\n") + 4), body.size());  // was cut off after 1 s
    const std::string stalled = fetch(true);
    EXPECT_LT(stalled.size(), body.size());  // dropped
    listener.close();
    server.join();
  });
}

TEST(HttpServer, ShutdownLetsTheBusyRequestFinish) {
  run_checked([] {
    auto listener = net::tcp_listener::bind(loopback_any_port());
    const std::string url = "http://" + listener.local_endpoint().to_string() + "/";
    weft::event in_handler, release;
    auto server = weft::spawn([&] {
      http::serve(listener, [&](http::request&) {
        in_handler.set();
        release.wait();
        return http::response::text(200, "finished");
      });
    });
    auto request = weft::spawn([&] { return http::client().get(url, 10s); });
    in_handler.wait();
    listener.close();  // serve stops accepting but waits for the busy connection
    weft::this_fiber::sleep_for(10ms);
    EXPECT_FALSE(server.done());
    release.set();
    http::response r = request.join();
    EXPECT_EQ(r.body, "finished");
    EXPECT_EQ(r.headers.value("Connection"), "close");
    server.join();
  });
}

TEST(HttpServer, AClientThatDisconnectsCancelsItsHandlerWhenAsked) {
  run_checked([] {
    weft::event in_handler, unwound;
    http::server_options o;
    o.cancel_on_disconnect = true;
    test_server s(
        [&](http::request& r) -> http::response {
          if (r.target == "/slow") {
            struct mark {
              weft::event& e;
              ~mark() { e.set(); }
            } m{unwound};
            in_handler.set();
            weft::this_fiber::sleep_for(1h);
          }
          if (r.target == "/first") weft::this_fiber::sleep_for(20ms);  // the next request arrives meanwhile
          return http::response::text(200, "ok " + r.target + "\n");
        },
        o);
    {
      auto conn = net::tcp_stream::connect(s.at());
      conn.write_all("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
      in_handler.wait();
    }  // the client goes away while its handler sleeps
    EXPECT_TRUE(unwound.wait_for(10s)) << "the handler was not cancelled";
    // Bytes that arrive while a handler runs are a request, not a disconnect.
    const std::string answer = raw(s, "GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
                                      "GET /second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(count(answer, "HTTP/1.1 200"), 2) << answer;
    EXPECT_LT(answer.find("ok /first"), answer.find("ok /second")) << answer;
  });
}

TEST(HttpServer, CancellingServeCancelsEveryConnection) {
  run_checked([] {
    auto listener = net::tcp_listener::bind(loopback_any_port());
    const std::string url = "http://" + listener.local_endpoint().to_string() + "/";
    weft::event in_handler, never;
    auto server = weft::spawn([&] {
      http::serve(listener, [&](http::request&) -> http::response {
        in_handler.set();
        never.wait();
        return http::response::text(200, "unreachable");
      });
    });
    auto request = weft::spawn([&] { return http::client().get(url, 10s); });
    in_handler.wait();
    server.cancel();
    EXPECT_THROW(server.join(), weft::cancelled_error);
    EXPECT_THROW(request.join(), std::system_error);  // the connection closed unanswered
  });
}

// Cancelled while it waits for busy connections to finish after the listener
// closed: serve must still wait for every connection fiber before its frame goes
// (they use its bookkeeping; ASan catches a use after free here).
TEST(HttpServer, CancelledDuringShutdownStillWaitsForItsConnections) {
  run_checked([] {
    auto listener = net::tcp_listener::bind(loopback_any_port());
    const std::string url = "http://" + listener.local_endpoint().to_string() + "/";
    weft::event in_handler, never;
    auto server = weft::spawn([&] {
      http::serve(listener, [&](http::request&) -> http::response {
        in_handler.set();
        never.wait();
        return http::response::text(200, "unreachable");
      });
    });
    auto request = weft::spawn([&] { return http::client().get(url, 10s); });
    in_handler.wait();
    listener.close();
    weft::this_fiber::sleep_for(5ms);  // serve is in its shutdown grace period
    server.cancel();
    EXPECT_THROW(server.join(), weft::cancelled_error);
    EXPECT_THROW(request.join(), std::system_error);
  });
}

// A stream callback that throws after the head went out: the exception goes to
// on_error, the client sees the body cut short, and serve still shuts down.
TEST(HttpServer, ThrowingStreamCallbackIsReportedAndCutsTheBodyShort) {
  run_checked([] {
    std::vector<std::string> reported;
    const http::server_options o = reporting_into(reported);
    test_server s(
        [](http::request&) {
          http::response r = http::response::text(200, "");
          r.stream = [](http::body_writer& out) {
            out.write("part one\n");
            throw std::runtime_error("mid-stream failure");
          };
          return r;
        },
        o);
    http::client c;
    try {
      c.get(s.url("/"), 10s);
      ADD_FAILURE() << "a body cut short must not look complete";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), http::error::bad_message) << e.what();
    }
    ASSERT_EQ(reported.size(), 1u);
    EXPECT_EQ(reported[0], "mid-stream failure");
  });  // ~test_server: closes the listener and joins serve, which must end
}

// A listener shut down behind weft's back makes accept fail for good (EINVAL): serve
// must end with that error, not retry it forever at full CPU.
TEST(HttpServer, ListenerBrokenBehindItsBackEndsServeWithTheError) {
  run_checked([] {
    auto listener = net::tcp_listener::bind(loopback_any_port());
    auto server = weft::spawn([&] { http::serve(listener, echo); });
    weft::this_fiber::sleep_for(5ms);  // serve is parked in accept
    ::shutdown(listener.native_handle(), SHUT_RDWR);
    try {
      server.join();
      ADD_FAILURE() << "serve returned normally";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::invalid_argument) << e.what();
      EXPECT_NE(std::string(e.what()).find("weft::http::serve: accept"), std::string::npos) << e.what();
    }
  });
}

// A request's path, of the origin form and of the absolute form a server must
// accept too (RFC 9112 3.2.2).
TEST(HttpRequest, PathOfOriginAndAbsoluteForms) {
  http::request r;
  const auto path_of = [&](std::string target) {
    r.target = std::move(target);
    return std::string(r.path());
  };
  EXPECT_EQ(path_of("/a/b?q=1"), "/a/b");
  EXPECT_EQ(path_of("http://host:8080/a/b?q=1"), "/a/b");
  EXPECT_EQ(path_of("HTTPS://host"), "/");
  EXPECT_EQ(path_of("http://host?q"), "/");
  EXPECT_EQ(path_of("/x://y"), "/x://y");
  EXPECT_EQ(r.query(), "");
}

TEST(HttpClient, UrlsAreTakenApartOrRefused) {
  const http::url u = http::url::parse("HTTP://user@[::1]:8080/a/b?q=1#frag");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/a/b?q=1");
  EXPECT_EQ(u.authority(), "[::1]:8080");
  EXPECT_EQ(http::url::parse("http://example.com?x").target, "/?x");
  EXPECT_EQ(u.resolve("c").target, "/a/c");
  EXPECT_EQ(u.resolve("/d").target, "/d");
  EXPECT_EQ(u.resolve("http://other/").host, "other");
  // RFC 3986 5.2.2 and 5.4: a query alone keeps the path; dot segments go.
  EXPECT_EQ(u.resolve("?page=2").target, "/a/b?page=2");
  EXPECT_EQ(u.resolve("../c?x=1").target, "/c?x=1");
  EXPECT_EQ(u.resolve("./c/./d/../e").target, "/a/c/e");
  EXPECT_EQ(u.resolve("..").target, "/");
  EXPECT_EQ(u.resolve("/x/../y/").target, "/y/");
  EXPECT_EQ(u.resolve("").target, "/a/b?q=1");
  // "://" in a relative reference's query does not make it absolute (a scheme must
  // lead: RFC 3986 3.1); login redirects carry such queries.
  EXPECT_EQ(u.resolve("/login?next=https://example.com/home").to_string(),
            "http://[::1]:8080/login?next=https://example.com/home");
  EXPECT_EQ(u.resolve("login?next=http://x/").target, "/a/login?next=http://x/");
  EXPECT_EQ(u.resolve("HTTPS://other:9/p").to_string(), "https://other:9/p");
  try {
    u.resolve("/a b");
    ADD_FAILURE() << "a Location with a space was followed";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), http::error::bad_url);
  }
  const auto code_of = [](std::string_view text) {
    try {
      http::url::parse(text);
    } catch (const std::system_error& e) {
      return e.code();
    }
    return std::error_code();
  };
  EXPECT_EQ(code_of("example.com/x"), http::error::bad_url);
  EXPECT_EQ(code_of("http://"), http::error::bad_url);
  EXPECT_EQ(code_of("http://host:99999/"), http::error::bad_url);
  const http::url secure = http::url::parse("https://example.com/x");
  EXPECT_EQ(secure.port, 443);
  EXPECT_EQ(secure.authority(), "example.com");  // the default port is not named
  EXPECT_EQ(http::url::parse("https://example.com:80/").authority(), "example.com:80");
  EXPECT_EQ(http::url::parse("http://example.com:443/").authority(), "example.com:443");
  EXPECT_EQ(code_of("ftp://example.com/"), http::error::unsupported_scheme);
  EXPECT_EQ(code_of("http://a b/"), http::error::bad_url);  // not passed on to the resolver
  // The message says what is wrong, and with which part.
  const auto what_of = [](const char* text) -> std::string {
    try {
      http::url::parse(text);
    } catch (const std::system_error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(what_of("http://host:99999/").find("port"), std::string::npos) << what_of("http://host:99999/");
  EXPECT_NE(what_of("htp://x").find("scheme \"htp\""), std::string::npos) << what_of("htp://x");
  EXPECT_NE(what_of("http://[::1/").find("']'"), std::string::npos) << what_of("http://[::1/");
  // Said once, without the error category's own text tacked on; a weft::error.
  EXPECT_EQ(what_of("example.com/x"),
            "weft::http::client: cannot use URL \"example.com/x\": no scheme (it must start with http:// or https://)");
  EXPECT_THROW(http::url::parse("nonsense"), weft::error);
  // A scheme that is not http's is named as one, with or without "//"; a host and
  // port without a scheme is not taken for a scheme ("localhost") and a path.
  EXPECT_EQ(code_of("mailto:someone@example.com"), http::error::unsupported_scheme);
  EXPECT_EQ(code_of("htp:/nonsense"), http::error::unsupported_scheme);
  EXPECT_NE(what_of("localhost:8080/x").find("no scheme"), std::string::npos) << what_of("localhost:8080/x");
  EXPECT_NE(what_of("http:/x").find("no \"//\" after the scheme"), std::string::npos) << what_of("http:/x");
  // A Location is named as one, not as "URL" (the caller gave no such URL).
  try {
    u.resolve("ftp://files.example.com/x");
    ADD_FAILURE() << "an ftp Location was followed";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code(), http::error::unsupported_scheme);
    EXPECT_NE(std::string(e.what()).find("of Location \"ftp://files.example.com/x\""), std::string::npos) << e.what();
  }
}

TEST(HttpClient, RedirectsOnlyWhenAskedAndWithALimit) {
  run_checked([] {
    test_server s([](http::request& r) {
      if (r.path() == "/loop") {
        http::response res = http::response::text(302, "");
        res.headers.set("Location", "/loop");
        return res;
      }
      if (r.path() == "/old-with-body") {
        http::response res = http::response::text(302, "moved\n");
        res.headers.set("Location", "new");
        return res;
      }
      if (r.path() == "/old") {
        http::response res = http::response::text(303, "");
        res.headers.set("Location", "new");
        return res;
      }
      return echo(r);
    });
    http::client plain;
    EXPECT_EQ(plain.get(s.url("/old"), 10s).status, 303);
    http::client following({.follow_redirects = true, .max_redirects = 3});
    http::response r = following.post(s.url("/old"), "body", {}, 10s);
    EXPECT_EQ(r.body, "GET /new ");  // 303: continue as a GET without the body
    try {
      following.get(s.url("/loop"), 10s);
      ADD_FAILURE() << "a redirect loop ended";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), http::error::too_many_redirects);
    }
    // A streamed answer gets the final body only, not the redirect's.
    std::string streamed;
    const http::response final_answer = following.send(
        http::request_builder("GET", s.url("/old-with-body")), [&](std::string_view b) { streamed += b; }, 10s);
    EXPECT_EQ(final_answer.status, 200);
    EXPECT_EQ(streamed, "GET /new ");
  });
}

// Credentials follow a redirect to the same origin only (as curl and Go's client do).
TEST(HttpClient, RedirectToAnotherHostDropsCredentials) {
  run_checked([] {
    test_server other([](http::request& r) {
      return http::response::text(200, std::string(r.headers.get("Authorization").value_or("-")) + " " +
                                           std::string(r.headers.get("Cookie").value_or("-")));
    });
    test_server first([&](http::request& r) {
      if (r.path() == "/same") {
        if (r.headers.get("Authorization")) return http::response::text(200, "kept");
        return http::response::text(200, "dropped");
      }
      http::response res = http::response::text(302, "");
      res.headers.set("Location", r.path() == "/here" ? "/same" : other.url("/"));
      return res;
    });
    http::client following({.follow_redirects = true});
    auto with_credentials = [](std::string url) {
      http::request_builder b("GET", std::move(url));
      b.header("Authorization", "Bearer SECRET").header("Cookie", "sid=SECRET");
      return b;
    };
    EXPECT_EQ(following.send(with_credentials(first.url("/here")), 10s).body, "kept");
    EXPECT_EQ(following.send(with_credentials(first.url("/away")), 10s).body, "- -");
  });
}

// One client shared by fibers of both schedulers of a runtime, as Go's http.Client
// is: every answer arrives, each scheduler reuses the connections it opened, and
// the client, with connections of both still pooled, is destroyed after run()
// returned (it used to corrupt the heap, a connection used by the wrong reactor).
TEST(HttpClient, OneClientIsSharedByFibersOfEverySchedulerAndOutlivesRun) {
  hang_guard guard;
  std::optional<http::client> shared(std::in_place);
  weft::run_options two;
  two.threads = 2;
  std::atomic<int> answered{0};
  weft::run(  // not run_checked: the pooled connections outlive the schedulers on purpose
      two, [&] {
        test_server s(echo);
        std::vector<weft::fiber<void>> users;
        for (std::ptrdiff_t i = 0; i < 16; ++i)
          users.push_back(weft::spawn({.on = i % 2}, [&, i] {
            for (int j = 0; j < 20; ++j) {
              std::string path = "/";
              path.append(std::to_string(i)).append("/").append(std::to_string(j));
              std::string expected = "GET ";
              expected.append(path).append(" ");
              if (shared->get(s.url(path), 10s).body == expected) ++answered;
            }
          }));
        for (auto& u : users) u.join();
        EXPECT_GT(shared->idle_connections(), 1u);
      });
  EXPECT_EQ(answered.load(), 16 * 20);
  shared.reset();  // pooled connections of two ended schedulers
}

// One client used by successive run()s on one thread (a command-line tool that
// runs the runtime per command): a later run's scheduler may sit at the earlier
// one's address, and must not take that run's pooled connections, registered with
// an epoll that is gone (a GET there used to wait until its deadline, or forever).
TEST(HttpClient, OneClientServesSuccessiveRunsOnOneThread) {
  hang_guard guard;
  std::promise<std::string> url_promise;
  weft::event* stop = nullptr;
  std::atomic<bool> stop_ready{false};
  std::thread server([&] {
    weft::run([&] {
      test_server s(echo);
      weft::event done;
      stop = &done;
      stop_ready = true;
      url_promise.set_value(s.url("/"));
      done.wait();
    });
  });
  const std::string url = url_promise.get_future().get();
  http::client web;
  for (int round = 0; round < 3; ++round)
    EXPECT_EQ(weft::run([&] { return web.get(url, 10s).body; }), "GET / ") << "round " << round;
  // Each ended run's pooled connection is dropped when the next run pools its own
  // (they used to pile up, one descriptor per run, until the client went).
  EXPECT_EQ(web.idle_connections(), 1u);
  while (!stop_ready) std::this_thread::yield();
  stop->set();
  server.join();
}

// A client destroyed while one of its calls runs: the call finishes as it would
// have, and its connection is closed instead of pooled (the call used to touch the
// freed client; ASan: heap-use-after-free in put_back).
TEST(HttpClient, DestroyedWhileACallRunsLetsTheCallFinish) {
  run_checked([] {
    weft::event release;
    test_server s([&](http::request& r) {
      if (r.path() == "/slow") release.wait();
      return echo(r);
    });
    auto web = std::make_unique<http::client>();
    auto call = weft::spawn([&, c = web.get()] { return c->get(s.url("/slow"), 10s).body; });
    weft::this_fiber::sleep_for(20ms);  // the call waits for its answer
    web.reset();
    release.set();
    EXPECT_EQ(call.join(), "GET /slow ");
  });
}

TEST(HttpClient, DeadlineStaleConnectionsAndBadAnswers) {
  run_checked([] {
    http::server_options o;
    o.idle_timeout = 20ms;  // the server drops pooled connections quickly
    weft::event release;
    test_server s(
        [&](http::request& r) {
          if (r.path() == "/slow") release.wait();
          return echo(r);
        },
        o);
    http::client c;
    try {
      c.get(s.url("/slow"), 50ms);
      ADD_FAILURE() << "no timeout";
    } catch (const weft::timeout_error& e) {  // names the request
      EXPECT_NE(std::string(e.what()).find("GET " + s.url("/slow")), std::string::npos) << e.what();
    }
    // An enclosing scope's expiry, and a cancellation, name the request too, not the
    // read inside it that was waiting.
    try {
      weft::with_timeout(50ms, [&] { c.get(s.url("/slow"), 10s); });
      ADD_FAILURE() << "no timeout";
    } catch (const weft::timeout_error& e) {
      EXPECT_EQ(std::string(e.what()), "weft::http::client GET " + s.url("/slow") + ": deadline passed");
    }
    auto waiting = weft::spawn([&] { c.get(s.url("/slow"), 10s); });
    weft::this_fiber::sleep_for(20ms);
    waiting.cancel();
    try {
      waiting.join();
      ADD_FAILURE() << "not cancelled";
    } catch (const weft::cancelled_error& e) {
      EXPECT_EQ(std::string(e.what()), "weft::http::client GET " + s.url("/slow") + ": fiber cancelled");
    }
    release.set();
    EXPECT_EQ(c.get(s.url("/a"), 10s).status, 200);
    weft::this_fiber::sleep_for(100ms);  // the server closes the idle connection
    EXPECT_EQ(c.get(s.url("/b"), 10s).body, "GET /b ");  // noticed, and a new one used

    // A server that answers garbage, and one that answers by closing.
    auto listener = net::tcp_listener::bind(loopback_any_port());
    const std::string url = "http://" + listener.local_endpoint().to_string() + "/";
    auto bad = weft::spawn([&] {
      for (const char* reply : {"SPDY nonsense\r\n\r\n", "HTTP/1.0 200 OK\r\n\r\nuntil close"}) {
        auto conn = listener.accept();
        char buf[4096];
        conn.read_some(buf);
        conn.write_all(reply);
      }
    });
    try {
      c.get(url, 10s);
      ADD_FAILURE() << "garbage accepted";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), http::error::bad_message);
    }
    EXPECT_EQ(c.get(url, 10s).body, "until close");
    bad.join();
    listener.close();
    try {
      c.get(url, 10s);
      ADD_FAILURE() << "connected to a closed port";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::connection_refused);
      EXPECT_EQ(std::string(e.what()).rfind("weft::http::client: cannot connect for " + url, 0), 0u) << e.what();
    }
  });
}

// scripted_server: a loopback listener whose connections each run `script` (in
// fibers of their own), for answers http::serve would never give.
class scripted_server {
 public:
  explicit scripted_server(std::function<void(net::tcp_stream&)> script)
      : script_(std::move(script)), acceptor_(weft::spawn([this] {
          weft::task_group conns;
          while (listener_.is_open()) {
            net::tcp_stream c;
            try {
              c = listener_.accept(10s);
            } catch (const std::exception&) {
              break;  // closed by the destructor, or the hang guard
            }
            ++accepted;
            conns.spawn([this, c = std::move(c)]() mutable {
              try {
                script_(c);
              } catch (const std::exception&) {
                // the client went away; its test says what it expected
              }
            });
          }
          conns.cancel();
          conns.join();
        })) {}
  ~scripted_server() {
    listener_.close();
    acceptor_.join();
  }
  std::string url() const { return "http://" + listener_.local_endpoint().to_string() + "/"; }
  int accepted = 0;

 private:
  net::tcp_listener listener_ = net::tcp_listener::bind(loopback_any_port());
  std::function<void(net::tcp_stream&)> script_;
  weft::fiber<void> acceptor_;
};

// read_head reads one request's header block (the requests here have no body).
bool read_head(net::tcp_stream& c) {
  std::string got;
  char buf[4096];
  while (got.find("\r\n\r\n") == std::string::npos) {
    const std::size_t n = c.read_some(buf, 10s);
    if (n == 0) return false;
    got.append(buf, n);
  }
  return true;
}

TEST(HttpClient, ARetryAfterAStaleConnectionTakesANewOne) {
  run_checked([] {
    // Each connection answers once, then closes when the next request comes (a
    // server whose idle timeout fires just then). Two of them wait in the pool.
    scripted_server s([](net::tcp_stream& c) {
      if (!read_head(c)) return;
      c.write_all(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 10s);
      read_head(c);
    });
    http::client c;
    auto a = weft::spawn([&] { return c.get(s.url(), 10s).status; });
    auto b = weft::spawn([&] { return c.get(s.url(), 10s).status; });
    EXPECT_EQ(a.join(), 200);
    EXPECT_EQ(b.join(), 200);
    ASSERT_EQ(c.idle_connections(), 2u);
    // The first pooled one fails; the retry must not take the second (stale too).
    EXPECT_EQ(c.get(s.url(), 10s).body, "ok");
    EXPECT_EQ(s.accepted, 3);
  });
}

TEST(HttpClient, AConnectionThatSwitchedProtocolsIsNotPooled) {
  run_checked([] {
    scripted_server s([](net::tcp_stream& c) {
      if (!read_head(c)) return;
      c.write_all(std::string_view("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n"),
                  10s);
      char buf[64];
      c.read_some(buf, 10s);  // the new protocol, or the end
    });
    http::client c;
    const http::response r = c.send(http::request_builder("GET", s.url()).header("Upgrade", "x").header("Connection", "Upgrade"),
                                    10s);
    EXPECT_EQ(r.status, 101);
    EXPECT_EQ(c.idle_connections(), 0u);
  });
}

TEST(HttpClient, AnAnswerToAnUploadItStoppedReadingArrives) {
  run_checked([] {
    http::server_options o;
    o.max_body_bytes = 1 << 20;
    test_server s(echo, o);
    http::client c;
    // 8 MB: far more than the kernel buffers take before the server stops reading.
    const http::response r = c.post(s.url("/up"), std::string(8 << 20, 'x'), {}, 10s);
    EXPECT_EQ(r.status, 413);
    EXPECT_EQ(c.idle_connections(), 0u);  // the request did not go out whole
  });
}

TEST(HttpClient, ARequestThatWouldBreakItsLinesIsRefusedBeforeItIsSent) {
  run_checked([] {
    scripted_server s([](net::tcp_stream& c) {
      if (!read_head(c)) return;
      c.write_all(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 10s);
    });
    http::client c;
    const auto refused = [&](http::request_builder b, std::string_view why) {
      try {
        c.send(b, 10s);
        ADD_FAILURE() << "sent: " << why;
      } catch (const weft::error& e) {
        EXPECT_EQ(e.code(), weft::errc::invalid_argument);
        EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
      }
    };
    refused(http::request_builder("GET", s.url()).header("X-Name", "v\r\nX-Injected: yes"), "value of field X-Name");
    refused(http::request_builder("GET", s.url()).header("X-Name", std::string("v\0w", 3)), "value of field X-Name");
    refused(http::request_builder("GET", s.url()).header("Bad Name", "v"), "field name \"Bad Name\"");
    refused(http::request_builder("GET /smuggled HTTP/1.1\r\n", s.url()), "is not a token");
    refused(http::request_builder("CONNECT", s.url()), "CONNECT (a proxy tunnel) is not supported");
    http::client injecting({.user_agent = "ua\r\nX-Injected: yes"});
    try {
      injecting.get(s.url(), 10s);
      ADD_FAILURE() << "sent a user agent with CR LF";
    } catch (const weft::error& e) {
      EXPECT_NE(std::string(e.what()).find("client_options::user_agent"), std::string::npos) << e.what();
    }
    EXPECT_EQ(s.accepted, 0);
    EXPECT_EQ(c.send(http::request_builder("GET", s.url()).header("X-Tab", "a\tb"), 10s).body, "ok");  // HTAB is allowed
  });
}

TEST(HttpClient, AContentLengthOverTheLimitFailsBeforeItsRoomIsTaken) {
  run_checked([] {
    scripted_server s([](net::tcp_stream& c) {
      if (!read_head(c)) return;
      c.write_all(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\nxx"), 10s);
      if (!read_head(c)) return;
      c.write_all(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nxx"), 10s);
    });
    http::client c;
    for (int i = 0; i < 2; ++i) {
      try {
        c.get(s.url(), 10s);  // was std::bad_alloc, then std::length_error
        ADD_FAILURE() << "a body of a terabyte accepted";
      } catch (const std::system_error& e) {
        EXPECT_EQ(e.code(), http::error::body_too_large) << e.what();
        // names the option to raise, and its value
        EXPECT_NE(std::string(e.what()).find("client_options::max_body_bytes = "), std::string::npos) << e.what();
      }
    }
  });
}

TEST(HttpClient, APostOnAConnectionTheServerClosedSaysWhyItIsNotSentAgain) {
  run_checked([] {
    scripted_server s([](net::tcp_stream& c) {
      if (!read_head(c)) return;
      c.write_all(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 10s);
      read_head(c);  // the next request: closed without an answer (as a server's idle timeout would)
    });
    http::client c;
    EXPECT_EQ(c.get(s.url(), 10s).body, "ok");
    try {
      c.post(s.url(), "x", {}, 10s);
      ADD_FAILURE() << "a POST answered by nobody succeeded";
    } catch (const std::system_error& e) {  // a reset, or an end without an answer
      EXPECT_NE(std::string(e.what()).find("a POST is not sent again: it is not idempotent"), std::string::npos)
          << e.what();  // was a bare "Connection reset by peer"
    }
    EXPECT_EQ(s.accepted, 1);  // not sent again on a new connection
  });
}

// A body made while it is sent: chunked without a length, with Content-Length
// with one; the producer writes in pieces, and the server gets them whole.
TEST(HttpClient, AStreamedBodyGoesOutChunkedOrWithItsLength) {
  run_checked([] {
    test_server s(echo);
    http::client c;
    const auto produce = [](http::body_writer& w) {
      for (int i = 0; i < 3; ++i) w.write("piece" + std::to_string(i) + ";");
    };
    http::response chunked = c.send(http::request_builder("POST", s.url("/up")).body_stream(produce), 10s);
    EXPECT_EQ(chunked.body, "POST /up piece0;piece1;piece2;");
    http::response sized = c.send(http::request_builder("PUT", s.url("/up")).body_stream(produce, 21), 10s);
    EXPECT_EQ(sized.body, "PUT /up piece0;piece1;piece2;");
    EXPECT_EQ(c.idle_connections(), 1u);  // one connection carried both
    // A length the producer does not keep to: the call fails, and says so.
    try {
      c.send(http::request_builder("PUT", s.url("/up")).body_stream(produce, 30), 10s);
      ADD_FAILURE() << "a body shorter than its length was sent";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("wrote 21 bytes of its length 30"), std::string::npos) << e.what();
    }
    try {
      c.send(http::request_builder("PUT", s.url("/up")).body_stream(produce, 10), 10s);
      ADD_FAILURE() << "a body longer than its length was sent";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
      EXPECT_NE(std::string(e.what()).find("past the body_stream's length"), std::string::npos) << e.what();
    }
    // What the producer throws ends the call.
    EXPECT_THROW(c.send(http::request_builder("POST", s.url("/up")).body_stream([](http::body_writer& w) {
                   w.write("half");
                   throw std::runtime_error("disk gone");
                 }),
                        10s),
                 std::runtime_error);
    EXPECT_EQ(c.get(s.url("/after"), 10s).body, "GET /after ");  // the client goes on
  });
}

TEST(HttpClient, AStreamedUploadTheServerStopsReadingGetsItsAnswer) {
  run_checked([] {
    http::server_options o;
    o.max_body_bytes = 1 << 20;
    test_server s(echo, o);
    http::client c;
    int pieces = 0;
    const std::string piece(64 << 10, 'x');
    const http::response r = c.send(http::request_builder("POST", s.url("/up")).body_stream([&](http::body_writer& w) {
      for (int i = 0; i < 128; ++i, ++pieces) w.write(piece);  // 8 MB: far past what the kernel buffers take
    }),
                                    10s);
    EXPECT_EQ(r.status, 413);
    EXPECT_LT(pieces, 128);  // the producer was stopped
  });
}

// A 307 or 308 would send the body again: with a streamed body it is the answer;
// a 303 continues as a GET without it.
TEST(HttpClient, AStreamedBodyIsNotSentAgainByARedirect) {
  run_checked([] {
    test_server s([](http::request& r) {
      if (r.path() == "/307" || r.path() == "/303") {
        http::response res = http::response::text(r.path() == "/307" ? 307 : 303, "moved");
        res.headers.set("Location", "/there");
        return res;
      }
      return echo(r);
    });
    http::client_options o;
    o.follow_redirects = true;
    http::client c(o);
    int produced = 0;
    const auto produce = [&](http::body_writer& w) {
      ++produced;
      w.write("data");
    };
    std::string streamed;
    const http::response kept = c.send(http::request_builder("POST", s.url("/307")).body_stream(produce),
                                       [&](std::string_view b) { streamed += b; }, 10s);
    EXPECT_EQ(kept.status, 307);
    EXPECT_EQ(streamed, "moved");  // its body is the answer's, so it is delivered
    const http::response followed = c.send(http::request_builder("POST", s.url("/303")).body_stream(produce), 10s);
    EXPECT_EQ(followed.body, "GET /there ");
    EXPECT_EQ(produced, 2);
  });
}

TEST(HttpClient, ARequestOutsideAFiberNamesItself) {
  http::client c;
  try {
    c.get("http://127.0.0.1:1/x", 1s);
    ADD_FAILURE() << "a request ran outside a fiber";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::not_in_fiber);
    EXPECT_NE(std::string(e.what()).find("weft::http::client GET http://127.0.0.1:1/x"), std::string::npos)
        << e.what();  // was weft::net::tcp_stream::connect, the call inside it
  }
}

TEST(HttpClient, ARequestThatSaidCloseDoesNotPoolItsConnection) {
  run_checked([] {
    // The server ignores the request's "Connection: close" (RFC 9112 9.6 binds the
    // client all the same: no further request on that connection).
    scripted_server s([](net::tcp_stream& c) {
      while (read_head(c)) c.write_all(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), 10s);
    });
    http::client c;
    EXPECT_EQ(c.send(http::request_builder("GET", s.url()).header("Connection", "close"), 10s).body, "ok");
    EXPECT_EQ(c.idle_connections(), 0u);
    EXPECT_EQ(c.get(s.url(), 10s).body, "ok");
    EXPECT_EQ(c.idle_connections(), 1u);
    EXPECT_EQ(s.accepted, 2);
  });
}

}  // namespace

