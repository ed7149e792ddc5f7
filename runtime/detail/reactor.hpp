// reactor.hpp: epoll, behind "sleep until this deadline, an fd event, or a wake-up".
//
// Descriptors are registered once, edge-triggered, for both directions, and stay
// registered until their watch is destroyed: re-arming interest with epoll_ctl around
// every read costs a system call per operation (lalinsky/zio #510). Because an edge
// may arrive while nobody waits, each direction keeps a sticky "ready" bit; a wait
// that finds it set returns at once. Callers try the system call first and wait only
// after EAGAIN, so a stale bit costs one extra EAGAIN, never a lost event.
//
// Stale registrations. epoll registers an *open file description* under an fd
// number, and the registration lives until the last descriptor of that file closes,
// not until the number closes. When a descriptor is closed before its watch is
// destroyed while another descriptor of the same file lives on (a dup, a forked
// child, an fd in flight in an SCM_RIGHTS message), the registration outlives the
// watch, cannot be removed (EPOLL_CTL_DEL needs a descriptor of that file, which this
// process may not have), and keeps reporting edges. So the kernel is never given a
// pointer: each registration's epoll_event.data is a key, (slot index, generation),
// into a table the reactor owns. Destroying a watch frees its slot and bumps the
// slot's generation, so every event of the old registration names a generation that
// no longer matches and is dropped, whatever the slot holds now. The check is one
// load and compare per event: no system call and no allocation per operation.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include <weft/runtime/detail/fiber_record.hpp>

namespace weft::detail {

// fd_state is one watched descriptor, owned by its fd_watch (and kept alive by a
// fiber while it waits, see refs). The reactor reaches it only through its slot, and
// only while it is registered.
struct fd_state {
  int fd = -1;
  park_token reader{};      // the fiber waiting for readability, if any
  park_token writer{};      // the fiber waiting for writability, if any
  bool readable = false;    // an edge arrived that no reader has consumed
  bool writable = false;
  bool hung_up = false;     // the peer shut down or the fd failed: stays so
  // number_reused: fd was closed and its number now names another file that a newer
  // watch registered; unregistering must then not EPOLL_CTL_DEL that number.
  bool number_reused = false;
  std::uint32_t slot = 0;   // this state's entry in the reactor's table while registered
  int refs = 1;             // the watch, plus a fiber while it waits (owner thread only)
  // released: its watch was destroyed on another thread, and the request to
  // unregister it is on its way to this reactor's thread. Until it lands, the
  // registration still holds the number; a new watch of the same file here (a
  // socket back from a fiber of another scheduler) takes it over (add()).
  std::atomic<bool> released{false};
  // waiters: fibers parked on this fd now (0-2), written by the owner thread only;
  // atomic so that a thread that finds the watch is not its own can tell it is in
  // use (fd_watch::waited_on).
  std::atomic<std::uint8_t> waiters{0};
};

class reactor {
 public:
  explicit reactor(int wake_fd);  // wake_fd: the inbox's eventfd, level-triggered
  ~reactor();
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  // add registers st->fd (edge-triggered, in and out) under a fresh key. Throws
  // std::system_error naming `what` (EEXIST: a live watch has this descriptor
  // already; EPERM: a regular file), or std::bad_alloc.
  void add(fd_state* st, const char* what);
  // holds: st is registered here (a state handed over from another thread is checked
  // before it is removed: its scheduler may be a new one at the old one's address).
  bool holds(const fd_state* st) const noexcept {
    return st->slot < slots_.size() && slots_[st->slot].state == st;
  }
  // remove unregisters st; from here on no event reaches st. Harmless if the fd was
  // closed first (its registration, if the file lives on elsewhere, turns stale).
  void remove(fd_state* st) noexcept;

  // poll waits up to timeout_ms (-1: forever, 0: just look) and wakes the fibers
  // whose descriptors became ready. Returns true if the wake fd fired.
  bool poll(int timeout_ms) noexcept;

  // registered is how many descriptors are registered (the wake fd excluded).
  std::size_t registered() const noexcept { return registered_; }

 private:
  // A slot is one entry of the table the kernel's keys point into. state is null
  // while the slot is free; generation counts the registrations it has ended. It
  // wraps after 2^32 reuses of one slot: an event of a registration that old could
  // then reach a live watch, which costs that watch one spurious wake-up (every
  // caller retries its system call), never a stale pointer.
  struct slot {
    fd_state* state = nullptr;
    std::uint32_t generation = 0;
  };
  static std::uint64_t key(std::uint32_t index, std::uint32_t generation) noexcept {
    return std::uint64_t{generation} << 32 | index;
  }
  static constexpr std::uint64_t wake_key = ~std::uint64_t{0};  // index 2^32-1 is never used

  int epoll_fd_;
  int wake_fd_;
  std::size_t registered_ = 0;
  std::vector<slot> slots_;               // never shrinks: every key's index stays in range
  std::vector<std::uint32_t> free_slots_; // capacity >= slots_.size(), so a push never throws
  // live_slot_of_fd_[fd]: 1 + the slot of the newest live watch of that fd number, or
  // 0. It tells a stale registration (EEXIST with no live watch: take it over) from a
  // second watch of one descriptor (EEXIST with one: refused), and marks an older
  // watch whose closed number was reused (number_reused).
  std::vector<std::uint32_t> live_slot_of_fd_;
  epoll_event events_[1024];  // one epoll_wait serves up to this many ready fds
};

class scheduler;
// unwatch ends a watch on its scheduler's thread: unregisters st (if `owner`'s reactor
// holds it), wakes its waiters, drops the watch's reference. forget_watch ends one
// whose scheduler has ended. Both in fd_wait.cpp.
void unwatch(scheduler& owner, fd_state* st) noexcept;
void forget_watch(fd_state* st) noexcept;

}  // namespace weft::detail
