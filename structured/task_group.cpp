#include <weft/structured/task_group.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <utility>

#include <weft/runtime/detail/scheduler_group.hpp>
#include <weft/runtime/error.hpp>
#include <weft/runtime/placement.hpp>
#include <weft/runtime/scope.hpp>
#include <weft/runtime/unhandled_exception.hpp>

namespace weft {
namespace {

bool is_cancellation(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const cancelled_error&) {
    return true;
  } catch (...) {
    return false;
  }
}

void report(std::exception_ptr e) noexcept {
  detail::fiber_record* self = detail::scheduler::current() ? detail::scheduler::current()->running() : nullptr;
  detail::report_unhandled(self ? self->id_ : 0, self ? std::string_view(self->name_) : "task_group", e);
}

}  // namespace

void detail::report_unless_cancellation(std::exception_ptr e) noexcept {
  if (e && !is_cancellation(e)) report(std::move(e));
}

exception_group::exception_group(std::vector<std::exception_ptr> errors) : errors_(std::move(errors)) {
  what_ = "weft::exception_group: " + std::to_string(errors_.size()) + " failures; first: " +
          (errors_.empty() ? std::string("none") : describe_exception(errors_.front()));
}

task_group::task_group() : sched_(&detail::scheduler::require_fiber("weft::task_group")) {}

task_group::task_group(detail::group_call call)
    : sched_(&detail::scheduler::require_fiber(call.name)), join_call_(call.name) {
  // Growing both lists one child at a time cost gather two allocations per child.
  children_.reserve(call.children);
  free_slots_.reserve(call.children);
}

void task_group::check_thread(const char* call) const {
  if (detail::this_thread_scheduler != sched_)
    throw error(errc::invalid_argument, call,
                "called on another thread than the group's scheduler (a task group belongs to the "
                "scheduler of the fiber that made it; cancel the fiber in join() from elsewhere)");
}

void task_group::check_spawn_here(const placement& on) const {
  constexpr const char* call = "weft::task_group::spawn";
  check_thread(call);
  if (on.is_caller()) return;
  detail::scheduler_group* group = sched_->group();
  if (on.is_any() ? group == nullptr : &detail::scheduler_for(*sched_, on) == sched_) return;
  throw error(errc::invalid_argument, call,
              "spawn_options::on is " + on.describe() +
                  ", but a task group's children run on its own scheduler (" + std::to_string(sched_->index()) +
                  "); spawn a fiber there that opens a group of its own, or gather fibers spawned with .on");
}

task_group::~task_group() {
  if (running_ > 0 || waiter_saw_destroyed_ != nullptr) {
    // Waiting for the children parks a fiber of the group's scheduler; from
    // another thread (or outside a fiber) that would switch another thread's stacks.
    if (detail::this_fiber_scheduler != sched_) [[unlikely]] {
      std::fprintf(stderr,
                   "weft::task_group destroyed %s while %zu of its children still run%s; destroy it in a "
                   "fiber of the scheduler that made it (join() first, or move the group's use there)\n",
                   detail::this_thread_scheduler == nullptr ? "on a thread that is not a scheduler"
                   : detail::this_thread_scheduler == sched_ ? "outside a fiber"
                                                             : "on another scheduler's thread",
                   running_, waiter_saw_destroyed_ != nullptr ? " and a fiber joins it" : "");
      std::terminate();
    }
    if (running_ > 0 && is_child(sched_->running())) [[unlikely]] {
      // It would wait for its own end: report it instead of hanging for good (as
      // fiber::join refuses a fiber's wait for itself).
      std::fprintf(stderr,
                   "weft::task_group destroyed by one of its own children (fiber %llu), which would wait "
                   "for itself; destroy a group in the fiber that made it\n",
                   static_cast<unsigned long long>(sched_->running()->id_));
      std::terminate();
    }
    release_joiner();
    if (running_ > 0) {
      cancel_children();
      wait_all_after_interrupt();
    }
  }
  report_unreported();
}

bool task_group::is_child(const detail::fiber_record* f) const noexcept {
  for (const fiber<void>& child : children_)
    if (child.joinable() && child.id() == f->id_) return true;
  return false;
}

void task_group::release_joiner() noexcept {
  if (waiter_saw_destroyed_ == nullptr) return;
  *std::exchange(waiter_saw_destroyed_, nullptr) = true;
  if (waiter_) detail::scheduler::wake(std::exchange(waiter_, {}), detail::wake_reason::notified);
}

std::size_t task_group::claim_slot() {
  if (!free_slots_.empty()) {
    const std::size_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  children_.emplace_back();
  return children_.size() - 1;
}

void task_group::child_failed(std::exception_ptr e) noexcept {
  if (is_cancellation(e)) return;  // cancelled, by us or anyone: not a failure
  const detail::fiber_record* child = detail::scheduler::current()->running();
  failures_.push_back(std::move(e));
  failed_by_.emplace_back(child->id_, child->name_);
  cancel_children();  // the first failure of the round cancels the rest; later ones find it done
}

void task_group::child_finished(std::size_t slot) noexcept {
  // Our own handle: detached, so the record goes when this fiber ends. The fiber
  // never throws (failures were taken above), so nothing is reported twice.
  children_[slot].detach();
  free_slots_.push_back(slot);
  if (--running_ == 0 && waiter_) detail::scheduler::wake(std::exchange(waiter_, {}), detail::wake_reason::notified);
}

void task_group::cancel() {
  check_thread("weft::task_group::cancel");
  cancel_children();
}

void task_group::cancel_children() noexcept {
  if (std::exchange(cancelled_, true)) return;  // each child is cancelled once
  for (fiber<void>& child : children_)
    if (child.joinable()) child.cancel();
}

task_group::wait_end task_group::wait_all(bool cancellable) noexcept {
  while (running_ > 0) {
    const detail::park_token token = sched_->prepare_park(join_call_);
    bool destroyed = false;
    waiter_ = token;
    waiter_saw_destroyed_ = &destroyed;
    const detail::wake_reason why = sched_->park(token, no_deadline);
    if (destroyed) return wait_end::group_destroyed;  // `this` is gone
    waiter_saw_destroyed_ = nullptr;
    if (waiter_.fiber == token.fiber && waiter_.generation == token.generation) waiter_ = {};
    if (why == detail::wake_reason::cancelled && cancellable) return wait_end::interrupted;
  }
  return wait_end::all_done;
}

bool task_group::wait_all_after_interrupt() noexcept {
  // Shielded: a cancellation (or an expired scope) must not cut this wait short,
  // or children would outlive the group.
  detail::shield_guard shield(sched_->running());
  return wait_all(false) != wait_end::group_destroyed;
}

void task_group::report_unreported() noexcept {
  for (; reported_ < failures_.size(); ++reported_)
    detail::report_unhandled(failed_by_[reported_].first, failed_by_[reported_].second, failures_[reported_]);
}

void task_group::wait_or_unwind() {
  detail::scheduler::require_fiber(join_call_);
  if (waiter_) throw error(errc::already_waited, join_call_, "another fiber already joins this task group");
  const char* call = join_call_;  // (a static string: still there if the group is not)
  switch (wait_all(true)) {
    case wait_end::all_done: end_round(); return;
    case wait_end::group_destroyed: throw error(errc::destroyed_while_waiting, call);
    case wait_end::interrupted: break;
  }
  // The waiting fiber was cancelled (or its deadline scope expired): so is the group.
  cancel_children();
  if (wait_all_after_interrupt()) {
    end_round();
    report_unreported();
  }
  detail::throw_cancelled(call);
}

void task_group::join() {
  check_thread(join_call_);
  wait_or_unwind();
  if (reported_ == failures_.size()) return;
  std::vector<std::exception_ptr> fresh(failures_.begin() + static_cast<std::ptrdiff_t>(reported_), failures_.end());
  reported_ = failures_.size();
  if (fresh.size() == 1) std::rethrow_exception(fresh.front());
  throw exception_group(std::move(fresh));
}

void task_group::join_first() {
  check_thread(join_call_);
  wait_or_unwind();
  if (reported_ == failures_.size()) return;
  const std::exception_ptr first = failures_[reported_++];
  report_unreported();
  std::rethrow_exception(first);
}

void task_group::fail_with(std::exception_ptr e) {
  cancel_children();
  if (!wait_all_after_interrupt()) std::rethrow_exception(e);  // destroyed meanwhile: the body's error alone
  if (is_cancellation(e)) {  // the body was cancelled: that is what goes up
    report_unreported();
    std::rethrow_exception(e);
  }
  std::vector<std::exception_ptr> all{e};
  all.insert(all.end(), failures_.begin() + static_cast<std::ptrdiff_t>(reported_), failures_.end());
  reported_ = failures_.size();
  if (all.size() == 1) std::rethrow_exception(e);
  throw exception_group(std::move(all));
}

}  // namespace weft
