// background_runtime.hpp: a weft runtime on a thread of its own, for a program
// whose main loop is not weft's (a GUI or game loop, a legacy server, a test
// harness): its threads hand work to fibers and go on. asyncio's loop.run_forever
// on a thread with run_coroutine_threadsafe, or an io_context run by a thread in
// Boost.Asio, do the same.
//
//   weft::background_runtime rt;                    // or rt({.threads = 4})
//   std::future<std::string> page = rt.submit([] { return fetch(url); });
//   rt.post([] { serve(listener); });                // a fiber, detached
//   ...                                              // the program's own loop
//   std::string body = page.get();                   // blocks this thread only
//   rt.stop();                                       // or let the destructor do it
//
// Inside, it is weft::run(options, main) on a std::thread, with a main that waits
// until stop(): every fiber posted or submitted, and every fiber they spawn, runs
// as under run(), and stop() ends the runtime as run() does when main returns.
// Plain threads reach the fibers through submit()/post(), handle(), and the
// blocking calls of channels and queues (README: "Several cores", plain threads).
//
// A deadlock among its fibers is not reported while the thread that owns the
// background_runtime lives (it may still post); deadlines and cancellation work as
// everywhere else.
#pragma once

#include <future>
#include <memory>
#include <type_traits>
#include <utility>

#include <weft/runtime/run.hpp>
#include <weft/runtime/scheduler_handle.hpp>

namespace weft {

class background_runtime {
 public:
  // Starts the thread and returns once the runtime takes work. Throws what run()
  // throws at start (errc::invalid_argument for bad options, std::system_error if
  // the thread or a scheduler cannot be made).
  explicit background_runtime(const run_options& options = {});
  // stop(); an error it would throw is printed to stderr instead.
  ~background_runtime();
  background_runtime(const background_runtime&) = delete;
  background_runtime& operator=(const background_runtime&) = delete;

  // handle() reaches every scheduler of the runtime (runtime_handle: post, submit,
  // scheduler(i)), from any thread; copies stay safe after stop() (posts are then
  // refused).
  const runtime_handle& handle() const noexcept;

  // post(fn) runs fn in a new detached fiber, on the schedulers in turn; false
  // once stop() has begun (fn is not run). submit(fn) does the same and returns a
  // std::future for fn's result or exception (errc::scheduler_stopped once
  // stopped; cancelled_error if stop() cancels it). Thread-safe; fn may be
  // move-only. The future's get() blocks the whole calling thread: from a fiber,
  // use weft::spawn(...).join() instead.
  template <class F>
  bool post(F&& fn) const {
    return handle().post(std::forward<F>(fn));
  }
  template <class F>
  auto submit(F&& fn) const {
    return handle().submit(std::forward<F>(fn));
  }

  // stop() ends the runtime as run() ends when main returns: every fiber is
  // cancelled (its blocking call throws cancelled_error) and waited for, then the
  // thread is joined. Blocks the calling thread until then (from a fiber of
  // another runtime: that fiber's whole scheduler). Later calls, from any thread,
  // return at once (a call racing the first waits for it). Throws
  // errc::would_deadlock from a fiber of this runtime (it would wait for itself:
  // return from the fiber and stop from a thread of your own), and rethrows
  // what ended the runtime if not stop() (which only an error of weft's own can).
  void stop();
  // stopped() is true once stop() has returned.
  bool stopped() const noexcept;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace weft
