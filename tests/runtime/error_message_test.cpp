// Error messages: each names the user's call once and says what went wrong once.
#include <cxxabi.h>

#include <cstdlib>
#include <string>
#include <system_error>

#include "../weft_test.hpp"

using namespace weft_test;

namespace {

template <class F>
std::string message_of(F f, weft::errc expected) {
  try {
    f();
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), expected) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no weft::error thrown";
  return {};
}

}  // namespace

TEST(ErrorMessage, EveryCodeReadsCallThenCondition) {
  for (int i = static_cast<int>(weft::errc::cancelled); i <= static_cast<int>(weft::errc::queue_shut_down); ++i) {
    const auto e = static_cast<weft::errc>(i);
    const std::string condition = weft::category().message(i);
    EXPECT_EQ(std::string(weft::error(e).what()), condition);
    EXPECT_EQ(std::string(weft::error(e, "weft::some_call").what()), "weft::some_call: " + condition);
    EXPECT_EQ(std::string(weft::error(e, "weft::some_call", "what went wrong").what()),
              "weft::some_call: what went wrong");
    EXPECT_EQ(weft::error(e, "weft::some_call", "what went wrong").code(), e);
  }
}

// A code of another category reads the same way, and a copy (as throw and
// exception_ptr make) shares the text.
TEST(ErrorMessage, OtherCategoriesAndCopiesKeepTheText) {
  const std::error_code code = std::make_error_code(std::errc::connection_reset);
  const weft::error plain(code, "weft::net::read_some", "");
  EXPECT_EQ(std::string(plain.what()), "weft::net::read_some: " + code.message());
  EXPECT_EQ(std::string(weft::error(code, "", "").what()), code.message());
  EXPECT_EQ(std::string(weft::error(code, "", "just this").what()), "just this");
  const weft::error copy = plain;
  EXPECT_STREQ(copy.what(), plain.what());
  EXPECT_EQ(copy.code(), code);
  EXPECT_EQ(std::string(weft::cancelled_error("weft::channel::recv").what()), "weft::channel::recv: fiber cancelled");
  EXPECT_EQ(std::string(weft::cancelled_error(nullptr).what()), "fiber cancelled");
  EXPECT_EQ(std::string(weft::timeout_error().what()), "deadline passed");
}

// Outside a fiber, the text says where the caller is and what to do instead.
const std::string plain_thread_hint =
    " (start fiber code with weft::run; a plain thread hands work to fibers with "
    "this_runtime().submit()/post() or a channel)";

TEST(ErrorMessage, SleepForOutsideFiberNamesSleepFor) {
  const std::string expected = "weft::this_fiber::sleep_for: called outside a weft fiber" + plain_thread_hint;
  EXPECT_EQ(message_of([] { weft::this_fiber::sleep_for(1ms); }, weft::errc::not_in_fiber), expected);
  EXPECT_EQ(message_of([] { weft::this_fiber::sleep_for(std::chrono::seconds(0)); }, weft::errc::not_in_fiber),
            expected);
  EXPECT_EQ(message_of([] { weft::this_fiber::sleep_for(weft::duration(5)); }, weft::errc::not_in_fiber), expected);
  EXPECT_EQ(message_of([] { weft::this_fiber::sleep_until(weft::clock::now()); }, weft::errc::not_in_fiber),
            "weft::this_fiber::sleep_until: called outside a weft fiber" + plain_thread_hint);
  EXPECT_EQ(message_of([] { weft::this_fiber::yield(); }, weft::errc::not_in_fiber),
            "weft::this_fiber::yield: called outside a weft fiber" + plain_thread_hint);
}

TEST(ErrorMessage, OutsideAFiberSaysWhereAndWhatToDo) {
  run_checked([] {
    const std::string in_pool = weft::to_thread([] {
      return message_of([] { weft::this_fiber::sleep_for(1ms); }, weft::errc::not_in_fiber);
    });
    EXPECT_EQ(in_pool,
              "weft::this_fiber::sleep_for: called outside a weft fiber (in a weft::to_thread function, which runs "
              "on a plain pool thread: do the blocking call after to_thread returns)");
    // A plain thread of the program's own, while a runtime runs elsewhere.
    std::string from_thread;
    std::thread plain([&] { from_thread = message_of([] { weft::this_fiber::yield(); }, weft::errc::not_in_fiber); });
    plain.join();
    EXPECT_EQ(from_thread, "weft::this_fiber::yield: called outside a weft fiber" + plain_thread_hint);
  });
}

TEST(ErrorMessage, SelfJoinSaysItOnce) {
  std::string text;
  run_checked([&text] {
    auto self = std::make_shared<weft::fiber<void>>();
    *self = weft::spawn([self, &text] {
      weft::this_fiber::yield();
      text = message_of([&] { self->join(); }, weft::errc::would_deadlock);
    });
    self->wait();
    self->detach();
  });
  EXPECT_EQ(text, "weft::fiber::join: a fiber cannot wait for itself");
}

TEST(ErrorMessage, SecondJoinNamesJoin) {
  std::string text;
  run_checked([&text] {
    auto f = weft::spawn([] {});
    f.join();
    text = message_of([&] { f.join(); }, weft::errc::not_joinable);
  });
  EXPECT_EQ(text, "weft::fiber::join: the handle is empty (already joined, detached or moved from)");
}

TEST(ErrorMessage, SecondWaiterNamesItsCall) {
  std::string text;
  run_checked([&text] {
    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_for(20ms); });
    auto first = weft::spawn([&] { sleeper.wait(); });
    weft::this_fiber::yield();
    text = message_of([&] { sleeper.wait_for(1s); }, weft::errc::already_waited);
    first.join();
    sleeper.join();
  });
  EXPECT_EQ(text, "weft::fiber::wait_for: another fiber already waits for this fiber");
}

TEST(ErrorMessage, SyncMisuseNamesTheCall) {
  EXPECT_EQ(message_of([] { weft::semaphore s(-1); }, weft::errc::invalid_argument),
            "weft::semaphore: negative initial count -1");
  run_checked([] {
    weft::mutex m;
    EXPECT_EQ(message_of([&] { m.unlock(); }, weft::errc::not_owner),
              "weft::mutex::unlock: the calling fiber does not own this mutex");
    m.lock();
    EXPECT_EQ(message_of([&] { m.lock(); }, weft::errc::would_deadlock),
              "weft::mutex::lock: the calling fiber already holds the mutex (it is not recursive)");
    m.unlock();
    weft::channel<int> ch(1);
    ch.close();
    EXPECT_EQ(message_of([&] { ch.send(1); }, weft::errc::channel_closed), "weft::channel::send: channel is closed");
  });
}

TEST(ErrorMessage, SubmitToStoppedSchedulerNamesSubmit) {
  weft::scheduler_handle handle;
  run_checked([&handle] { handle = weft::this_scheduler(); });
  auto future = handle.submit([] { return 1; });
  EXPECT_EQ(message_of([&] { future.get(); }, weft::errc::scheduler_stopped),
            "weft::scheduler_handle::submit: the scheduler has stopped");
  EXPECT_EQ(message_of([] { weft::scheduler_handle{}.submit([] {}); }, weft::errc::scheduler_stopped),
            "weft::scheduler_handle::submit: the handle is empty");
}

TEST(ErrorMessage, CodesCompareEqualToTheirPosixConditions) {
  try {
    weft::channel<int> ch(-1);
    ADD_FAILURE() << "a negative capacity was accepted";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::invalid_argument);
    EXPECT_TRUE(e.code() == std::errc::invalid_argument);
  }
  EXPECT_TRUE(std::error_code(weft::errc::timed_out) == std::errc::timed_out);
  EXPECT_TRUE(std::error_code(weft::errc::cancelled) == std::errc::operation_canceled);
  EXPECT_TRUE(std::error_code(weft::errc::would_deadlock) == std::errc::resource_deadlock_would_occur);
  // Codes without a POSIX counterpart stay weft's own.
  EXPECT_FALSE(std::error_code(weft::errc::channel_closed) == std::errc::broken_pipe);
  EXPECT_EQ(std::error_code(weft::errc::channel_closed).default_error_condition().category(), weft::category());
}

// A program built with another sanitizer than the library is told at start which
// library to link (as if this test program had been built the other way).
TEST(ErrorMessage, SanitizerMismatchNamesTheLibraryToLink) {
  weft::detail::scheduler_options options;
  // An ASan build of this test plays a plain program, any other build an ASan one.
  const bool library_has_asan = WEFT_BUILD_SANITIZERS == 1;
  options.program_sanitizers = library_has_asan ? 0 : 1;
  const std::string what =
      message_of([&] { weft::detail::scheduler sched(options); }, weft::errc::build_mismatch);
  const std::string want = library_has_asan ? "link weft (pkg-config weft" : "link weft-asan (pkg-config weft-asan";
  EXPECT_NE(what.find("weft::run: this program is built with "), std::string::npos) << what;
  EXPECT_NE(what.find(want), std::string::npos) << what;
}

// WEFT_ASSERT: on in debug builds (./run asan, ./run tsan) and with -Drelease_asserts.
TEST(InternalCheck, FailedCheckNamesTheConditionAndAborts) {
#if defined(NDEBUG) && !defined(WEFT_RELEASE_ASSERTS)
  GTEST_SKIP() << "WEFT_ASSERT is off in this build";
#else
  EXPECT_DEATH(WEFT_ASSERT(1 + 1 == 3), "weft: internal check failed: 1 \\+ 1 == 3 \\(.*error_message_test.cpp:[0-9]+\\)");
#endif
}

// An expiry nobody catches ends the program with "terminate called after
// throwing an instance of '<type>'": the type leads with weft::timeout_error's
// name, which a user can look up, not an internal one in an anonymous namespace
// (it was 'weft::detail::(anonymous namespace)::delivered_timeout').
TEST(ErrorMessage, AnUncaughtExpiryNamesTimeoutError) {
  std::string type;
  try {
    weft::run([] { weft::with_timeout(1ms, [] { weft::this_fiber::sleep_for(1h); }); });
  } catch (...) {
    int status = 0;
    char* name = abi::__cxa_demangle(abi::__cxa_current_exception_type()->name(), nullptr, nullptr, &status);
    type = name != nullptr ? name : "";
    std::free(name);
  }
  EXPECT_TRUE(type.starts_with("weft::detail::timeout_error")) << type;
  EXPECT_EQ(type.find("anonymous"), std::string::npos) << type;
}

// A cancelled or expired wait says which call was waiting: the fiber's stack may
// have several, and "fiber cancelled" alone does not say where it stood.
TEST(ErrorMessage, CancellationNamesTheWaitingCall) {
  run_checked([] {
    auto cancelled_in = [](auto wait) {
      auto f = weft::spawn(wait);
      weft::this_fiber::yield();  // it parks
      f.cancel();
      return message_of([&] { f.join(); }, weft::errc::cancelled);
    };
    EXPECT_EQ(cancelled_in([] { weft::this_fiber::sleep_for(1h); }), "weft::this_fiber::sleep_for: fiber cancelled");
    EXPECT_EQ(cancelled_in([] { weft::this_fiber::sleep_until(weft::no_deadline); }),
              "weft::this_fiber::sleep_until: fiber cancelled");
    weft::channel<int> ch;
    EXPECT_EQ(cancelled_in([&] { ch.recv(); }), "weft::channel::recv: fiber cancelled");
    EXPECT_EQ(cancelled_in([&] { weft::select(weft::on_recv(ch)); }), "weft::select: fiber cancelled");
    weft::event ev;
    EXPECT_EQ(cancelled_in([&] { ev.wait(); }), "weft::event::wait: fiber cancelled");
    weft::queue<int> q;
    EXPECT_EQ(cancelled_in([&] { q.get(); }), "weft::queue::get: fiber cancelled");
    auto sleeper = weft::spawn([] { weft::this_fiber::sleep_for(1h); });
    EXPECT_EQ(cancelled_in([&] { sleeper.join(); }), "weft::fiber::join: fiber cancelled");
    sleeper.cancel();
    EXPECT_THROW(sleeper.join(), weft::cancelled_error);
    auto pair = weft::net::unix_stream::pair();
    EXPECT_EQ(cancelled_in([&] {
                char byte;
                pair.first.read_some({&byte, 1});
              }),
              "weft::net::stream_socket::read_some: fiber cancelled");
  });
}

TEST(ErrorMessage, ExpiredScopeNamesTheWaitingCall) {
  run_checked([] {
    const std::string what = message_of(
        [] { weft::with_timeout(2ms, [] { weft::this_fiber::sleep_for(1h); }); }, weft::errc::timed_out);
    EXPECT_EQ(what, "weft::this_fiber::sleep_for: deadline passed");
  });
}

// The forms with a deadline name themselves, not the plain call they share a path
// with: a cancellation, an expired scope and a destroyed primitive all say
// "weft::mutex::try_lock_for", not "weft::mutex::lock" (a breaker's finding).
TEST(ErrorMessage, DeadlineFormsNameThemselves) {
  run_checked([] {
    auto interrupted_in = [](auto wait) {
      auto f = weft::spawn(wait);
      weft::this_fiber::yield();  // it parks
      f.cancel();
      const std::string cancelled = message_of([&] { f.join(); }, weft::errc::cancelled);
      auto g = weft::spawn([&] {
        weft::deadline_scope budget(1ms);
        wait();
      });
      const std::string expired = message_of([&] { g.join(); }, weft::errc::timed_out);
      const std::string call = cancelled.substr(0, cancelled.find(':' + std::string(" fiber cancelled")));
      EXPECT_EQ(expired, call + ": deadline passed");
      return call;
    };
    const auto later = [] { return weft::clock::now() + 1h; };
    weft::channel<int> ch;
    EXPECT_EQ(interrupted_in([&] { ch.recv_for(1h); }), "weft::channel::recv_for");
    EXPECT_EQ(interrupted_in([&] { ch.recv_until(later()); }), "weft::channel::recv_until");
    EXPECT_EQ(interrupted_in([&] { ch.send_for(1, 1h); }), "weft::channel::send_for");
    EXPECT_EQ(interrupted_in([&] { ch.send_until(1, later()); }), "weft::channel::send_until");
    EXPECT_EQ(interrupted_in([&] { weft::select_for(1h, weft::on_recv(ch)); }), "weft::select_for");
    EXPECT_EQ(interrupted_in([&] { weft::select_until(later(), weft::on_recv(ch)); }), "weft::select_until");
    weft::mutex m;
    m.lock();
    EXPECT_EQ(interrupted_in([&] { (void)m.try_lock_for(1h); }), "weft::mutex::try_lock_for");
    EXPECT_EQ(interrupted_in([&] { (void)m.try_lock_until(later()); }), "weft::mutex::try_lock_until");
    weft::condition_variable cv;
    weft::mutex cv_mutex;
    EXPECT_EQ(interrupted_in([&] {
                std::unique_lock lock(cv_mutex);
                (void)cv.wait_for(lock, 1h);
              }),
              "weft::condition_variable::wait_for");
    EXPECT_EQ(interrupted_in([&] {
                std::unique_lock lock(cv_mutex);
                (void)cv.wait_until(lock, later(), [] { return false; });
              }),
              "weft::condition_variable::wait_until");
    m.unlock();
    weft::semaphore sem(0);
    EXPECT_EQ(interrupted_in([&] { (void)sem.acquire_for(1h); }), "weft::semaphore::acquire_for");
    EXPECT_EQ(interrupted_in([&] { (void)sem.acquire_until(later()); }), "weft::semaphore::acquire_until");
    weft::event ev;
    EXPECT_EQ(interrupted_in([&] { (void)ev.wait_for(1h); }), "weft::event::wait_for");
    EXPECT_EQ(interrupted_in([&] { (void)ev.wait_until(later()); }), "weft::event::wait_until");
    weft::wait_group wg;
    wg.add();
    EXPECT_EQ(interrupted_in([&] { (void)wg.wait_for(1h); }), "weft::wait_group::wait_for");
    EXPECT_EQ(interrupted_in([&] { (void)wg.wait_until(later()); }), "weft::wait_group::wait_until");
    wg.done();
    weft::barrier bar(2);
    EXPECT_EQ(interrupted_in([&] { (void)bar.arrive_and_wait_for(1h); }), "weft::barrier::arrive_and_wait_for");
    auto pair = weft::net::unix_stream::pair();
    EXPECT_EQ(interrupted_in([&] {
                char bytes[2];
                pair.first.read_exact({bytes, 2});
              }),
              "weft::net::stream_socket::read_exact");
    const int fd = pair.second.native_handle();
    EXPECT_EQ(interrupted_in([&] { (void)weft::wait_fd_for(fd, weft::fd_event::readable, 1h); }), "weft::wait_fd_for");
    EXPECT_EQ(interrupted_in([&] { (void)weft::wait_fd_until(fd, weft::fd_event::readable, later()); }),
              "weft::wait_fd_until");
    EXPECT_EQ(interrupted_in([&] {
                weft::fd_watch watch(fd);
                (void)watch.wait_for(weft::fd_event::readable, 1h);
              }),
              "weft::fd_watch::wait_for");
  });
}
