#include <weft/runtime/detail/scheduler_group.hpp>

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <weft/runtime/detail/quiet_thread.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/placement.hpp>
#include <weft/runtime/unhandled_exception.hpp>

namespace weft::detail {
namespace {

// One worker thread: its scheduler lives on this thread's stack for as long as it
// serves, and is destroyed here, on its own thread.
// Its census (what it held when destroyed) goes to `census` for run()'s own.
// It serves only once the group is whole: stealing and sending read the members.
void worker_main(scheduler_group* group, std::size_t index, scheduler_options options,
                 std::promise<scheduler*>* ready, std::shared_future<void> assembled,
                 scheduler::teardown_census* census) {
  std::optional<scheduler> sched;
  try {
    sched.emplace(options);
  } catch (...) {
    ready->set_exception(std::current_exception());
    return;
  }
  sched->join_group(group, index);
  ready->set_value(&*sched);  // `ready` belongs to the constructor: not touched again
  assembled.wait();
  sched->serve();
  sched.reset();
  *census = scheduler::last_teardown_census();
}

}  // namespace

scheduler_group::scheduler_group(scheduler& first, std::size_t threads, const scheduler_options& options) {
  members_.reserve(threads);
  workers_.reserve(threads - 1);
  censuses_.resize(threads);
  inboxes_.reserve(threads);
  members_.push_back(&first);
  inboxes_.push_back(first.inbox());
  first.join_group(this, 0);
  const std::shared_future<void> assembled = assembled_.get_future().share();
  try {
    for (std::size_t i = 1; i < threads; ++i) {
      std::promise<scheduler*> ready;
      auto started = ready.get_future();
      workers_.push_back(thread_with_signals_blocked([this, i, options, &ready, assembled] {
        worker_main(this, i, options, &ready, assembled, &censuses_[i]);
      }));
      members_.push_back(started.get());
      inboxes_.push_back(members_.back()->inbox());
    }
    assembled_.set_value();
  } catch (...) {
    assembled_.set_value();  // the workers made so far serve, to be stopped at once
    // Only the members made so far take part in the shutdown.
    if (workers_.size() > members_.size() - 1) {
      workers_.back().join();  // the one that failed has returned
      workers_.pop_back();
    }
    stop_and_join();
    first.join_group(nullptr, 0);
    throw;
  }
}

scheduler_group::~scheduler_group() { stop_and_join(); }

void scheduler_group::stop_and_join() noexcept {
  request_stop();
  // run() drains member 0 through its shut_down; if it never ran (a failure before
  // it), the workers must not wait for it.
  if (!first_drained_) member_drained();
  for (auto& t : workers_)
    if (t.joinable()) t.join();
  workers_.clear();
  for (const auto& c : censuses_) scheduler::carry_into_census(c);
  censuses_.clear();
}

void scheduler_group::request_stop() noexcept {
  if (std::exchange(stop_requested_, true)) return;
  for (std::size_t i = 1; i < inboxes_.size(); ++i) inboxes_[i]->request_stop();
}

void scheduler_group::declare_deadlock() noexcept {
  deadlock_.store(true, std::memory_order_release);
  for (auto& inbox : inboxes_) inbox->poke();
}

void scheduler_group::await_others_acting_on_deadlock() const noexcept {
  // They were all asleep and quiet, and the poke wakes them: each acts at once. The
  // bound is a hang guard only (a member stopped in a debugger, say).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (deadlock_acted_.load(std::memory_order_acquire) + 1 < members_.size() &&
         std::chrono::steady_clock::now() < give_up)
    std::this_thread::yield();
}

bool scheduler_group::at_last_drain(std::function<void()> fn) {
  std::lock_guard lock(last_drain_mutex_);
  if (last_drain_done_) return false;
  last_drain_work_.push_back(std::move(fn));
  return true;
}

void scheduler_group::run_last_drain_work() noexcept {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(last_drain_mutex_);
    last_drain_done_ = true;
    work.swap(last_drain_work_);
  }
  for (auto& fn : work) {
    try {
      fn();
    } catch (...) {
      std::fprintf(stderr, "weft: work left for the end of the runtime's shutdown threw: %s\n",
                   describe_exception(std::current_exception()).c_str());
    }
  }
}

void scheduler_group::member_drained() noexcept {
  if (scheduler::current() == members_[0]) first_drained_ = true;
  if (drained_.fetch_add(1, std::memory_order_acq_rel) + 1 == members_.size())
    for (auto& inbox : inboxes_) inbox->poke();  // those asleep in shut_down
}

void scheduler_group::wake_a_sleeper(scheduler& from) noexcept {
  if (sleepers_.load(std::memory_order_seq_cst) == 0) return;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    remote_inbox& inbox = *inboxes_[i];
    if (members_[i] == &from || !inbox.sleeping()) continue;
    if (!inbox.has_items()) inbox.poke();  // already poked: it is on its way
    return;
  }
}

bool scheduler_group::before_sleep() noexcept {
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  if (queued_.load(std::memory_order_seq_cst) == 0) return false;
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

scheduler& scheduler_for(scheduler& here, const weft::placement& on) {
  if (on.is_caller() || on.is_any()) return here;  // on_any: queued here to be stolen (start_anywhere)
  scheduler_group* group = here.group();
  const std::size_t size = group ? group->size() : 1;
  const std::optional<std::uintmax_t> index = on.index();
  if (!index || *index >= size)
    throw error(errc::invalid_argument, "weft::spawn",
                "spawn_options::on is " + on.describe() + ", and the runtime has " + std::to_string(size) +
                    (size == 1 ? " scheduler (weft::run_options::threads)" : " schedulers (0 to " +
                                                                                 std::to_string(size - 1) + ")"));
  return group ? group->at(static_cast<std::size_t>(*index)) : here;
}

}  // namespace weft::detail

namespace weft::detail {

std::size_t scheduler_threads(std::size_t requested) {
  constexpr std::size_t most = 1024;
  if (requested > most)
    throw error(errc::invalid_argument, "weft::run",
                "run_options::threads is " + std::to_string(requested) + ", above " + std::to_string(most));
  if (requested != 0) return requested;
  cpu_set_t cpus;
  if (::sched_getaffinity(0, sizeof cpus, &cpus) == 0) return std::max(1, CPU_COUNT(&cpus));
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace weft::detail
