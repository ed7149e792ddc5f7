// blocking_pool.hpp: the process's bounded pool of threads for blocking calls
// (weft::to_thread, net::resolve), asyncio's default executor.
//
// Jobs run in the order they were submitted. While fewer threads than the limit
// exist and none is idle, a submit starts one; at the limit, jobs wait in the
// queue (saturation queues work, it never starts threads without bound). A thread
// idle for `idle_exit` leaves, so a quiet process keeps no helper threads. Threads
// start with every signal blocked, so a signal meant for the program (a
// signal_set's SIGTERM) is never delivered to one of them. Any thread may submit.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

namespace weft::detail {

inline constexpr std::chrono::seconds blocking_pool_idle_exit{10};

// submit_blocking queues `job` to run on a pool thread. The job must not throw (a
// throwing job terminates the process, as a throwing std::thread does).
// Throws std::system_error if no thread exists and none can be started.
void submit_blocking(std::function<void()> job);

// on_blocking_pool: the calling thread is one of the pool's (a to_thread function
// runs there), for error messages.
bool on_blocking_pool() noexcept;

// The pool's thread limit; set_blocking_pool_limit throws weft::error
// (errc::invalid_argument) for 0. Lowering it lets the extra threads finish their
// job and leave.
void set_blocking_pool_limit(std::size_t threads);
std::size_t blocking_pool_limit() noexcept;

// How many threads the pool has now (started, not yet left); for tests and stats.
std::size_t blocking_pool_threads() noexcept;

// How many of them wait for a job while none is queued: they run no code of the
// program and can wake no fiber, so the deadlock watch does not wait for them
// (scheduler.cpp, "idle and deadlock"). A job completed before it reads this has
// delivered its result (woken its fiber) already.
std::size_t blocking_pool_idle_threads() noexcept;

}  // namespace weft::detail
