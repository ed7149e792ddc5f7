// Waiting for fd readiness through the reactor.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

namespace {

struct socket_pair {
  int fd[2];
  socket_pair() {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fd), 0);
  }
  ~socket_pair() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
};

// read_some: the pattern sockets use, try first and wait only on EAGAIN.
std::string read_some(weft::fd_watch& w) {
  char buf[256];
  for (;;) {
    const ssize_t n = ::read(w.fd(), buf, sizeof buf);
    if (n >= 0) return std::string(buf, static_cast<size_t>(n));
    if (errno != EAGAIN) throw std::system_error(errno, std::generic_category());
    w.wait_readable();
  }
}

}  // namespace

TEST(FdWait, ReaderWakesWhenPeerWrites) {
  run_checked([] {
    socket_pair p;
    weft::fd_watch w(p.fd[0]);
    auto writer = weft::spawn([&] {
      weft::this_fiber::sleep_for(5ms);
      ASSERT_EQ(::write(p.fd[1], "hello", 5), 5);
    });
    EXPECT_EQ(read_some(w), "hello");
    writer.join();
  });
}

TEST(FdWait, WaitForTimesOutWhenNothingArrives) {
  run_checked([] {
    socket_pair p;
    weft::fd_watch w(p.fd[0]);
    char c;
    ASSERT_EQ(::read(p.fd[0], &c, 1), -1);
    EXPECT_FALSE(w.wait_for(weft::fd_event::readable, 10ms));
  });
}

TEST(FdWait, ReadyBeforeWaitIsNotLost) {
  run_checked([] {
    socket_pair p;
    weft::fd_watch w(p.fd[0]);
    ASSERT_EQ(::write(p.fd[1], "x", 1), 1);
    weft::this_fiber::sleep_for(2ms);  // the edge arrives while nobody waits
    EXPECT_TRUE(w.wait_for(weft::fd_event::readable, 1s));
    EXPECT_EQ(read_some(w), "x");
  });
}

TEST(FdWait, WritableAtOnceOnFreshSocket) {
  run_checked([] {
    socket_pair p;
    weft::fd_watch w(p.fd[1]);
    EXPECT_TRUE(w.wait_for(weft::fd_event::writable, 1s));
  });
}

TEST(FdWait, PeerCloseWakesReaderWithEof) {
  run_checked([] {
    socket_pair p;
    weft::fd_watch w(p.fd[0]);
    auto closer = weft::spawn([&] {
      weft::this_fiber::sleep_for(2ms);
      ::shutdown(p.fd[1], SHUT_WR);
    });
    EXPECT_EQ(read_some(w), "");  // EOF
    closer.join();
  });
}

TEST(FdWait, CancelWakesWaiterAndKeepsWatchUsable) {
  run_checked([] {
    socket_pair p;
    weft::fd_watch w(p.fd[0]);
    auto reader = weft::spawn([&] { return read_some(w); });
    weft::this_fiber::yield();
    reader.cancel();
    EXPECT_THROW(reader.join(), weft::cancelled_error);
    ASSERT_EQ(::write(p.fd[1], "after", 5), 5);
    EXPECT_EQ(read_some(w), "after");
  });
}

TEST(FdWait, SecondWaiterSameDirectionIsRefused) {
  run_checked([] {
    socket_pair p;
    weft::fd_watch w(p.fd[0]);
    auto first = weft::spawn([&] { w.wait_readable(); });
    weft::this_fiber::yield();
    try {
      w.wait_readable();
      ADD_FAILURE() << "second waiter accepted";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::already_waited);
    }
    first.cancel();
    EXPECT_THROW(first.join(), weft::cancelled_error);
  });
}

TEST(FdWait, DestroyingWatchWakesWaiter) {
  run_checked([] {
    socket_pair p;
    auto w = std::make_unique<weft::fd_watch>(p.fd[0]);
    auto waiter = weft::spawn([&] { w->wait_readable(); return true; });
    weft::this_fiber::yield();
    w.reset();
    EXPECT_TRUE(waiter.join());
  });
}

TEST(FdWait, OneShotWaitOnUnwatchedFd) {
  run_checked([] {
    socket_pair p;
    EXPECT_FALSE(weft::wait_fd_for(p.fd[0], weft::fd_event::readable, 5ms));
    ASSERT_EQ(::write(p.fd[1], "y", 1), 1);
    EXPECT_TRUE(weft::wait_fd_for(p.fd[0], weft::fd_event::readable, 1s));
  });
}

TEST(FdWait, RegularFileIsRefusedClearly) {
  run_checked([] {
    const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    try {
      weft::fd_watch w(fd);
      ADD_FAILURE() << "a regular file was watched";
    } catch (const std::system_error& e) {  // says why and what to use instead
      EXPECT_EQ(e.code(), std::errc::operation_not_permitted);
      EXPECT_NE(std::string(e.what()).find("cannot be polled"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("weft::fs"), std::string::npos) << e.what();
    }
    ::close(fd);
  });
}

TEST(FdWait, NegativeFdIsInvalidArgument) {
  run_checked([] {
    try {
      weft::fd_watch w(-1);
      ADD_FAILURE() << "accepted -1";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
    }
  });
}

TEST(FdWait, ManyPairsPingPong) {
  run_checked([] {
    constexpr int pairs = 100, rounds = 50;
    std::vector<weft::fiber<int>> fs;
    for (int i = 0; i < pairs; ++i) {
      fs.push_back(weft::spawn([] {
        socket_pair p;
        weft::fd_watch a(p.fd[0]), b(p.fd[1]);
        auto echo = weft::spawn([&] {
          for (int r = 0; r < rounds; ++r) {
            auto s = read_some(b);
            EXPECT_EQ(::write(p.fd[1], s.data(), s.size()), static_cast<ssize_t>(s.size()));
          }
        });
        int ok = 0;
        for (int r = 0; r < rounds; ++r) {
          EXPECT_EQ(::write(p.fd[0], "ping", 4), 4);
          ok += read_some(a) == "ping";
        }
        echo.join();
        return ok;
      }));
    }
    int total = 0;
    for (auto& f : fs) total += f.join();
    EXPECT_EQ(total, pairs * rounds);
  });
}

// ---- stale registrations: an fd closed before its watch is destroyed ---------------
//
// epoll registers the open file, not the fd number: when the fd is closed while
// another descriptor of the same file lives (a dup, a forked child, an fd in flight
// in an SCM_RIGHTS message), the registration outlives the watch and keeps
// reporting edges. None of them may reach freed memory or another watch.

namespace {

// A keeper holds the open file of `fd` alive elsewhere; the returned function lets go.
using keeper = std::function<std::function<void()>(int fd)>;

std::function<void()> keep_nothing(int) {
  return [] {};
}

std::function<void()> keep_by_dup(int fd) {
  const int copy = ::dup(fd);
  EXPECT_GE(copy, 0);
  return [copy] { ::close(copy); };
}

// keep_in_child: a forked child holds every descriptor until the parent lets go
// (closes the control pipe), then _exits.
std::function<void()> keep_in_child(int) {
  int control[2];
  EXPECT_EQ(::pipe2(control, O_CLOEXEC), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    ::close(control[1]);
    char c;
    while (::read(control[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  EXPECT_GT(child, 0);
  ::close(control[0]);
  return [child, write_end = control[1]] {
    ::close(write_end);
    int status = 0;
    ::waitpid(child, &status, 0);
  };
}

// keep_in_flight: fd travels in an SCM_RIGHTS message nobody receives.
std::function<void()> keep_in_flight(int fd) {
  int carrier[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, carrier), 0);
  char byte = 'f';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  EXPECT_EQ(::sendmsg(carrier[0], &msg, 0), 1);
  return [carrier] {  // closing the receiver drops the message and the fd in it
    ::close(carrier[0]);
    ::close(carrier[1]);
  };
}

// closed_before_unwatch: a watch's fd is closed first while `keep` holds its file;
// a new socket reuses the number and is watched, before or after the old watch is
// destroyed. An edge on the old file must wake no one; the new watch must still see
// its own edges.
void closed_before_unwatch(const keeper& keep, bool unwatch_before_reuse) {
  run_checked([&] {
    socket_pair old_pair;
    const int number = old_pair.fd[0];
    auto old_watch = std::make_unique<weft::fd_watch>(number);
    const auto let_go = keep(number);
    ::close(old_pair.fd[0]);
    if (unwatch_before_reuse) old_watch.reset();

    socket_pair fresh;  // takes the lowest free number: the closed one
    ASSERT_EQ(fresh.fd[0], number) << "the number was not reused; the test proves nothing";
    weft::fd_watch watch(fresh.fd[0]);
    old_watch.reset();  // when not done above: must not unregister the new socket

    auto waiter = weft::spawn([&] { return watch.wait_for(weft::fd_event::readable, 200ms); });
    weft::this_fiber::sleep_for(2ms);
    // An edge on the old file only (EPIPE when nothing kept it open).
    (void)::send(old_pair.fd[1], "x", 1, MSG_NOSIGNAL);
    EXPECT_FALSE(waiter.join()) << "an edge of a closed fd's file woke a new watch";

    ASSERT_EQ(::write(fresh.fd[1], "y", 1), 1);
    EXPECT_TRUE(watch.wait_for(weft::fd_event::readable, 5s)) << "the new watch lost its registration";
    EXPECT_EQ(read_some(watch), "y");
    old_pair.fd[0] = -1;  // closed above; the number is fresh's now
    let_go();
  });
}

}  // namespace

// The field case (cases/fd_closed_before_unwatch.cpp): a pipe closed before its
// watch, a dup alive, a new socket on the number; the pipe's next edge used to land
// in the freed watch state (ASan: heap-use-after-free in the reactor).
TEST(FdWait, ClosedPipeWithLiveDupWakesNoNewWatch) {
  run_checked([] {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    const int keep = ::dup(p[0]);
    {
      weft::fd_watch w(p[0]);
      ::close(p[0]);
    }
    socket_pair idle;
    weft::fd_watch watch(idle.fd[0]);
    auto waiter = weft::spawn([&] { return watch.wait_for(weft::fd_event::readable, 200ms); });
    weft::this_fiber::sleep_for(2ms);
    ASSERT_EQ(::write(p[1], "x", 1), 1);
    EXPECT_FALSE(waiter.join()) << "an idle socket's waiter was woken by a closed fd's event";
    ::close(keep);
    ::close(p[1]);
  });
}

TEST(FdWait, ClosedBeforeUnwatchThenNumberReusedKeepsNewWatch) {
  closed_before_unwatch(keep_nothing, true);
  closed_before_unwatch(keep_nothing, false);
}

TEST(FdWait, ClosedBeforeUnwatchWithDupDropsStaleEvents) {
  closed_before_unwatch(keep_by_dup, true);
  closed_before_unwatch(keep_by_dup, false);
}

TEST(FdWait, ClosedBeforeUnwatchWithForkedChildDropsStaleEvents) {
  closed_before_unwatch(keep_in_child, true);
  closed_before_unwatch(keep_in_child, false);
}

TEST(FdWait, ClosedBeforeUnwatchWithFdInFlightDropsStaleEvents) {
  closed_before_unwatch(keep_in_flight, true);
  closed_before_unwatch(keep_in_flight, false);
}

// The file comes back to its old number (dup2) while its stale registration lives:
// a new watch takes that registration over instead of failing with EEXIST.
TEST(FdWait, FileBackOnItsClosedNumberCanBeWatchedAgain) {
  run_checked([] {
    socket_pair p;
    const int number = p.fd[0];
    const int keep = ::dup(number);
    {
      weft::fd_watch w(number);
      ::close(number);
    }
    ASSERT_EQ(::dup2(keep, number), number);
    ::close(keep);
    weft::fd_watch watch(number);
    ASSERT_EQ(::write(p.fd[1], "z", 1), 1);
    EXPECT_TRUE(watch.wait_for(weft::fd_event::readable, 5s));
    EXPECT_EQ(read_some(watch), "z");
  });
}

TEST(FdWait, SecondWatchOfOneDescriptorIsRefused) {
  run_checked([] {
    socket_pair p;
    weft::fd_watch first(p.fd[0]);
    try {
      weft::fd_watch second(p.fd[0]);
      ADD_FAILURE() << "a second watch of one descriptor was accepted";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code(), std::errc::file_exists);
      EXPECT_NE(std::string(e.what()).find("weft::fd_watch"), std::string::npos) << e.what();
    }
    ASSERT_EQ(::write(p.fd[1], "w", 1), 1);
    EXPECT_TRUE(first.wait_for(weft::fd_event::readable, 5s)) << "the refused watch disturbed the first";
  });
}

// A watch destroyed on a plain thread while its scheduler runs: the scheduler
// removes the registration itself (the census sees none left), the waiter it had
// is woken, and the descriptor's number can be watched again at once.
TEST(FdWait, WatchDestroyedOnAnotherThreadIsRemovedByItsScheduler) {
  hang_guard guard;
  run_checked([] {
    socket_pair p;
    auto w = std::make_unique<weft::fd_watch>(p.fd[0]);
    auto waiter = weft::spawn([&w] { return w->wait_for(weft::fd_event::readable, 30s); });
    weft::this_fiber::yield();
    std::thread([&w] { w.reset(); }).join();
    EXPECT_TRUE(waiter.join()) << "the waiter was not woken by the watch's end";
    weft::fd_watch again(p.fd[0]);  // the old registration is gone: no EEXIST
    ASSERT_EQ(::write(p.fd[1], "a", 1), 1);
    EXPECT_EQ(read_some(again), "a");
  });
}

// The same from a fiber of another scheduler of the runtime.
TEST(FdWait, WatchDestroyedOnAnotherSchedulerIsRemovedByItsOwn) {
  hang_guard guard;
  weft::run_options two;
  two.threads = 2;
  run_checked(
      [] {
        socket_pair p;
        std::unique_ptr<weft::fd_watch> w;
        weft::spawn({.on = 1}, [&] {
          w = std::make_unique<weft::fd_watch>(p.fd[0]);
          ASSERT_EQ(::write(p.fd[1], "b", 1), 1);
          EXPECT_EQ(read_some(*w), "b");
        }).join();
        w.reset();  // here, on scheduler 0
        weft::spawn({.on = 1}, [&] {
          weft::fd_watch again(p.fd[0]);
          ASSERT_EQ(::write(p.fd[1], "c", 1), 1);
          EXPECT_EQ(read_some(again), "c");
        }).join();
      },
      two);
}

// A socket kept past run(): its scheduler, reactor and epoll instance are gone, so
// destroying it has nothing to unregister (it used to write into the freed
// reactor's table; ASan: heap-use-after-free).
TEST(FdWait, WatchOutlivingItsSchedulerIsDestroyedSafely) {
  socket_pair p;
  std::optional<weft::fd_watch> kept;
  weft::run([&] {
    kept.emplace(p.fd[0]);
    ASSERT_EQ(::write(p.fd[1], "d", 1), 1);
    EXPECT_EQ(read_some(*kept), "d");
  });
  kept.reset();
  EXPECT_EQ(::write(p.fd[1], "e", 1), 1);  // the descriptor itself is untouched
  char c = 0;
  EXPECT_EQ(::read(p.fd[0], &c, 1), 1);
  EXPECT_EQ(c, 'e');
}
