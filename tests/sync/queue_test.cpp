// weft::queue (asyncio.Queue): orders, waiting put and get, deadlines,
// cancellation, task_done and join, plain threads, misuse, destruction.
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

// Queue's tests run with every fiber on one scheduler and spread over two
// (weft_test.hpp's spread_test); QueueFifo holds the one whose point is an order
// of waiters only one scheduler fixes.
class Queue : public spread_test {};
WEFT_SPREAD_TEST_SUITE(Queue);

TEST_P(Queue, ThreeOrders) {
  run([&] {
    weft::queue<int> fifo;
    weft::lifo_queue<int> lifo;
    weft::priority_queue<std::pair<int, std::string>> by_priority;
    for (int v : {3, 1, 2}) {
      fifo.put(v);
      lifo.put(v);
      by_priority.put({v, "job " + std::to_string(v)});
    }
    EXPECT_EQ(fifo.size(), 3u);
    std::vector<int> f, l;
    std::vector<std::string> p;
    for (int i = 0; i < 3; ++i) {
      f.push_back(fifo.get());
      l.push_back(lifo.get());
      p.push_back(by_priority.get().second);
    }
    EXPECT_EQ(f, (std::vector<int>{3, 1, 2}));
    EXPECT_EQ(l, (std::vector<int>{2, 1, 3}));
    EXPECT_EQ(p, (std::vector<std::string>{"job 1", "job 2", "job 3"}));
    EXPECT_TRUE(fifo.empty());
    weft::priority_queue<int, std::greater<int>> largest_first;
    for (int v : {5, 9, 1}) largest_first.put(v);
    EXPECT_EQ(largest_first.get(), 9);
  });
}

TEST_P(Queue, GetWaitsForAPut) {
  run([&] {
    weft::queue<std::string> q;
    auto getter = spawn([&] { return q.get(); });
    settle();
    q.put("hello");
    EXPECT_EQ(getter.join(), "hello");
    EXPECT_TRUE(q.empty());
  });
}

// A full queue: a put waits, and the room a get makes goes to it, in order.
TEST_P(Queue, PutWaitsWhileFull) {
  run([&] {
    weft::queue<int> q(2);
    q.put(1);
    q.put(2);
    EXPECT_TRUE(q.full());
    EXPECT_FALSE(q.try_put(99));
    auto putter = spawn([&] {
      q.put(3);
      q.put(4);
    });
    settle();
    EXPECT_EQ(q.size(), 2u);  // waiting or not there yet: never more than maxsize
    std::vector<int> got;
    for (int i = 0; i < 4; ++i) got.push_back(q.get());
    putter.join();
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_EQ(q.try_get(), std::nullopt);
  });
}

TEST_P(Queue, DeadlinesTakeAndLeaveNothing) {
  run([&] {
    weft::queue<std::string> q(1);
    EXPECT_EQ(q.get_for(2ms), std::nullopt);
    q.put("first");
    std::string mine = "mine";
    EXPECT_FALSE(q.put_for(std::move(mine), 2ms));
    EXPECT_EQ(mine, "mine");  // the item stays with the caller
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.unfinished(), 1u);
    EXPECT_FALSE(q.put_until(std::string("past"), weft::clock::now() - 1h));
    EXPECT_EQ(q.get_until(weft::no_deadline), "first");
    EXPECT_TRUE(q.put_until(std::move(mine), weft::clock::now() - 1h));  // room: no wait
    EXPECT_EQ(q.get(), "mine");
  });
}

TEST_P(Queue, CancelledGetterLeavesWithoutSkippingOthers) {
  run([&] {
    weft::queue<int> q;
    park_signal first_parked;
    auto first = spawn([&] {
      first_parked.announce();
      return q.get();
    });
    first_parked.wait();
    auto second = spawn([&] { return q.get(); });
    first.cancel();
    EXPECT_THROW(first.join(), weft::cancelled_error);
    q.put(7);  // goes to the second, not into the void
    EXPECT_EQ(second.join(), 7);
  });
}

TEST_P(Queue, CancelledPutterKeepsItsItem) {
  run([&] {
    weft::queue<std::string> q(1);
    q.put("fills it");
    std::string item = "kept";
    std::atomic<bool> threw{false};
    auto putter = spawn([&] {
      try {
        q.put(std::move(item));
      } catch (const weft::cancelled_error&) {
        threw = true;
        throw;
      }
    });
    settle();
    putter.cancel();
    EXPECT_THROW(putter.join(), weft::cancelled_error);
    EXPECT_TRUE(threw);
    EXPECT_EQ(item, "kept");
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.get(), "fills it");
  });
}

// The worker-pool pattern: join returns once every item had its task_done.
TEST_P(Queue, JoinWaitsUntilEveryItemIsProcessed) {
  run([&] {
    weft::queue<int> jobs(4);
    std::atomic<int> processed{0}, sum{0};
    std::vector<weft::fiber<void>> workers;
    for (int i = 0; i < 3; ++i)
      workers.push_back(spawn([&] {
        for (;;) {
          const int job = jobs.get();
          weft::this_fiber::sleep_for(std::chrono::microseconds(50));
          sum += job;
          ++processed;
          jobs.task_done();
        }
      }));
    for (int i = 1; i <= 30; ++i) jobs.put(i);
    jobs.join();
    EXPECT_EQ(processed.load(), 30);
    EXPECT_EQ(sum.load(), 465);
    EXPECT_EQ(jobs.unfinished(), 0u);
    for (auto& w : workers) w.cancel();
    for (auto& w : workers) EXPECT_THROW(w.join(), weft::cancelled_error);
  });
}

TEST_P(Queue, JoinDeadlineAndEmptyJoin) {
  run([&] {
    weft::queue<int> q;
    q.join();  // nothing put: returns at once
    q.put(1);
    EXPECT_FALSE(q.join_for(2ms));
    EXPECT_EQ(q.get(), 1);
    EXPECT_FALSE(q.join_for(2ms));  // got, not yet done
    auto joiner = spawn([&] { q.join(); });
    settle();
    q.task_done();
    joiner.join();
    EXPECT_TRUE(q.join_for(0ms));
  });
}

TEST_P(Queue, TaskDoneTooOftenIsAnError) {
  run([&] {
    weft::queue<int> q;
    q.put(1);
    q.get();
    q.task_done();
    try {
      q.task_done();
      ADD_FAILURE() << "accepted";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::invalid_argument);
      EXPECT_STREQ(e.what(), "weft::queue::task_done: called more times than items were put");
    }
  });
}

TEST_P(Queue, MoveOnlyItems) {
  run([&] {
    weft::queue<std::unique_ptr<int>> q(1);
    auto producer = spawn([&] {
      for (int i = 0; i < 10; ++i) q.put(std::make_unique<int>(i));
    });
    for (int i = 0; i < 10; ++i) EXPECT_EQ(*q.get(), i);
    producer.join();
  });
}

TEST_P(Queue, DestroyedWhileAFiberWaits) {
  hang_guard guard;
  run([&] {
    auto q = std::make_unique<weft::queue<int>>();
    park_signal parked;
    auto getter = spawn([&parked, raw = q.get()] {
      parked.announce();
      return raw->get();
    });
    parked.wait();
    q.reset();
    try {
      getter.join();
      ADD_FAILURE() << "no exception";
    } catch (const weft::error& e) {
      EXPECT_EQ(e.code(), weft::errc::destroyed_while_waiting);
      EXPECT_STREQ(e.what(), "weft::queue::get: destroyed while this fiber waited on it");
    }
  });
}

// A plain thread puts and gets, blocking only itself; the fibers go on.
TEST_P(Queue, PlainThreadPutsAndGets) {
  run([&] {
    weft::queue<int> to_fibers(1), to_thread;
    auto keep_open = weft::this_scheduler();  // the thread is a way in: no deadlock
    std::thread t([&] {
      for (int i = 0; i < 100; ++i) to_fibers.put(int(i));
      int sum = 0;
      for (int i = 0; i < 100; ++i) sum += to_thread.get();
      to_fibers.put(int(sum));
    });
    auto relay = spawn([&] {
      for (int i = 0; i < 100; ++i) to_thread.put(to_fibers.get() * 2);
    });
    relay.join();
    EXPECT_EQ(to_fibers.get(), 9900);
    t.join();
  });
}

// shutdown (asyncio 3.13): puts fail at once, gets drain what is queued, then fail.
TEST_P(Queue, ShutdownStopsPutsAndLetsGetsDrain) {
  run([&] {
    weft::queue<std::string> q;
    q.put("a");
    q.put("b");
    EXPECT_FALSE(q.is_shut_down());
    q.shutdown();
    EXPECT_TRUE(q.is_shut_down());
    std::string late = "late";
    try {
      q.put(std::move(late));
      ADD_FAILURE() << "put accepted";
    } catch (const weft::queue_shut_down_error& e) {
      EXPECT_EQ(e.code(), weft::errc::queue_shut_down);
      EXPECT_STREQ(e.what(), "weft::queue::put: queue is shut down");
    }
    EXPECT_EQ(late, "late");  // the item stays with the caller
    EXPECT_THROW(q.try_put(std::string("x")), weft::queue_shut_down_error);
    EXPECT_THROW(q.put_for(std::string("x"), 1h), weft::queue_shut_down_error);
    EXPECT_EQ(q.get(), "a");
    EXPECT_EQ(q.try_get(), "b");
    EXPECT_THROW(q.get(), weft::queue_shut_down_error);
    try {  // not a std::nullopt "timeout"; named as called
      q.get_for(1h);
      ADD_FAILURE() << "get_for returned";
    } catch (const weft::queue_shut_down_error& e) {
      EXPECT_STREQ(e.what(), "weft::queue::get_for: queue is shut down");
    }
    EXPECT_THROW(q.try_get(), weft::queue_shut_down_error);
    q.shutdown();  // again: nothing more happens
    q.task_done();
    q.task_done();
    q.join();
  });
}

TEST_P(Queue, ShutdownWakesWaitingGettersAndPutters) {
  hang_guard guard;
  run([&] {
    weft::queue<int> empty, full(1);
    full.put(1);
    int kept = 2;
    auto getter = spawn([&] { return empty.get(); });
    auto timed_getter = spawn([&] { return empty.get_for(1h); });
    auto putter = spawn([&] { full.put(std::move(kept)); });
    settle();
    empty.shutdown();
    full.shutdown();
    try {
      getter.join();
      ADD_FAILURE() << "get returned";
    } catch (const weft::queue_shut_down_error& e) {
      EXPECT_STREQ(e.what(), "weft::queue::get: queue is shut down");
    }
    EXPECT_THROW(timed_getter.join(), weft::queue_shut_down_error);
    EXPECT_THROW(putter.join(), weft::queue_shut_down_error);
    EXPECT_EQ(kept, 2);
    EXPECT_EQ(full.size(), 1u);  // what was queued stays for the getters
    EXPECT_EQ(full.get(), 1);
  });
}

// The worker pool without sentinels: each worker's range-for ends when the owner,
// after join(), shuts the queue down; every item is processed exactly once.
TEST_P(Queue, RangeForWorkersEndAtShutdown) {
  hang_guard guard;
  run([&] {
    weft::queue<int> jobs(4);
    std::atomic<int> processed{0}, sum{0};
    std::vector<weft::fiber<int>> workers;
    for (int i = 0; i < 3; ++i)
      workers.push_back(spawn([&] {
        int mine = 0;
        for (int& job : jobs) {
          weft::this_fiber::yield();
          sum += job;
          ++processed;
          ++mine;
          jobs.task_done();
        }
        return mine;
      }));
    for (int i = 1; i <= 30; ++i) jobs.put(int(i));
    jobs.join();
    jobs.shutdown();
    int total = 0;
    for (auto& w : workers) total += w.join();
    EXPECT_EQ(total, 30);
    EXPECT_EQ(processed.load(), 30);
    EXPECT_EQ(sum.load(), 465);
  });
}

// shutdown(true) discards what is queued, counting it done: join returns once the
// items already taken are done, and no worker sees a discarded item.
TEST_P(Queue, ImmediateShutdownDiscardsQueuedItems) {
  hang_guard guard;
  run([&] {
    weft::lifo_queue<int> q;
    for (int i = 0; i < 5; ++i) q.put(int(i));
    EXPECT_EQ(q.get(), 4);  // taken: still unfinished
    auto joiner = spawn([&] { q.join(); });
    settle();
    q.shutdown(true);
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.unfinished(), 1u);
    EXPECT_THROW(q.get(), weft::queue_shut_down_error);
    q.task_done();  // the one taken before
    joiner.join();
    EXPECT_EQ(q.unfinished(), 0u);

    weft::queue<int> graceful_first;
    graceful_first.put(1);
    graceful_first.shutdown();
    graceful_first.shutdown(true);  // a second, immediate call still discards
    EXPECT_EQ(graceful_first.size(), 0u);
    graceful_first.join();
  });
}

// An item whose destructor blocks: shutdown(true) destroys the discarded items
// after releasing the queue's lock, so another fiber (spread: on the other
// scheduler, where it used to spin in the lock for good) can use the queue and set
// the event the destructor waits for.
TEST_P(Queue, ImmediateShutdownDestroysItemsOutsideItsLock) {
  hang_guard guard;
  run([&] {
    weft::event released;
    int destroyed = 0;
    struct item {
      weft::event* released;
      int* destroyed;
      bool live = true;
      item(weft::event* r, int* d) : released(r), destroyed(d) {}
      item(item&& o) noexcept : released(o.released), destroyed(o.destroyed), live(std::exchange(o.live, false)) {}
      ~item() {
        if (!live) return;
        released->wait();
        ++*destroyed;
      }
    };
    weft::queue<item> q;
    q.put(item(&released, &destroyed));
    q.put(item(&released, &destroyed));
    std::size_t seen_size = 99;
    auto other = spawn([&] {
      weft::this_fiber::sleep_for(10ms);
      seen_size = q.size();
      released.set();
    });
    q.shutdown(true);
    other.join();
    EXPECT_EQ(seen_size, 0u);
    EXPECT_EQ(destroyed, 2);
    EXPECT_EQ(q.unfinished(), 0u);
  });
}

// A plain thread blocked in get is released by a shutdown from a fiber.
TEST_P(Queue, ShutdownReleasesAPlainThread) {
  hang_guard guard;
  run([&] {
    weft::queue<int> q;
    auto keep_open = weft::this_scheduler();
    std::atomic<bool> released{false};
    std::thread t([&] {
      try {
        q.get();
      } catch (const weft::queue_shut_down_error&) {
        released = true;
      }
    });
    weft::this_fiber::sleep_for(5ms);  // most often the thread waits by now; either way it must end
    q.shutdown();
    while (!released) weft::this_fiber::sleep_for(1ms);
    t.join();
    EXPECT_TRUE(released);
  });
}

TEST(QueueFifo, GettersAreServedInArrivalOrder) {
  run_checked([] {
    weft::queue<int> q;
    std::vector<int> got(3, -1);
    std::vector<weft::fiber<void>> getters;
    for (int i = 0; i < 3; ++i) getters.push_back(weft::spawn([&, i] { got[i] = q.get(); }));
    weft::this_fiber::yield();  // all three wait, in spawn order
    for (int i = 0; i < 3; ++i) q.put(i * 10);
    for (auto& g : getters) g.join();
    EXPECT_EQ(got, (std::vector<int>{0, 10, 20}));
  });
}

TEST(QueueArguments, NegativeMaxsizeIsInvalidArgument) {
  try {
    weft::queue<int> q(-1);
    ADD_FAILURE() << "accepted";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::invalid_argument);
    EXPECT_STREQ(e.what(), "weft::queue: maxsize -1 is negative (for a queue without limit: 0)");
  }
  weft::queue<int> unlimited, limited(3);
  EXPECT_EQ(unlimited.maxsize(), 0u);
  EXPECT_FALSE(unlimited.full());
  EXPECT_EQ(limited.maxsize(), 3u);
}

TEST(QueueOutsideAFiber, TryFormsWorkAndWaitingFormsBlockOnlyThisThread) {
  weft::queue<int> q(1);
  EXPECT_TRUE(q.try_put(1));
  EXPECT_FALSE(q.try_put(2));
  EXPECT_EQ(q.try_get(), 1);
  EXPECT_EQ(q.get_for(1ms), std::nullopt);  // a plain thread waits, then times out
  q.put(5);
  EXPECT_EQ(q.get(), 5);
  q.task_done();
  q.task_done();
  EXPECT_TRUE(q.join_for(0ms));
}
