#include <weft/runtime/fd_wait.hpp>

#include <weft/runtime/detail/reactor.hpp>
#include <weft/runtime/detail/scheduler.hpp>
#include <weft/runtime/error.hpp>

namespace weft {

namespace {

void unref(detail::fd_state* st) noexcept {
  if (--st->refs == 0) delete st;
}

}  // namespace

namespace detail {

// unwatch: the end of a watch on its scheduler's thread: unregister, wake whoever
// waits (they see the fd gone), drop the watch's reference.
void unwatch(scheduler& owner, fd_state* st) noexcept {
  if (owner.io().holds(st)) {
    owner.io().remove(st);
    for (park_token* t : {&st->reader, &st->writer})
      if (*t) scheduler::wake(std::exchange(*t, {}), wake_reason::notified);
  }
  st->fd = -1;
  unref(st);
}

// forget_watch: a watch whose scheduler has ended: its epoll instance is closed,
// and every registration with it, and no fiber of it waits any more.
void forget_watch(fd_state* st) noexcept {
  st->fd = -1;
  unref(st);
}

}  // namespace detail

fd_watch::fd_watch(int fd) : fd_watch(fd, "weft::fd_watch") {}

fd_watch::fd_watch(int fd, const char* call)
    : sched_(&detail::scheduler::require_fiber(call)), incarnation_(sched_->incarnation()) {
  if (fd < 0) throw error(errc::invalid_argument, call, "negative file descriptor");
  auto st = std::make_unique<detail::fd_state>();
  st->fd = fd;
  sched_->io().add(st.get(), call);
  state_ = st.release();
}

fd_watch::fd_watch(fd_watch&& other) noexcept
    : sched_(std::exchange(other.sched_, nullptr)),
      incarnation_(std::exchange(other.incarnation_, 0)),
      state_(std::exchange(other.state_, nullptr)) {}

fd_watch& fd_watch::operator=(fd_watch&& other) noexcept {
  if (this != &other) {
    release();
    sched_ = std::exchange(other.sched_, nullptr);
    incarnation_ = std::exchange(other.incarnation_, 0);
    state_ = std::exchange(other.state_, nullptr);
  }
  return *this;
}

fd_watch::~fd_watch() { release(); }

void fd_watch::release() noexcept {
  if (!state_) return;
  detail::fd_state* st = std::exchange(state_, nullptr);
  if (sched_ == detail::this_thread_scheduler) [[likely]]
    detail::unwatch(*sched_, st);
  else {  // another thread, or after its run() ended: only its scheduler may touch its reactor
    st->released.store(true, std::memory_order_release);
    detail::scheduler::unwatch_elsewhere(sched_, st);
  }
}

int fd_watch::fd() const noexcept { return state_ ? state_->fd : -1; }

bool fd_watch::belongs_here() const noexcept {
  const detail::scheduler* here = detail::this_thread_scheduler;
  return here != nullptr && here == sched_ && here->incarnation() == incarnation_;
}

bool fd_watch::waited_on() const noexcept { return state_ && state_->waiters.load(std::memory_order_relaxed) != 0; }

bool fd_watch::hung_up() const noexcept { return state_ && state_->hung_up; }

void fd_watch::wait(fd_event ev) { wait_until(ev, no_deadline, "weft::fd_watch::wait"); }

bool fd_watch::wait_until(fd_event ev, time_point deadline, const char* call) {
  bool ended = false;
  return wait_until(ev, deadline, call, ended);
}

bool fd_watch::wait_until(fd_event ev, time_point deadline, const char* call, bool& ended) {
  auto& sched = detail::scheduler::require_fiber(call);
  if (!state_) throw error(errc::invalid_argument, call, "the watch was moved from");
  // Its registration lives in its own scheduler's epoll (or died with it): waiting
  // here would park with nothing that can wake us.
  if (&sched != sched_ || sched.incarnation() != incarnation_)
    throw error(errc::invalid_argument, call,
                "this fd_watch was made on another scheduler, or in a run() that has ended; make a new one here");
  detail::fd_state& st = *state_;
  const bool read = ev == fd_event::readable;
  bool& ready = read ? st.readable : st.writable;
  detail::park_token& slot = read ? st.reader : st.writer;
  if (ready) {  // an edge nobody consumed yet
    ready = false;
    return true;
  }
  if (slot) throw error(errc::already_waited, call, "another fiber already waits on this fd in this direction");
  const detail::park_token token = sched.prepare_park(call);
  slot = token;
  ++st.refs;  // the watch may be destroyed while we wait (its release() wakes us)
  st.waiters.store(st.waiters.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  const detail::wake_reason why = sched.park(token, deadline);
  st.waiters.store(st.waiters.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  // The reactor clears the slot when it wakes us; on timeout or cancel we do.
  if (slot.fiber == token.fiber && slot.generation == token.generation) slot = {};
  ended = st.fd < 0;  // unwatched while we waited (destroyed, its socket closed)
  unref(&st);  // `this` may be gone: touch nothing of it from here on
  switch (why) {
    case detail::wake_reason::notified: return true;
    case detail::wake_reason::timed_out: return false;
    case detail::wake_reason::cancelled: break;
  }
  detail::throw_cancelled(call);
}

namespace detail {

bool wait_fd_as(int fd, fd_event ev, time_point deadline, const char* call) {
  fd_watch watch(fd, call);
  return watch.wait_until(ev, deadline, call);
}

}  // namespace detail
}  // namespace weft
