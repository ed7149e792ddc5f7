#include <weft/runtime/background_runtime.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include <weft/runtime/detail/remote_inbox.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/detail/scheduler_group.hpp>
#include <weft/runtime/error.hpp>
#include <weft/sync/event.hpp>

namespace weft {

struct background_runtime::state {
  std::thread thread;
  event stop_requested;          // set by stop(); the runtime's main waits on it
  runtime_handle handle;         // written before the constructor returns
  // Every scheduler's inbox, to refuse posts the moment stop() begins.
  std::vector<std::shared_ptr<detail::remote_inbox>> inboxes;
  std::uint64_t first = 0;       // scheduler 0's incarnation: tells this runtime's fibers
  std::exception_ptr ended_by;   // what ended run() if not stop()
  std::mutex stopping;           // held by the stop() that joins; a racing one waits
  std::atomic<bool> stopped{false};
  pid_t process = ::getpid();    // after fork(), the child's copy has no thread to join
};

namespace {

constexpr const char* stop_call = "weft::background_runtime::stop";

// The incarnation of scheduler 0 of the calling fiber's runtime; 0 outside a fiber.
std::uint64_t first_scheduler_here() noexcept {
  const detail::scheduler* s = detail::this_fiber_scheduler;
  if (s == nullptr) return 0;
  return s->group() != nullptr ? s->group()->at(0).incarnation() : s->incarnation();
}

}  // namespace

background_runtime::background_runtime(const run_options& options) : state_(std::make_unique<state>()) {
  state* s = state_.get();
  std::promise<void> started;
  std::future<void> ready = started.get_future();
  s->thread = std::thread([s, options, started = std::move(started)]() mutable {
    bool running = false;
    try {
      weft::run(options, [&] {
        s->handle = this_runtime();
        s->first = first_scheduler_here();
        const detail::scheduler& here = *detail::this_fiber_scheduler;
        if (here.group() != nullptr) {
          s->inboxes = here.group()->inboxes();
        } else {
          s->inboxes.push_back(here.inbox());
        }
        running = true;
        started.set_value();
        s->stop_requested.wait();
      });
    } catch (...) {
      if (running) {
        s->ended_by = std::current_exception();
      } else {
        started.set_exception(std::current_exception());
      }
    }
  });
  try {
    ready.get();
  } catch (...) {
    s->thread.join();
    throw;
  }
}

background_runtime::~background_runtime() {
  if (::getpid() != state_->process) {
    // A forked child's copy: the runtime's threads stayed in the parent, and its
    // parts (the thread object, the inboxes and primitives its fibers wait on) are
    // copies of state those threads may have held locked at the fork. Touching
    // them could wait for ever (a child's exit() runs this for a static runtime);
    // they are left as they are.
    static_cast<void>(state_.release());
    return;
  }
  if (!stopped() && first_scheduler_here() == state_->first) {
    // Its memory is about to go while its own thread still runs it: no way on.
    std::fputs("weft::background_runtime: destroyed by a fiber of the runtime it owns, which cannot "
               "wait for itself to end (std::exit() called in one of its fibers destroys a static "
               "runtime there); destroy it from a thread of your own\n", stderr);
    std::abort();
  }
  try {
    stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "weft::background_runtime: %s\n", e.what());
  }
}

const runtime_handle& background_runtime::handle() const noexcept { return state_->handle; }

bool background_runtime::stopped() const noexcept { return state_->stopped.load(std::memory_order_acquire); }

void background_runtime::stop() {
  state& s = *state_;
  if (stopped()) return;
  if (::getpid() != s.process) {  // a forked child's copy: nothing to stop here (see the destructor)
    s.stopped.store(true, std::memory_order_release);
    return;
  }
  if (first_scheduler_here() == s.first)
    throw error(errc::would_deadlock, stop_call,
                "called from a fiber of the runtime it stops, which would wait for itself; return from "
                "the fiber and stop the runtime from a thread of your own");
  std::lock_guard lock(s.stopping);
  if (stopped()) return;  // another stop() did it while this one waited
  // Refused from here on, not queued: posts that keep coming from other threads
  // would otherwise run ahead of the runtime's main, which ends it (breaker's
  // finding: stop() never returned under a flood of posts). Those accepted before
  // still run, as under run().
  for (const auto& inbox : s.inboxes) inbox->refuse_posts();
  s.stop_requested.set();
  s.thread.join();
  s.stopped.store(true, std::memory_order_release);
  if (s.ended_by) std::rethrow_exception(std::exchange(s.ended_by, nullptr));
}

}  // namespace weft
