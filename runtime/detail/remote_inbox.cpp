#include <weft/runtime/detail/remote_inbox.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <utility>

namespace weft::detail {

remote_inbox::remote_inbox() : event_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (event_fd_ < 0)
    throw std::system_error(errno, std::generic_category(), "weft::run: eventfd (a scheduler's wake-up descriptor)");
}

remote_inbox::~remote_inbox() { shutdown(); }

bool remote_inbox::post(std::function<void()> fn) {
  std::lock_guard lock(mutex_);
  if (closed_ || posts_refused_) return false;
  posts_.push_back(std::move(fn));
  has_items_.store(true, std::memory_order_seq_cst);
  notify_locked();
  return true;
}

void remote_inbox::refuse_posts() noexcept {
  std::lock_guard lock(mutex_);
  posts_refused_ = true;
}

bool remote_inbox::push(const remote_request& r) {
  std::lock_guard lock(mutex_);
  if (shut_down_ || (closed_ && r.what == remote_request::kind::start)) return false;
  if (!first_queued_) {
    first_ = r;
    first_queued_ = true;
  } else {
    requests_.push_back(r);
  }
  has_items_.store(true, std::memory_order_seq_cst);
  notify_locked();
  return true;
}

void remote_inbox::request_stop() noexcept {
  stop_.store(true, std::memory_order_release);
  poke();
}

void remote_inbox::poke() noexcept {
  std::lock_guard lock(mutex_);
  has_items_.store(true, std::memory_order_seq_cst);  // so the owner does not go to sleep
  notify_locked();
}

void remote_inbox::attach_quiet_count(std::atomic<std::size_t>* count) noexcept {
  std::lock_guard lock(mutex_);
  quiet_count_ = count;
}

bool remote_inbox::enter_quiet() noexcept {
  std::lock_guard lock(mutex_);
  if (has_items_.load(std::memory_order_relaxed) || quiet_count_ == nullptr) return false;
  if (!quiet_) {
    quiet_ = true;
    quiet_count_->fetch_add(1, std::memory_order_acq_rel);
  }
  return true;
}

void remote_inbox::leave_quiet() noexcept {
  std::lock_guard lock(mutex_);
  end_quiet_locked();
}

void remote_inbox::end_quiet_locked() noexcept {
  if (!quiet_) return;
  quiet_ = false;
  quiet_count_->fetch_sub(1, std::memory_order_acq_rel);
}

void remote_inbox::notify_locked() noexcept {
  end_quiet_locked();
  if (event_fd_ < 0 || !sleeping_.load(std::memory_order_seq_cst)) return;
  const std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: the scheduler will wake anyway.
  [[maybe_unused]] ssize_t n = ::write(event_fd_, &one, sizeof one);
}

void remote_inbox::take_locked(taken_requests& requests, std::vector<std::function<void()>>* posts) noexcept {
  requests.has_first = std::exchange(first_queued_, false);
  if (requests.has_first) requests.first = first_;
  requests.rest.swap(requests_);  // the owner's are empty: no allocation here
  if (posts != nullptr) posts->swap(posts_);
  has_items_.store(!posts_.empty(), std::memory_order_relaxed);
}

void remote_inbox::take(taken_requests& requests, std::vector<std::function<void()>>* posts) {
  std::lock_guard lock(mutex_);
  take_locked(requests, posts);
}

bool remote_inbox::has_posts() noexcept {
  std::lock_guard lock(mutex_);
  return !posts_.empty();
}

bool remote_inbox::begin_sleep() noexcept {
  sleeping_.store(true, std::memory_order_seq_cst);
  if (has_items_.load(std::memory_order_seq_cst)) {
    sleeping_.store(false, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void remote_inbox::end_sleep() noexcept { sleeping_.store(false, std::memory_order_relaxed); }

void remote_inbox::drain_event_fd() noexcept {
  std::uint64_t value;
  while (::read(event_fd_, &value, sizeof value) > 0) {
  }
}

void remote_inbox::shutdown() noexcept {
  std::lock_guard lock(mutex_);
  closed_ = true;
  shut_down_ = true;
  if (event_fd_ >= 0) ::close(event_fd_);
  event_fd_ = -1;
}

void remote_inbox::close(taken_requests& requests, std::vector<std::function<void()>>* posts) {
  std::lock_guard lock(mutex_);
  closed_ = true;
  take_locked(requests, posts);
}

}  // namespace weft::detail
