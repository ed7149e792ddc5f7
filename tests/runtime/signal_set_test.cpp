// signal_set: signals read in a fiber, and the thread's signal mask restored per
// signal, in any order, per thread.
#include <pthread.h>

#include <csignal>
#include <latch>
#include <memory>
#include <optional>
#include <thread>

#include "../weft_test.hpp"

using namespace weft_test;

namespace {

bool blocked(int sig) {
  sigset_t mask;
  ::pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  return sigismember(&mask, sig) == 1;
}

// The field case (cases/signal_set_out_of_order.cpp): destroying the older set first
// used to restore the whole mask it saw, unblocking the younger set's SIGUSR2, and
// the signal killed the process.
TEST(SignalSet, DestroyedInCreationOrderLeavesTheLiveSetItsSignal) {
  hang_guard guard;
  run_checked([] {
    auto first = std::make_unique<weft::signal_set>(std::initializer_list<int>{SIGUSR1});
    weft::signal_set second{SIGUSR2};
    first.reset();
    EXPECT_FALSE(blocked(SIGUSR1)) << "the first set's signal is still blocked";
    EXPECT_TRUE(blocked(SIGUSR2)) << "the live set's signal was unblocked";
    ::pthread_kill(::pthread_self(), SIGUSR2);
    EXPECT_EQ(second.wait_for(5s), SIGUSR2);
  });
  EXPECT_FALSE(blocked(SIGUSR2));
}

TEST(SignalSet, TwoSetsSharingASignalKeepItBlockedUntilBothAreGone) {
  hang_guard guard;
  run_checked([] {
    auto a = std::make_unique<weft::signal_set>(std::initializer_list<int>{SIGUSR1});
    auto b = std::make_unique<weft::signal_set>(std::initializer_list<int>{SIGUSR1, SIGUSR2});
    a.reset();
    EXPECT_TRUE(blocked(SIGUSR1)) << "unblocked while another set still has it";
    ::pthread_kill(::pthread_self(), SIGUSR1);
    EXPECT_EQ(b->wait_for(5s), SIGUSR1);
    b.reset();
    EXPECT_FALSE(blocked(SIGUSR1));
    EXPECT_FALSE(blocked(SIGUSR2));
  });
}

TEST(SignalSet, SignalBlockedByTheProgramStaysBlocked) {
  sigset_t mine;
  sigemptyset(&mine);
  sigaddset(&mine, SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &mine, nullptr), 0);
  run_checked([] {
    {
      weft::signal_set both{SIGUSR1, SIGUSR2};
      weft::signal_set again{SIGUSR1};
    }
    EXPECT_TRUE(blocked(SIGUSR1)) << "a signal the program had blocked was unblocked";
    EXPECT_FALSE(blocked(SIGUSR2));
  });
  ::pthread_sigmask(SIG_UNBLOCK, &mine, nullptr);
}

// A signal that arrived for a set and was never read is discarded with the set, not
// delivered to its default action (which would end this process).
TEST(SignalSet, UnreadSignalGoesWithTheLastSet) {
  run_checked([] {
    {
      weft::signal_set set{SIGUSR1};
      ::pthread_kill(::pthread_self(), SIGUSR1);
    }
    EXPECT_FALSE(blocked(SIGUSR1));
  });
}

// Each thread has its own mask: sets on two scheduler threads, one destroyed while
// the other waits, each thread restored on its own.
TEST(SignalSet, SetsOnTwoThreadsRestoreEachOwnMask) {
  hang_guard guard;
  std::latch both_made(2);
  std::latch first_gone(1);
  bool first_restored = false, second_kept = false, second_restored = false;
  std::optional<int> second_got;

  std::thread first([&] {
    weft::run([&] {
      auto set = std::make_unique<weft::signal_set>(std::initializer_list<int>{SIGUSR1});
      both_made.arrive_and_wait();
      set.reset();
      first_restored = !blocked(SIGUSR1);
      first_gone.count_down();
    });
  });
  std::thread second([&] {
    weft::run([&] {
      weft::signal_set set{SIGUSR1, SIGUSR2};
      both_made.arrive_and_wait();
      first_gone.wait();
      second_kept = blocked(SIGUSR1);
      second_got = set.wait_for(10s);  // the main thread signals this thread
    });
    second_restored = !blocked(SIGUSR1) && !blocked(SIGUSR2);
  });
  first_gone.wait();
  first.join();
  ::pthread_kill(second.native_handle(), SIGUSR1);
  second.join();
  EXPECT_TRUE(first_restored);
  EXPECT_TRUE(second_kept) << "another thread's set changed this thread's mask";
  EXPECT_EQ(second_got, SIGUSR1);
  EXPECT_TRUE(second_restored);
}

TEST(SignalSet, UncatchableOrInvalidSignalsAreRefused) {
  run_checked([] {
    for (int sig : {SIGKILL, SIGSTOP, 0, -1, NSIG, 1000}) {
      try {
        weft::signal_set set{SIGUSR1, sig};
        ADD_FAILURE() << "accepted signal " << sig;
      } catch (const weft::error& e) {
        EXPECT_EQ(e.code(), weft::errc::invalid_argument) << sig;
        EXPECT_NE(std::string(e.what()).find("weft::signal_set"), std::string::npos) << e.what();
      }
    }
    EXPECT_FALSE(blocked(SIGUSR1)) << "a refused set left its signals blocked";
  });
}

}  // namespace
