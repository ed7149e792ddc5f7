// Waiting for fd readiness through the reactor.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

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
    EXPECT_THROW(weft::fd_watch w(fd), std::system_error);
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
