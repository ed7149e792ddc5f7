// Structured concurrency as asyncio tutorials use it: cancellation reaching every
// kind of blocking call with resources released, deadline scopes around groups.
#include "structured_test.hpp"

namespace {

using namespace structured_test;

TEST(Structured, SlowOperationUnderWaitFor) {
  run_checked([] {
    weft::channel<int> ch;
    auto producer = weft::spawn([&] {
      weft::this_fiber::sleep_for(30ms);
      ch.try_send(1);  // too late for the first wait, no one is blocked then
    });
    EXPECT_THROW(weft::wait_for(5ms, [&] { return ch.recv(); }), weft::timeout_error);
    EXPECT_EQ(weft::wait_for(10s, [&] { return *ch.recv(); }), 1);
    producer.join();
  });
}

TEST(Structured, CancellationReleasesLocksPermitsAndSockets) {
  run_checked([] {
    weft::mutex m;
    weft::semaphore permits(2);
    const int fds_before = open_fd_count();
    auto worker = weft::spawn([&] {
      std::lock_guard lock(m);
      weft::semaphore_guard permit(permits);
      auto [a, b] = weft::net::unix_stream::pair();
      char buf[4];
      a.read_some(buf);  // blocks until cancelled
    });
    weft::this_fiber::sleep_for(2ms);
    EXPECT_FALSE(m.try_lock());
    worker.cancel();
    EXPECT_THROW(worker.join(), weft::cancelled_error);
    EXPECT_TRUE(m.try_lock());  // the guard ran
    m.unlock();
    EXPECT_TRUE(permits.try_acquire());  // both permits are free again
    EXPECT_TRUE(permits.try_acquire());
    permits.release(2);
    EXPECT_EQ(open_fd_count(), fds_before);  // both sockets closed
  });
}

TEST(Structured, DeadlineScopeAroundGroupsAndGather) {
  run_checked([] {
    int unwound = 0;
    auto sleeper = [&] {
      struct mark {
        int& n;
        ~mark() { ++n; }
      } m{unwound};
      weft::this_fiber::sleep_for(10s);
    };
    EXPECT_THROW(weft::with_timeout(5ms, [&] { weft::gather(sleeper, sleeper); }), weft::timeout_error);
    EXPECT_EQ(unwound, 2);
    EXPECT_THROW(weft::with_timeout(5ms,
                                    [&] {
                                      weft::with_task_group([&](weft::task_group& g) {
                                        g.spawn(sleeper);
                                        g.spawn(sleeper);
                                      });
                                    }),
                 weft::timeout_error);
    EXPECT_EQ(unwound, 4);
  });
}

TEST(Structured, EmptyRacesAreMisuse) {
  run_checked([] {
    std::vector<std::function<int()>> none;
    EXPECT_THROW(weft::wait_any(none), weft::error);
    EXPECT_TRUE(weft::gather(none).empty());
    // Each names the call the user made.
    auto what = [](auto call) {
      try {
        call();
      } catch (const weft::error& e) {
        EXPECT_EQ(e.code(), weft::errc::invalid_argument);
        return std::string(e.what());
      }
      return std::string("no exception");
    };
    EXPECT_EQ(what([&] { weft::wait_any(none); }).rfind("weft::wait_any: nothing to wait for", 0), 0u);
    EXPECT_EQ(what([&] { weft::first_success(none); }).rfind("weft::first_success: nothing to wait for", 0), 0u);
    std::vector<weft::fiber<int>> no_fibers;
    EXPECT_EQ(what([&] { weft::wait_any(no_fibers); }).rfind("weft::wait_any: nothing to wait for", 0), 0u);
    auto empty = weft::as_completed(none);  // nothing to deliver: not an error
    EXPECT_FALSE(empty.next().has_value());
  });
}

}  // namespace
