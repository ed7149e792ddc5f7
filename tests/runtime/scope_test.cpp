// Deadline scopes (with_timeout, deadline_scope) and shields: every kind of blocking
// call ends at the scope's deadline with timeout_error and releases what it held;
// cancellation stays distinct; shields defer it.
#include <unistd.h>

#include "runtime/scope.hpp"
#include "tests/net/net_test.hpp"

namespace {

using namespace weft_test;
using weft::timeout_error;

TEST(Scope, WithTimeoutEndsASlowCallAndPassesAFastOne) {
  run_checked([] {
    const auto start = weft::clock::now();
    EXPECT_THROW(weft::with_timeout(20ms, [] { weft::this_fiber::sleep_for(10s); }), timeout_error);
    EXPECT_GE(weft::clock::now() - start, 20ms);
    EXPECT_LT(weft::clock::now() - start, 5s);  // hang guard
    EXPECT_EQ(weft::wait_for(10s, [] { return 42; }), 42);
    // The scope is gone: sleeping past its deadline is fine now.
    weft::this_fiber::sleep_for(25ms);
  });
}

TEST(Scope, NestedScopesTakeTheEarliestDeadline) {
  run_checked([] {
    // Outer first: the inner, longer scope cannot extend it.
    EXPECT_THROW(weft::with_timeout(20ms, [] {
                   weft::with_timeout(10s, [] { weft::this_fiber::sleep_for(10s); });
                 }),
                 timeout_error);
    // Inner first: caught inside, the outer scope goes on.
    int outer_done = weft::with_timeout(10s, [] {
      EXPECT_THROW(weft::with_timeout(10ms, [] { weft::this_fiber::sleep_for(10s); }), timeout_error);
      weft::this_fiber::sleep_for(5ms);
      return 1;
    });
    EXPECT_EQ(outer_done, 1);
  });
}

TEST(Scope, ExpiredScopeFailsEveryLaterCallInsideIt) {
  run_checked([] {
    weft::deadline_scope scope(10ms);
    EXPECT_THROW(weft::this_fiber::sleep_for(1s), timeout_error);
    EXPECT_TRUE(scope.expired());
    weft::channel<int> ch(1);
    EXPECT_THROW(ch.recv(), timeout_error);
    EXPECT_THROW(weft::this_fiber::check_cancelled(), timeout_error);
    EXPECT_EQ(ch.try_send(1), weft::channel_status::ok);  // non-blocking calls still work
  });
}

TEST(Scope, OwnShorterDeadlineStillReportsAsAValue) {
  run_checked([] {
    weft::with_timeout(10s, [] {
      weft::channel<int> ch;
      EXPECT_EQ(ch.recv_for(5ms).status, weft::channel_status::timeout);
      weft::semaphore sem(0);
      EXPECT_FALSE(sem.acquire_for(5ms));
    });
  });
}

TEST(Scope, EveryBlockingCallEndsAndReleasesWhatItHeld) {
  run_checked([] {
    weft::channel<int> ch;
    EXPECT_THROW(weft::with_timeout(5ms, [&] { ch.recv(); }), timeout_error);
    EXPECT_THROW(weft::with_timeout(5ms, [&] { ch.send(1); }), timeout_error);

    weft::semaphore sem(1);
    sem.acquire();
    EXPECT_THROW(weft::with_timeout(5ms, [&] { sem.acquire(); }), timeout_error);
    sem.release();
    EXPECT_TRUE(sem.try_acquire());  // the timed-out waiter took nothing
    sem.release();

    weft::mutex m;
    auto holder = weft::spawn([&] {
      std::lock_guard lock(m);
      weft::this_fiber::sleep_for(50ms);
    });
    weft::this_fiber::yield();
    EXPECT_THROW(weft::with_timeout(5ms, [&] { std::lock_guard lock(m); }), timeout_error);
    holder.join();
    EXPECT_TRUE(m.try_lock());  // not left locked by the waiter that gave up
    m.unlock();

    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_for(10s); });
    EXPECT_THROW(weft::with_timeout(5ms, [&] { sleeper.join(); }), timeout_error);
    sleeper.cancel();
    EXPECT_THROW(sleeper.join(), weft::cancelled_error);

    weft::channel<int> a, b;
    EXPECT_THROW(weft::with_timeout(5ms, [&] {
                   weft::select(weft::on_recv(a, [](std::optional<int>) {}),
                                weft::on_recv(b, [](std::optional<int>) {}));
                 }),
                 timeout_error);

    auto [x, y] = weft::net::unix_stream::pair();
    char buf[4];
    EXPECT_THROW(weft::with_timeout(5ms, [&, &x = x] { x.read_some(buf); }), timeout_error);
    y.write_all("data");  // nothing was consumed by the read that timed out
    EXPECT_EQ(x.read_exact(buf), 4u);

    weft::event ev;
    EXPECT_THROW(weft::with_timeout(5ms, [&] { ev.wait(); }), timeout_error);
    weft::condition_variable cv;
    std::unique_lock lock(m);
    EXPECT_THROW(weft::with_timeout(5ms, [&] { cv.wait(lock); }), timeout_error);
    EXPECT_TRUE(lock.owns_lock());  // re-taken despite the expired scope
  });
}

TEST(Scope, CancellationStaysDistinctFromTimeout) {
  run_checked([] {
    auto f = weft::spawn([] { weft::with_timeout(10s, [] { weft::this_fiber::sleep_for(10s); }); });
    weft::this_fiber::sleep_for(2ms);
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
  });
}

TEST(Shield, DefersCancellationToItsEnd) {
  run_checked([] {
    bool finished = false;
    auto f = weft::spawn([&] {
      weft::shield([&] {
        weft::this_fiber::sleep_for(20ms);  // not interrupted
        EXPECT_TRUE(weft::this_fiber::cancellation_requested());
        finished = true;
      });
      ADD_FAILURE() << "shield returned although a cancellation was pending";
    });
    weft::this_fiber::sleep_for(2ms);
    f.cancel();
    EXPECT_THROW(f.join(), weft::cancelled_error);
    EXPECT_TRUE(finished);

    // Without a cancellation, shield returns fn's value.
    EXPECT_EQ(weft::shield([] { return 7; }), 7);
  });
}

TEST(Shield, OuterScopesDoNotApplyInnerOnesDo) {
  run_checked([] {
    bool inner_done = false;
    weft::with_timeout(10s, [&] {
      weft::deadline_scope outer(5ms);
      // The shielded part runs past the outer deadline unharmed; the expiry is
      // delivered when it ends, like a cancellation.
      EXPECT_THROW(weft::shield([&] {
                     weft::this_fiber::sleep_for(20ms);
                     EXPECT_THROW(weft::with_timeout(5ms, [] { weft::this_fiber::sleep_for(10s); }),
                                  timeout_error);
                     inner_done = true;
                   }),
                   timeout_error);
      EXPECT_THROW(weft::this_fiber::sleep_for(1s), timeout_error);  // outside the shield again
    });
    EXPECT_TRUE(inner_done);
  });
}

TEST(Scope, MisuseOutsideAFiber) {
  EXPECT_THROW(weft::deadline_scope(1s), weft::error);
  EXPECT_THROW(weft::shield([] {}), weft::error);
}

}  // namespace
