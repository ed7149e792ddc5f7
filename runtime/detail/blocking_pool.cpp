#include <weft/runtime/detail/blocking_pool.hpp>

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <new>
#include <thread>
#include <utility>

#include <weft/runtime/detail/quiet_thread.hpp>
#include <weft/runtime/error.hpp>

namespace weft::detail {
namespace {

std::size_t default_limit() {
  // asyncio's default executor: min(32, cores + 4).
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::min<std::size_t>(32, cores + 4);
}

struct pool {
  std::mutex mutex;
  std::condition_variable work;  // a job was queued, or the limit went down
  std::deque<std::function<void()>> queue;
  std::size_t limit = default_limit();
  std::size_t threads = 0;  // started and not yet left
  std::size_t idle = 0;     // of those, waiting for a job
};

void prepare_fork() noexcept;
void after_fork_in_parent() noexcept;
void after_fork_in_child() noexcept;

// Never destroyed: detached pool threads may still run while static destructors do.
pool& the_pool() {
  static pool* instance = [] {
    pool* p = new pool;
    pthread_atfork(prepare_fork, after_fork_in_parent, after_fork_in_child);
    return p;
  }();
  return *instance;
}

constinit thread_local bool this_thread_is_pools = false;

void work_loop() {
  this_thread_is_pools = true;
  pool& p = the_pool();
  std::unique_lock lock(p.mutex);
  for (;;) {
    while (p.queue.empty() && p.threads <= p.limit) {
      ++p.idle;
      const bool woken = p.work.wait_for(lock, blocking_pool_idle_exit,
                                         [&] { return !p.queue.empty() || p.threads > p.limit; });
      --p.idle;
      if (!woken) break;  // idle too long: leave
    }
    if (p.queue.empty() || p.threads > p.limit) {
      --p.threads;
      // Leaving above the limit with work queued: the wake-up that brought this
      // thread here was meant for the job, so pass it on to a thread that stays.
      if (!p.queue.empty()) p.work.notify_one();
      return;
    }
    std::function<void()> job = std::move(p.queue.front());
    p.queue.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // destroyed before the lock is taken again
    lock.lock();
  }
}

// Starts a pool thread with every signal blocked (quiet_thread.hpp).
void start_thread() { thread_with_signals_blocked(work_loop).detach(); }

// fork(): the child has only the thread that forked, none of the pool's. The
// pool's lock is held across the fork, so the child's copy is in a known state;
// there the pool starts afresh: no threads (the next job starts one), a new lock
// and condition variable (the old one counts waiters the child does not have),
// and threads for the jobs that were queued and not yet taken. A job that was
// running at the fork ran in the parent only: its caller, if the child has it,
// waits for ever (README: fork).
void prepare_fork() noexcept { the_pool().mutex.lock(); }
void after_fork_in_parent() noexcept { the_pool().mutex.unlock(); }
void after_fork_in_child() noexcept {
  pool& p = the_pool();
  new (&p.mutex) std::mutex;  // the copy is locked (prepare_fork)
  new (&p.work) std::condition_variable;
  p.threads = 0;
  p.idle = 0;
  while (p.threads < p.limit && p.threads < p.queue.size()) {
    ++p.threads;
    try {
      start_thread();
    } catch (...) {
      --p.threads;  // the next submit tries again
      break;
    }
  }
}

}  // namespace

bool on_blocking_pool() noexcept { return this_thread_is_pools; }

void submit_blocking(std::function<void()> job) {
  pool& p = the_pool();
  std::unique_lock lock(p.mutex);
  p.queue.push_back(std::move(job));
  if (p.idle >= p.queue.size() || p.threads >= p.limit) {
    p.work.notify_one();
    return;
  }
  ++p.threads;
  try {
    start_thread();
  } catch (...) {
    --p.threads;
    if (p.threads > 0) return;  // the threads there are will take it
    p.queue.pop_back();
    throw;
  }
}

void set_blocking_pool_limit(std::size_t threads) {
  if (threads == 0) throw error(errc::invalid_argument, "weft::set_to_thread_limit", "a pool of 0 threads");
  pool& p = the_pool();
  std::lock_guard lock(p.mutex);
  p.limit = threads;
  p.work.notify_all();  // idle threads above the limit leave
  // Raised: queued jobs that waited for the limit get threads now, as a submit
  // would start them (a job may be waiting for another queued one to run).
  while (p.threads < p.limit && p.queue.size() > p.idle) {
    ++p.threads;
    try {
      start_thread();
    } catch (...) {
      --p.threads;  // the threads there are will take the jobs
      break;
    }
  }
}

std::size_t blocking_pool_limit() noexcept {
  pool& p = the_pool();
  std::lock_guard lock(p.mutex);
  return p.limit;
}

std::size_t blocking_pool_idle_threads() noexcept {
  pool& p = the_pool();
  std::lock_guard lock(p.mutex);
  return p.queue.empty() ? p.idle : 0;  // a queued job is about to wake one
}

std::size_t blocking_pool_threads() noexcept {
  pool& p = the_pool();
  std::lock_guard lock(p.mutex);
  return p.threads;
}

}  // namespace weft::detail
