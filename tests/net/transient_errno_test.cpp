// Transient errors of socket calls: each errno has one defined outcome (see
// net/detail/socket_base.hpp): retried (waiting, never spinning) until the deadline,
// or reported with its own code in std::generic_category.
//
// Errors the kernel will not produce on demand (ECONNABORTED from accept, EAGAIN from
// a TCP connect) are injected: this executable defines accept4 and connect itself,
// which the static libweft's calls bind to; they fail with the scripted errnos first
// and then make the real system call, counting every call.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "net_test.hpp"

namespace {

struct injected_calls {
  std::mutex m;
  std::deque<int> errors;       // errnos the next calls fail with, in order
  std::atomic<int> calls{0};    // every call, injected or real

  void script(std::initializer_list<int> es) {
    std::lock_guard lock(m);
    errors.assign(es);
    calls = 0;
  }
  // next: the errno to fail this call with, or 0 for the real call.
  int next() {
    ++calls;
    std::lock_guard lock(m);
    if (errors.empty()) return 0;
    const int e = errors.front();
    errors.pop_front();
    return e;
  }
};

injected_calls accept_calls;
injected_calls connect_calls;

// no_injection: every test starts with the real calls, whatever an earlier one left.
void no_injection() {
  accept_calls.script({});
  connect_calls.script({});
}

}  // namespace

extern "C" int accept4(int fd, sockaddr* __restrict addr, socklen_t* __restrict len, int flags) {
  if (const int e = accept_calls.next()) {
    errno = e;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_accept4, fd, addr, len, flags));
}

extern "C" int connect(int fd, const sockaddr* addr, socklen_t len) {
  if (const int e = connect_calls.next()) {
    errno = e;
    return -1;
  }
  return static_cast<int>(::syscall(SYS_connect, fd, addr, len));
}

namespace {

using namespace weft_test;
using weft::net::tcp_listener;
using weft::net::tcp_stream;
using weft::net::unix_listener;
using weft::net::unix_stream;

std::string abstract_path(const char* what) {
  return "@weft-test-" + std::string(what) + "-" + std::to_string(::getpid());
}

// exhaust_descriptors lowers the soft RLIMIT_NOFILE near the descriptors in use and
// takes the rest with dups, so the next descriptor fails with EMFILE; release()
// (or the destructor) closes them and restores the limit exactly.
class exhaust_descriptors {
 public:
  exhaust_descriptors() {
    if (!limit_.lower_to(static_cast<rlim_t>(open_fd_count() + 8))) return;
    for (int fd; (fd = ::dup(0)) >= 0;) filler_.push_back(fd);
    exhausted_ = errno == EMFILE;
  }
  ~exhaust_descriptors() { release(); }
  bool exhausted() const { return exhausted_; }
  void release() {
    for (int fd : filler_) ::close(fd);
    filler_.clear();
    limit_.restore();
  }

 private:
  fd_limit limit_;
  std::vector<int> filler_;
  bool exhausted_ = false;
};

// fill_backlog connects to `path` until the listener's backlog is full (a connect
// with a short deadline times out); the connections are kept in `queued`.
void fill_backlog(const std::string& path, std::vector<unix_stream>& queued) {
  for (int i = 0; i < 64; ++i) {
    std::error_code ec;
    auto s = unix_stream::connect(path, 10ms, ec);
    if (ec == weft::errc::timed_out) return;
    ASSERT_FALSE(ec) << ec.message();
    queued.push_back(std::move(s));
  }
  FAIL() << "the backlog never filled";
}

// The field case (cases/unix_connect_full_backlog.cpp): a connect to a full backlog
// used to fail at once with EAGAIN. It waits for room, which an accept makes.
TEST(UnixConnect, FullBacklogWaitsUntilAnAcceptMakesRoom) {
  no_injection();
  hang_guard guard;
  run_checked([] {
    const std::string path = abstract_path("backlog");
    auto listener = unix_listener::bind(path, {.backlog = 1});
    std::vector<unix_stream> queued;
    fill_backlog(path, queued);
    auto acceptor = weft::spawn([&] {
      weft::this_fiber::sleep_for(50ms);
      return listener.accept();
    });
    std::error_code ec;
    unix_stream s = unix_stream::connect(path, 10s, ec);
    EXPECT_FALSE(ec) << "connect to a full backlog failed: " << ec.message();
    EXPECT_TRUE(s.is_open());
    acceptor.join();
  });
}

TEST(UnixConnect, FullBacklogReportsTimedOutAtTheDeadlineWithoutSpinning) {
  no_injection();
  hang_guard guard;
  run_checked([] {
    const std::string path = abstract_path("backlog-timeout");
    auto listener = unix_listener::bind(path, {.backlog = 1});
    std::vector<unix_stream> queued;
    fill_backlog(path, queued);
    connect_calls.script({});
    std::error_code ec;
    const auto start = weft::clock::now();
    unix_stream s = unix_stream::connect(path, 300ms, ec);
    EXPECT_EQ(ec, weft::errc::timed_out) << ec.message();
    EXPECT_GE(weft::clock::now() - start, 300ms) << "gave up before the deadline";
    EXPECT_FALSE(s.is_open());
    // 1 ms doubling to 20 ms: about 20 attempts in 300 ms; a spin makes thousands.
    EXPECT_LT(connect_calls.calls.load(), 60) << "connect spins on a full backlog";
    EXPECT_THROW(unix_stream::connect(path, 20ms), weft::timeout_error);
  });
}

// A cancellation that lands in the retry pause names the user's call, not the
// sleep the pause is made of.
TEST(UnixConnect, CancelledWhileWaitingForRoomNamesConnect) {
  no_injection();
  hang_guard guard;
  run_checked([] {
    const std::string path = abstract_path("backlog-cancel");
    auto listener = unix_listener::bind(path, {.backlog = 1});
    std::vector<unix_stream> queued;
    fill_backlog(path, queued);
    connect_calls.script({});
    auto connector = weft::spawn([&] { return unix_stream::connect(path, 10s); });
    while (connect_calls.calls.load() < 2) weft::this_fiber::sleep_for(1ms);  // in its retry pauses
    connector.cancel();
    try {
      connector.join();
      ADD_FAILURE() << "connect returned";
    } catch (const weft::cancelled_error& e) {
      EXPECT_STREQ(e.what(), "weft::net::unix_stream::connect: fiber cancelled");
    }
  });
}

// TCP answers EAGAIN when no local port is free: retried like a full backlog.
TEST(TcpConnect, EagainIsRetriedUntilTheConnectGoesThrough) {
  no_injection();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    connect_calls.script({EAGAIN, EAGAIN, EAGAIN});
    tcp_stream s = tcp_stream::connect(listener.local_endpoint(), 10s);
    EXPECT_EQ(connect_calls.calls.load(), 4);
    tcp_stream peer = listener.accept(10s);
    s.write_all("hi");
    char buf[2];
    peer.read_exact(buf);
    EXPECT_EQ(std::string(buf, 2), "hi");
  });
}

TEST(TcpConnect, RefusedIsReportedInGenericCategory) {
  no_injection();
  run_checked([] {
    weft::net::endpoint closed;
    {
      auto listener = tcp_listener::bind(loopback_any_port());
      closed = listener.local_endpoint();
    }
    std::error_code ec;
    tcp_stream s = tcp_stream::connect(closed, 10s, ec);
    EXPECT_EQ(ec, std::errc::connection_refused);
    EXPECT_EQ(&ec.category(), &std::generic_category());
  });
}

// A connection the peer aborted before accept took it fails only itself: accept
// goes on with the next one.
TEST(Accept, SkipsConnectionsLostBeforeTheyWereTaken) {
  no_injection();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    tcp_stream client = tcp_stream::connect(listener.local_endpoint(), 10s);
    accept_calls.script({ECONNABORTED, EPROTO, EINTR, ENETUNREACH, EHOSTUNREACH});
    std::error_code ec;
    tcp_stream conn = listener.accept(10s, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(accept_calls.calls.load(), 6);
    client.write_all("ok");
    char buf[2];
    conn.read_exact(buf);
    EXPECT_EQ(std::string(buf, 2), "ok");
  });
}

// Out of descriptors: accept backs off and retries; the connection waits in the
// backlog and is served once a descriptor is free.
TEST(Accept, InjectedOutOfDescriptorsIsRetriedAfterABackoff) {
  no_injection();
  run_checked([] {
    auto listener = tcp_listener::bind(loopback_any_port());
    tcp_stream client = tcp_stream::connect(listener.local_endpoint(), 10s);
    accept_calls.script({EMFILE, ENFILE, ENOBUFS, ENOMEM});
    const auto start = weft::clock::now();
    std::error_code ec;
    tcp_stream conn = listener.accept(10s, ec);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(accept_calls.calls.load(), 5);
    EXPECT_GE(weft::clock::now() - start, 1ms + 2ms + 4ms + 8ms) << "retried without backing off";
  });
}

// Real EMFILE (the soft RLIMIT_NOFILE lowered, and restored exactly): with a
// deadline, accept waits by backing off and reports timed_out, without spinning.
TEST(Accept, RealDescriptorExhaustionWaitsUntilTheDeadline) {
  no_injection();
  hang_guard guard;
  run_checked([&] {
    auto listener = tcp_listener::bind(loopback_any_port());
    tcp_stream client = tcp_stream::connect(listener.local_endpoint(), 10s);
    exhaust_descriptors none_left;
    ASSERT_TRUE(none_left.exhausted());
    accept_calls.script({});
    std::error_code ec;
    tcp_stream conn = listener.accept(300ms, ec);
    const int calls = accept_calls.calls.load();
    none_left.release();
    EXPECT_EQ(ec, weft::errc::timed_out) << ec.message();
    // 1 ms doubling to 100 ms: about 9 attempts in 300 ms.
    EXPECT_GE(calls, 2);
    EXPECT_LT(calls, 30) << "accept spins on EMFILE";
    conn = listener.accept(10s);  // served once descriptors are free
    EXPECT_TRUE(conn.is_open());
  });
}

// socket() itself out of descriptors: reported with its own code, not retried.
TEST(Socket, OutOfDescriptorsIsReportedAsEmfile) {
  no_injection();
  run_checked([&] {
    auto listener = tcp_listener::bind(loopback_any_port());
    exhaust_descriptors none_left;
    ASSERT_TRUE(none_left.exhausted());
    std::error_code ec;
    tcp_stream s = tcp_stream::connect(listener.local_endpoint(), 10s, ec);
    none_left.release();
    EXPECT_EQ(ec, std::errc::too_many_files_open);
    EXPECT_EQ(&ec.category(), &std::generic_category());
  });
}

}  // namespace
