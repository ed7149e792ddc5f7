#include <weft/runtime/detail/thread_parker.hpp>

#include <algorithm>
#include <chrono>
#include <memory>

#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>

namespace weft::detail {
namespace {
char parker_owner_marker;
}  // namespace

scheduler* thread_parker::marker() noexcept { return reinterpret_cast<scheduler*>(&parker_owner_marker); }

thread_parker::thread_parker() noexcept {
  owner_.store(marker(), std::memory_order_relaxed);
  name_ = "<plain thread>";
}

thread_parker& thread_parker::for_this_thread(const char* call) {
  if (scheduler::current() != nullptr) scheduler::throw_not_in_fiber(call);
  thread_local std::unique_ptr<thread_parker> parker;
  if (!parker) parker = std::make_unique<thread_parker>();
  return *parker;
}

park_token thread_parker::prepare_park(const char* waits_on) noexcept {
  std::lock_guard lock(mutex_);
  parked_in_ = ++park_generation_;
  waits_on_ = waits_on;
  return park_token{this, parked_in_};
}

wake_reason thread_parker::park(park_token token, time_point deadline) noexcept {
  std::unique_lock lock(mutex_);
  while (parked_in_ == token.generation) {
    if (deadline == no_deadline) {
      woken_.wait(lock);
      continue;
    }
    const time_point now = clock::now();
    if (now >= deadline) {
      parked_in_ = 0;
      wake_reason_ = wake_reason::timed_out;
      break;
    }
    // A far deadline (years away) is waited for a day at a time, so no conversion
    // to the C library's timespec can overflow.
    woken_.wait_until(lock, now + std::min<clock::duration>(deadline - now, std::chrono::hours(24)));
  }
  return wake_reason_;
}

void thread_parker::unpark(std::uint64_t generation, wake_reason why) noexcept {
  std::lock_guard lock(mutex_);
  if (parked_in_ != generation) return;
  parked_in_ = 0;
  wake_reason_ = why;
  woken_.notify_one();
}

}  // namespace weft::detail
