// thread_parker.hpp: how a plain thread (one that is not running a scheduler)
// waits in a sync/ primitive's wait queue, blocking only itself.
//
// A wait queue holds park tokens, each naming a fiber record and one park of it,
// and a waker ends the park with scheduler::wake(). A plain thread gets a record of
// its own for that, a thread_parker: its owner_ is a marker that is no scheduler
// (so it never equals the waker's, null on a plain thread included), which sends
// every wake to scheduler::wake_remote, and wake_remote hands it to unpark() here
// instead of a scheduler's inbox. The fiber path does not change: one compare it
// makes anyway.
//
// prepare_park and park mirror the scheduler's, so the wait queue code
// (wait_queue.hpp: block_on, await_served) serves both. A park ends when woken or
// when the deadline passes; a plain thread cannot be cancelled.
//
// Lifetime: one parker per thread (thread_local), made on the thread's first
// blocking call. A waker holds the primitive's lock while it wakes, and unpark()
// does all it does under the parker's mutex; the waiting thread returns from park()
// only after taking that mutex, so the parker outlives every wake-up that reaches it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

#include <weft/runtime/clock.hpp>
#include <weft/runtime/detail/fiber_record.hpp>

namespace weft::detail {

class thread_parker final : public fiber_record {
 public:
  thread_parker() noexcept;
  // Not from the record cache: a parker lives as long as its thread, and the
  // fixture's count of live records is about fibers.
  static void* operator new(std::size_t size) { return ::operator new(size); }
  static void operator delete(void* block) noexcept { ::operator delete(block); }

  // for_this_thread is the calling thread's parker. On a scheduler's thread outside
  // a fiber (the scheduler's own context: a destructor run by the loop) nothing may
  // block, and it throws weft::error(errc::not_in_fiber) naming `call`.
  static thread_parker& for_this_thread(const char* call);
  // is_parker: `f` is some thread's parker, not a fiber.
  static bool is_parker(const fiber_record* f) noexcept {
    return f->owner_.load(std::memory_order_relaxed) == marker();
  }
  // The owner_ of every parker: an address that is no scheduler, never dereferenced.
  static scheduler* marker() noexcept;

  park_token prepare_park(const char* waits_on = nullptr) noexcept;
  // park blocks the thread until unpark(token's generation) or the deadline
  // (no_deadline: no limit): notified or timed_out.
  wake_reason park(park_token token, time_point deadline) noexcept;
  // unpark ends the park `generation` names with `why`, if it is still the current
  // one; any thread.
  void unpark(std::uint64_t generation, wake_reason why) noexcept;

 private:
  void run_body() override {}

  std::mutex mutex_;  // guards parked_in_, park_generation_ and wake_reason_ here
  std::condition_variable woken_;
};

}  // namespace weft::detail
