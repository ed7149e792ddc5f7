// Destroying a sync/ primitive while fibers wait on it: every waiter wakes with
// weft::error(errc::destroyed_while_waiting) naming its call, the process goes on,
// and the destructor returns only when no waiter can touch the memory (ASan checks
// the latter: the primitives live on the heap and are freed by the destruction).
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../weft_test.hpp"

using namespace weft_test;

namespace {

// expect_destroyed joins a fiber that must have ended by the destruction of what
// it waited on, in `call`.
template <class T>
void expect_destroyed(weft::fiber<T>& f, const std::string& call) {
  try {
    f.join();
    ADD_FAILURE() << call << ": no exception";
  } catch (const weft::error& e) {
    EXPECT_EQ(e.code(), weft::errc::destroyed_while_waiting);
    EXPECT_EQ(std::string(e.what()), call + ": destroyed while this fiber waited on it");
  }
}

}  // namespace

// Destroyed's tests run with every fiber on one scheduler and spread over two
// (weft_test.hpp's spread_test): a waiter on another scheduler's thread must also
// be woken, and the destructor must wait until it has left. DestroyedFifo and
// DestroyedOneScheduler hold the ones whose point is an order only one scheduler
// fixes; DestroyedAcrossThreads uses separate runtimes.
class Destroyed : public spread_test {
 protected:
  // destroy_under_one_waiter: `wait(*p)` in a fiber, parked when p is destroyed.
  template <class P, class Wait>
  void destroy_under_one_waiter(std::unique_ptr<P> p, Wait wait, const std::string& call) {
    hang_guard guard;
    run([&] {
      park_signal parked;
      auto waiter = spawn([&wait, &parked, raw = p.get()] {
        parked.announce();
        wait(*raw);
      });
      parked.wait();
      ASSERT_FALSE(waiter.done());
      p.reset();
      expect_destroyed(waiter, call);
    });
  }
};
WEFT_SPREAD_TEST_SUITE(Destroyed);

TEST_P(Destroyed, ChannelWakesItsSenderAndReceivers) {
  destroy_under_one_waiter(std::make_unique<weft::channel<int>>(), [](auto& ch) { ch.send(1); },
                           "weft::channel::send");
  destroy_under_one_waiter(std::make_unique<weft::channel<std::string>>(1),
                           [](auto& ch) {
                             ch.send("fills the buffer");
                             ch.send_for("waits", 1h);
                           },
                           "weft::channel::send_for");
  destroy_under_one_waiter(std::make_unique<weft::channel<int>>(), [](auto& ch) { ch.recv(); },
                           "weft::channel::recv");
  destroy_under_one_waiter(std::make_unique<weft::channel<int>>(),
                           [](auto& ch) {
                             for (int v : ch) (void)v;
                           },
                           "weft::channel::recv");
}

// Not about waiters: buffered values are destroyed once each (ring's destructor
// used to destroy each popped value twice: a double free for std::string).
TEST_P(Destroyed, ChannelDestroysBufferedValuesOnce) {
  run([&] {
    auto counted = std::make_shared<int>(0);
    {
      weft::channel<std::shared_ptr<int>> ch(4);
      for (int i = 0; i < 3; ++i) ASSERT_EQ(ch.try_send(counted), weft::channel_status::ok);
      weft::channel<std::string> strings(weft::unbounded);
      for (int i = 0; i < 20; ++i) strings.send(std::string(100, 'x'));  // grown, then destroyed
      EXPECT_EQ(counted.use_count(), 4);
    }
    EXPECT_EQ(counted.use_count(), 1);
  });
}

TEST(DestroyedFifo, ChannelWakesEveryWaiterInFifoOrder) {
  hang_guard guard;
  run_checked([] {
    auto ch = std::make_unique<weft::channel<int>>();
    std::vector<int> order;
    std::vector<weft::fiber<void>> fs;
    for (int i = 0; i < 4; ++i)
      fs.push_back(weft::spawn([&order, &c = *ch, i] {
        try {
          c.recv();
        } catch (const weft::error&) {
          order.push_back(i);
          throw;
        }
      }));
    weft::this_fiber::yield();
    ch.reset();
    for (auto& f : fs) expect_destroyed(f, "weft::channel::recv");
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  });
}

// Field case generator_early_break: main breaks out of a range-for over a channel a
// producer fiber feeds, and returns; the producer is still parked in send().
TEST_P(Destroyed, GeneratorEarlyBreakRunReturnsAndTheProducerIsReported) {
  hang_guard guard;
  std::vector<std::string> reported;
  auto previous = weft::set_unhandled_exception_handler(
      [&](weft::fiber_id, std::string_view name, std::exception_ptr e) {
        reported.push_back(std::string(name) + ": " + weft::describe_exception(e));
      });
  const int rc = run([&] {
    weft::channel<int> ch;
    park_signal parked_in_send_3;
    weft::spawn_options producer_options = placed();
    producer_options.name = "producer";
    auto producer = weft::spawn(std::move(producer_options), [&] {
      for (int i = 0;; ++i) {
        if (i == 3) parked_in_send_3.announce();
        ch.send(i);
      }
    });
    for (int& v : ch) {
      if (v == 2) break;
    }
    // On another scheduler the producer may not have reached send(3) yet; the case
    // is the producer parked there when the channel goes.
    parked_in_send_3.wait();
    return 0;
  });
  weft::set_unhandled_exception_handler(previous);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(reported,
            (std::vector<std::string>{"producer: weft::channel::send: destroyed while this fiber waited on it"}));
}

TEST_P(Destroyed, SelectWaitingOnTheChannelThrows) {
  hang_guard guard;
  run([&] {
    auto a = std::make_unique<weft::channel<int>>();
    weft::channel<int> b;
    park_signal parked;
    auto waiter = spawn([&, raw = a.get()] {
      parked.announce();
      weft::select(weft::on_recv(*raw), weft::on_recv(b));
    });
    parked.wait();
    a.reset();
    expect_destroyed(waiter, "weft::select");
    EXPECT_TRUE(b.try_send(1) == weft::channel_status::full);  // the select left b's queue too
  });
}

// A select already won by another channel still has a waiter in the destroyed
// one, and re-locks it to withdraw: the destructor must wait for that.
TEST_P(Destroyed, SelectWonElsewhereCompletesNormally) {
  hang_guard guard;
  run([&] {
    auto a = std::make_unique<weft::channel<int>>();
    weft::channel<int> b;
    int got = 0;
    park_signal parked;
    auto waiter = spawn([&, raw = a.get()] {
      parked.announce();
      return weft::select(weft::on_recv(*raw), weft::on_recv(b, [&](std::optional<int> v) { got = *v; }));
    });
    parked.wait();
    ASSERT_EQ(b.try_send(7), weft::channel_status::ok);  // the select has won, not run yet
    a.reset();
    EXPECT_EQ(waiter.join(), 1u);
    EXPECT_EQ(got, 7);
  });
}

// A waiter whose park already ended (cancelled, queued to run) but is still in the
// queue re-locks the primitive when it runs: the destructor must wait for it.
TEST(DestroyedOneScheduler, WaiterCancelledJustBeforeTheDestructionStillFinds) {
  hang_guard guard;
  run_checked([] {
    auto ch = std::make_unique<weft::channel<int>>();
    auto waiter = weft::spawn([raw = ch.get()] { raw->recv(); });
    weft::this_fiber::yield();
    waiter.cancel();  // its park ends now; it runs later
    ch.reset();
    // The cancellation ended the wait first, so that is what it reports
    // (AWaiterCancelledFirstReportsTheCancellation, below).
    EXPECT_THROW(waiter.join(), weft::cancelled_error);
  });
}

// Destroyed right after serving a waiter that will still lock it: the waker
// completed the operation, and then the primitive went, before the waiter ran.
// The destructor must wait for it (these read freed memory before; ASan saw it).
TEST_P(Destroyed, RightAfterServingASelectThatWillRelockIt) {
  hang_guard guard;
  run([&] {
    auto a = std::make_unique<weft::channel<int>>();
    weft::channel<int> b;
    int got = 0;
    park_signal parked;
    auto waiter = spawn([&, raw = a.get()] {
      parked.announce();
      return weft::select(weft::on_recv(*raw, [&](std::optional<int> v) { got = *v; }), weft::on_recv(b));
    });
    parked.wait();
    ASSERT_EQ(a->try_send(5), weft::channel_status::ok);  // hands 5 to the select
    a.reset();
    EXPECT_EQ(waiter.join(), 0u);
    EXPECT_EQ(got, 5);
  });
}

TEST(DestroyedOneScheduler, RightAfterServingAWaiterWhoseParkHadEnded) {
  hang_guard guard;
  run_checked([] {
    // Cancelled (its park ends), then served by a put and a shutdown, then gone.
    for (int how = 0; how < 2; ++how) {
      auto q = std::make_unique<weft::queue<int>>();
      auto waiter = weft::spawn([raw = q.get()] { return raw->get(); });
      weft::this_fiber::yield();
      waiter.cancel();
      if (how == 0)
        q->put(9);
      else
        q->shutdown();
      q.reset();
      if (how == 0)
        EXPECT_EQ(waiter.join(), 9);  // served in the instant it was cancelled: it has the item
      else
        EXPECT_THROW(waiter.join(), weft::queue_shut_down_error);
    }
    auto e = std::make_unique<weft::event>();
    auto waiter = weft::spawn([raw = e.get()] { return raw->wait_for(1h); });
    weft::this_fiber::yield();
    waiter.cancel();
    e->set();
    e.reset();
    EXPECT_TRUE(waiter.join());  // set in the same instant as the cancellation: served
  });
}

TEST_P(Destroyed, EventSemaphoreMutexBarrierWaitGroup) {
  destroy_under_one_waiter(std::make_unique<weft::event>(), [](auto& e) { e.wait(); }, "weft::event::wait");
  destroy_under_one_waiter(std::make_unique<weft::semaphore>(0), [](auto& s) { s.acquire(); },
                           "weft::semaphore::acquire");
  destroy_under_one_waiter(std::make_unique<weft::bounded_semaphore>(0), [](auto& s) { s.acquire_for(1h); },
                           "weft::semaphore::acquire_for");
  destroy_under_one_waiter(std::make_unique<weft::barrier>(2), [](auto& b) { b.arrive_and_wait(); },
                           "weft::barrier::arrive_and_wait");
  auto wg = std::make_unique<weft::wait_group>();
  wg->add(1);
  destroy_under_one_waiter(std::move(wg), [](auto& w) { w.wait(); }, "weft::wait_group::wait");
  hang_guard guard;
  run([&] {
    auto m = std::make_unique<weft::mutex>();
    m->lock();  // main holds it while the waiter queues
    park_signal parked;
    auto waiter = spawn([&parked, raw = m.get()] {
      parked.announce();
      raw->lock();
    });
    parked.wait();
    m.reset();
    expect_destroyed(waiter, "weft::mutex::lock");
  });
}

TEST_P(Destroyed, ConditionVariableWaiterGetsItsMutexBack) {
  hang_guard guard;
  run([&] {
    weft::mutex m;
    auto cv = std::make_unique<weft::condition_variable>();
    bool held_when_thrown = false;
    park_signal parked;
    auto waiter = spawn([&, raw = cv.get()] {
      std::unique_lock lk(m);
      try {
        parked.announce();
        raw->wait(lk);
      } catch (const weft::error&) {
        held_when_thrown = lk.owns_lock() && !m.try_lock();
        throw;
      }
    });
    parked.wait();
    cv.reset();
    expect_destroyed(waiter, "weft::condition_variable::wait");
    EXPECT_TRUE(held_when_thrown);
    EXPECT_TRUE(m.try_lock());  // released by the unique_lock on the way out
    m.unlock();
  });
}

// A once_flag has waiters only while its function runs, so the runner outlives the
// destruction here: the flag is destroyed and a new one built in its place (a
// transparent replacement), which the runner then finishes.
TEST_P(Destroyed, OnceFlagWaiter) {
  hang_guard guard;
  run([&] {
    alignas(weft::once_flag) unsigned char storage[sizeof(weft::once_flag)];
    auto* flag = ::new (storage) weft::once_flag;
    weft::event release_runner;
    park_signal runner_parked, waiter_parked;
    auto runner = spawn([&] {
      runner_parked.announce();
      weft::call_once(*flag, [&] { release_runner.wait(); });
    });
    runner_parked.wait();
    auto waiter = spawn([&] {
      waiter_parked.announce();
      weft::call_once(*flag, [] {});
    });
    waiter_parked.wait();
    flag->~once_flag();
    expect_destroyed(waiter, "weft::call_once");
    flag = ::new (storage) weft::once_flag;
    release_runner.set();
    runner.join();
    flag->~once_flag();
  });
}

// A waiter on another scheduler thread: the destructor must not return before that
// thread's fiber has woken and left the primitive alone.
TEST(DestroyedAcrossThreads, WaiterOnAnotherThread) {
  hang_guard guard;
  for (int round = 0; round < 20; ++round) {
    auto ev = std::make_unique<weft::event>();
    std::atomic<bool> parked{false};
    std::optional<weft::scheduler_handle> other_sched;  // keeps run() from seeing a deadlock
    std::string what;
    std::thread other([&, raw = ev.get()] {
      weft::run([&] {
        other_sched = weft::this_scheduler();
        // Runs only once main has parked in wait (a new fiber waits for its spawner to block).
        weft::spawn([&] { parked = true; }).detach();
        try {
          raw->wait();
        } catch (const weft::error& e) {
          what = e.what();
        }
      });
    });
    while (!parked) std::this_thread::yield();
    if (round % 2 == 0) {
      ev.reset();  // from a plain thread
    } else {
      weft::run([&] { ev.reset(); });  // from a fiber of this thread's scheduler
    }
    other_sched.reset();
    other.join();
    EXPECT_EQ(what, "weft::event::wait: destroyed while this fiber waited on it");
  }
}

// The waker on another thread: a plain thread sets an event (a remote unlock of
// its lock), and the fiber it woke, on the event's home scheduler, destroys the
// event at once. The remote's unlock must be its last touch of the object (until
// 2026-12-06 it cleared two flags one after the other, and home could enter and
// free the memory between them: TSan and ASan see the late store).
TEST(DestroyedAcrossThreads, RightAfterAPlainThreadsWakeUp) {
  hang_guard guard;
  run_checked([] {
    for (int round = 0; round < 500; ++round) {
      auto* ev = new weft::event;
      (void)ev->is_set();  // binds the lock to this scheduler: the thread is remote
      std::thread setter([ev] { ev->set(); });
      ev->wait();
      delete ev;
      setter.join();
    }
  });
}

// A waiter whose cancellation ended its wait before the primitive was destroyed
// reports the cancellation, not the destruction: fibers cancelled as a runtime
// shuts down (or a deadlock is declared), whose primitives go as their owners
// unwind, end cancelled; they used to end with destroyed_while_waiting, which
// counts as a failure (reported as never retrieved, or by a task group).
namespace {

// sleeping: thread `tid` of this process is asleep in the kernel (state S), which a
// plain thread that entered a channel or queue call and nothing else only is once it
// waits there.
bool sleeping(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto end_of_name = line.rfind(')');
  return end_of_name != std::string::npos && line.compare(end_of_name + 2, 1, "S") == 0;
}

}  // namespace

// A plain thread (not a fiber) waiting in a channel's or a queue's call with a
// deadline is told the primitive went while "this thread", not "this fiber", waited.
TEST(DestroyedAcrossThreads, APlainThreadWaiterIsToldItWasAThread) {
  hang_guard guard;
  auto ch = std::make_unique<weft::channel<int>>();
  auto q = std::make_unique<weft::queue<int>>();
  std::atomic<pid_t> channel_tid{0}, queue_tid{0};
  std::string channel_what, queue_what;
  // The threads hold raw pointers: the unique_ptrs themselves are reset here.
  std::thread in_channel([&, raw = ch.get()] {
    channel_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    try {
      (void)raw->recv_for(1h);
    } catch (const weft::error& e) {
      channel_what = e.what();
    }
  });
  std::thread in_queue([&, raw = q.get()] {
    queue_tid = static_cast<pid_t>(::syscall(SYS_gettid));
    try {
      (void)raw->get_for(1h);
    } catch (const weft::error& e) {
      queue_what = e.what();
    }
  });
  while (channel_tid == 0 || queue_tid == 0 || !sleeping(channel_tid) || !sleeping(queue_tid))
    std::this_thread::sleep_for(1ms);
  ch.reset();
  q.reset();
  in_channel.join();
  in_queue.join();
  EXPECT_EQ(channel_what, "weft::channel::recv_for: destroyed while this thread waited on it");
  EXPECT_EQ(queue_what, "weft::queue::get_for: destroyed while this thread waited on it");
}

TEST(DestroyedOneScheduler, AWaiterCancelledFirstReportsTheCancellation) {
  run_checked([] {
    auto ch = std::make_unique<weft::channel<int>>();
    auto ev = std::make_unique<weft::event>();
    auto receiver = weft::spawn([&] { (void)ch->recv(); });
    auto waiter = weft::spawn([&] { ev->wait(); });
    weft::this_fiber::sleep_for(1ms);  // both wait
    receiver.cancel();
    waiter.cancel();
    ch.reset();  // before either has run since its cancellation
    ev.reset();
    EXPECT_THROW(receiver.join(), weft::cancelled_error);
    EXPECT_THROW(waiter.join(), weft::cancelled_error);
  });
}
