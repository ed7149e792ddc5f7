// The C++ runtime's exception state (the stack of caught exceptions behind
// std::current_exception() and `throw;`, and std::uncaught_exceptions()) is per
// thread; weft keeps it per fiber, so a fiber may block inside a catch block or in a
// destructor during unwinding while other fibers of the thread handle their own.
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "../weft_test.hpp"

namespace {

using weft_test::hang_guard;
using weft_test::run_checked;

// rethrown_value rethrows `p` and returns the std::string it holds (or "?").
std::string rethrown_value(const std::exception_ptr& p) {
  if (!p) return "null";
  try {
    std::rethrow_exception(p);
  } catch (const std::string& s) {
    return s;
  } catch (...) {
    return "?";
  }
}

// `throw;` inside a catch block: what the innermost handled exception is.
std::string bare_rethrow_value() {
  try {
    throw;
  } catch (const std::string& s) {
    return s;
  } catch (...) {
    return "?";
  }
}

// Two fibers block inside their own catch blocks and leave them in the order that
// is wrong for one shared stack (the one that caught first leaves first). Before
// the fix, A's __cxa_end_catch freed B's exception (ASan: heap-use-after-free) and
// B's current_exception() was A's or null.
TEST(ExceptionState, CatchBlocksBlockingInTwoFibersKeepTheirOwnException) {
  hang_guard guard;
  run_checked([] {
    weft::event a_caught, b_caught, a_may_leave, b_may_leave, a_left;
    std::string a_before, a_after, a_bare, b_before, b_after, b_bare;
    std::string a_after_leaving = "unset", b_after_leaving = "unset";
    auto a = weft::spawn([&] {
      try {
        throw std::string(100, 'a');  // long: on the heap, so ASan sees a stale free
      } catch (const std::string& e) {
        a_before = rethrown_value(std::current_exception());
        a_caught.set();
        a_may_leave.wait();
        a_after = rethrown_value(std::current_exception());
        a_bare = bare_rethrow_value();
        EXPECT_EQ(e, std::string(100, 'a'));
      }
      a_after_leaving = rethrown_value(std::current_exception());
      a_left.set();
    });
    auto b = weft::spawn([&] {
      a_caught.wait();
      try {
        throw std::string(100, 'b');
      } catch (const std::string& e) {
        b_before = rethrown_value(std::current_exception());
        b_caught.set();
        b_may_leave.wait();  // A leaves its catch block meanwhile
        b_after = rethrown_value(std::current_exception());
        b_bare = bare_rethrow_value();
        EXPECT_EQ(e, std::string(100, 'b'));
      }
      b_after_leaving = rethrown_value(std::current_exception());
    });
    b_caught.wait();
    // The main fiber handles nothing, whatever the others do.
    EXPECT_FALSE(std::current_exception());
    a_may_leave.set();
    a_left.wait();
    EXPECT_FALSE(std::current_exception());
    b_may_leave.set();
    a.join();
    b.join();
    EXPECT_FALSE(std::current_exception());
    EXPECT_EQ(std::uncaught_exceptions(), 0);

    EXPECT_EQ(a_before, std::string(100, 'a'));
    EXPECT_EQ(a_after, std::string(100, 'a'));
    EXPECT_EQ(a_bare, std::string(100, 'a'));
    EXPECT_EQ(a_after_leaving, "null");
    EXPECT_EQ(b_before, std::string(100, 'b'));
    EXPECT_EQ(b_after, std::string(100, 'b'));
    EXPECT_EQ(b_bare, std::string(100, 'b'));
    EXPECT_EQ(b_after_leaving, "null");
  });
}

// A destructor that blocks while its fiber unwinds sees std::uncaught_exceptions()
// == 1 before and after blocking; another fiber running meanwhile (and throwing and
// catching its own exception) sees 0 outside its own unwinding.
TEST(ExceptionState, UncaughtCountIsPerFiberWhileADestructorBlocksDuringUnwinding) {
  hang_guard guard;
  run_checked([] {
    weft::event unwinding, may_finish;
    int in_dtor_before = -1, in_dtor_after = -1, other_seen = -1, other_in_own_dtor = -1,
        other_after_own = -1;
    bool caught = false;
    struct blocks_in_destructor {
      weft::event& unwinding;
      weft::event& may_finish;
      int& before;
      int& after;
      ~blocks_in_destructor() {
        before = std::uncaught_exceptions();
        unwinding.set();
        may_finish.wait();
        after = std::uncaught_exceptions();
      }
    };
    struct records_count {
      int& seen;
      ~records_count() { seen = std::uncaught_exceptions(); }
    };
    auto a = weft::spawn([&] {
      try {
        blocks_in_destructor b{unwinding, may_finish, in_dtor_before, in_dtor_after};
        throw std::runtime_error("a");
      } catch (const std::runtime_error&) {
        caught = true;
      }
      EXPECT_EQ(std::uncaught_exceptions(), 0);
    });
    auto other = weft::spawn([&] {
      unwinding.wait();
      other_seen = std::uncaught_exceptions();
      try {
        records_count r{other_in_own_dtor};
        throw 42;
      } catch (int) {
      }
      other_after_own = std::uncaught_exceptions();
      may_finish.set();
    });
    a.join();
    other.join();
    EXPECT_TRUE(caught);
    EXPECT_EQ(in_dtor_before, 1);
    EXPECT_EQ(in_dtor_after, 1);
    EXPECT_EQ(other_seen, 0);
    EXPECT_EQ(other_in_own_dtor, 1);
    EXPECT_EQ(other_after_own, 0);
    EXPECT_EQ(std::uncaught_exceptions(), 0);
  });
}

// Many fibers, each inside nested catch blocks, yield to each other and leave in
// every order; each sees its own exceptions at every step.
TEST(ExceptionState, NestedCatchBlocksOfManyFibersInterleaveByYield) {
  hang_guard guard;
  run_checked([] {
    constexpr int n = 8;
    std::vector<weft::fiber<void>> fibers;
    std::vector<int> wrong(n, 0);
    for (int i = 0; i < n; ++i) {
      fibers.push_back(weft::spawn([i, &wrong] {
        const std::string outer = "outer" + std::to_string(i) + std::string(64, '.');
        const std::string inner = "inner" + std::to_string(i) + std::string(64, '.');
        try {
          throw outer;
        } catch (const std::string&) {
          for (int k = 0; k < i + 1; ++k) {
            weft::this_fiber::yield();
            if (bare_rethrow_value() != outer) ++wrong[i];
          }
          try {
            throw inner;
          } catch (const std::string&) {
            for (int k = 0; k < n - i; ++k) {
              weft::this_fiber::yield();
              if (bare_rethrow_value() != inner) ++wrong[i];
            }
          }
          weft::this_fiber::yield();
          if (rethrown_value(std::current_exception()) != outer) ++wrong[i];
        }
        weft::this_fiber::yield();
        if (std::current_exception()) ++wrong[i];
      }));
    }
    for (auto& f : fibers) f.join();
    for (int i = 0; i < n; ++i) EXPECT_EQ(wrong[i], 0) << "fiber " << i;
  });
}

// A fiber may rethrow, after blocking, the exception it is handling; join reports
// that one, not another fiber's.
TEST(ExceptionState, RethrowAfterBlockingInACatchBlockReachesJoin) {
  hang_guard guard;
  run_checked([] {
    weft::event both_caught_a, may_rethrow;
    auto a = weft::spawn([&] {
      try {
        throw std::string("from a");
      } catch (const std::string&) {
        both_caught_a.set();
        may_rethrow.wait();
        throw;
      }
    });
    auto b = weft::spawn([&] {
      both_caught_a.wait();
      try {
        throw std::string("from b");
      } catch (const std::string&) {
        may_rethrow.set();
        weft::this_fiber::yield();  // a rethrows meanwhile
        EXPECT_EQ(bare_rethrow_value(), "from b");
      }
    });
    std::string got;
    try {
      a.join();
    } catch (const std::string& s) {
      got = s;
    }
    b.join();
    EXPECT_EQ(got, "from a");
  });
}

// weft::run called inside a catch block: its fibers (and its loop) start with no
// exception, and the caller's is still current when run returns.
TEST(ExceptionState, RunInsideACatchBlockKeepsTheCallersExceptionApart) {
  hang_guard guard;
  try {
    throw std::string("caller");
  } catch (const std::string&) {
    std::string seen_in_main = "unset", seen_in_child = "unset";
    run_checked([&] {
      seen_in_main = rethrown_value(std::current_exception());
      auto f = weft::spawn([&] {
        weft::this_fiber::sleep_for(std::chrono::milliseconds(1));  // through the loop
        seen_in_child = rethrown_value(std::current_exception());
      });
      f.join();
    });
    EXPECT_EQ(seen_in_main, "null");
    EXPECT_EQ(seen_in_child, "null");
    EXPECT_EQ(bare_rethrow_value(), "caller");
  }
  EXPECT_FALSE(std::current_exception());
}

}  // namespace
