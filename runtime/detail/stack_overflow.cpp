#include <weft/runtime/detail/stack_overflow.hpp>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>

#include <weft/runtime/detail/sanitizer.hpp>
#include <weft/runtime/detail/scheduler.hpp>

namespace weft::detail {
namespace {

// How far below a stack's bottom a fault still counts as its overflow: the guard
// page, and what a large frame may have jumped past it.
constexpr std::uintptr_t overflow_window = 64 * 1024;

std::mutex handler_mutex;         // guards the two below (never taken in the handler)
int handler_users = 0;            // schedulers alive that count on the handler
struct sigaction previous_action;  // what was installed before ours; read by the handler

// ---- async-signal-safe output --------------------------------------------------------

void put(const char* text, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<std::size_t>(w);
  }
}
void put(const char* text) noexcept {
  std::size_t n = 0;
  while (text[n]) ++n;
  put(text, n);
}
void put_number(std::uint64_t v) noexcept {
  char digits[24];
  int i = sizeof digits;
  do {
    digits[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  put(digits + i, sizeof digits - static_cast<std::size_t>(i));
}

// pass_on gives the fault to the disposition that was there before ours.
void pass_on(int sig, siginfo_t* info, void* context) noexcept {
  const struct sigaction& prev = previous_action;
  if (prev.sa_flags & SA_SIGINFO) {
    if (prev.sa_sigaction) {
      prev.sa_sigaction(sig, info, context);
      return;
    }
  } else if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  // Default (an ignored SIGSEGV from a fault is fatal all the same): put the
  // default back and return; the faulting instruction runs again and the kernel
  // kills the process with SIGSEGV, core dump and all, as if we had never been here.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(SIGSEGV, &dfl, nullptr);
  if (info->si_code <= 0) ::raise(SIGSEGV);  // sent by kill(): nothing re-faults
}

void on_segv(int sig, siginfo_t* info, void* context) {
  // Only the faulting thread's own state is read: its scheduler (thread-local,
  // initial-exec), the running fiber and its stack bounds.
  const scheduler* s = this_thread_scheduler;
  const fiber_record* f = s ? s->running() : nullptr;
  const auto addr = reinterpret_cast<std::uintptr_t>(info->si_addr);
  if (f != nullptr && f->stack_.bottom != nullptr && info->si_code > 0) {
    const auto bottom = reinterpret_cast<std::uintptr_t>(f->stack_.bottom);
    if (addr < bottom && bottom - addr <= overflow_window) {
      put("weft: stack overflow in fiber ");
      put_number(f->id_);
      if (!f->name_.empty()) {
        put(" \"");
        put(f->name_.data(), f->name_.size());
        put("\"");
      }
      put(" (stack of ");
      put_number(f->stack_.size);
      put(" bytes); raise spawn_options::stack_size or weft::run_options::stack_size; aborting\n");
      std::abort();
    }
  }
  pass_on(sig, info, context);
}

[[maybe_unused]] std::size_t alt_stack_size() noexcept {  // unused under ASan (see below)
  const long min = ::sysconf(_SC_MINSIGSTKSZ);
  return std::max<std::size_t>(64 * 1024, min > 0 ? 4 * static_cast<std::size_t>(min) : 0);
}

}  // namespace

overflow_reporter::overflow_reporter() {
#if !WEFT_ASAN
  // The thread's alternate stack: ours only if it has none.
  stack_t current{};
  if (::sigaltstack(nullptr, &current) == 0 && (current.ss_flags & SS_DISABLE)) {
    const std::size_t size = alt_stack_size();
    void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (mem != MAP_FAILED) {
      stack_t ours{};
      ours.ss_sp = mem;
      ours.ss_size = size;
      if (::sigaltstack(&ours, nullptr) == 0) {
        alt_stack_ = mem;
        alt_size_ = size;
      } else {
        ::munmap(mem, size);
      }
    }
  }
  // The process's SIGSEGV action: installed by the first scheduler.
  std::lock_guard lock(handler_mutex);
  if (handler_users == 0) {
    struct sigaction ours {};
    ours.sa_sigaction = &on_segv;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&ours.sa_mask);
    if (::sigaction(SIGSEGV, &ours, &previous_action) != 0) return;
  }
  ++handler_users;
  handler_ref_ = true;
#endif
}

overflow_reporter::~overflow_reporter() {
  if (handler_ref_) {
    std::lock_guard lock(handler_mutex);
    if (--handler_users == 0) {
      // Put back what was there, unless someone replaced our action meanwhile.
      struct sigaction current {};
      if (::sigaction(SIGSEGV, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
          current.sa_sigaction == &on_segv)
        ::sigaction(SIGSEGV, &previous_action, nullptr);
    }
  }
  if (alt_stack_ != nullptr) {
    // Remove it only if it is still the thread's alternate stack.
    stack_t current{};
    if (::sigaltstack(nullptr, &current) == 0 && current.ss_sp == alt_stack_ && !(current.ss_flags & SS_ONSTACK)) {
      stack_t off{};
      off.ss_flags = SS_DISABLE;
      ::sigaltstack(&off, nullptr);
      ::munmap(alt_stack_, alt_size_);
    }
  }
}

}  // namespace weft::detail
