// stack_pool.hpp: where fiber stacks come from and go back to.
//
//   guarded stack (one mmap each):      slab (one mmap, 256 stacks):
//   +-------+------------------+        +--------------+--------------+-- ...
//   | guard |  usable stack  ^ |        |  stack 0   ^ |  stack 1   ^ |
//   +-------+----------------|-+        +------------|-+------------|-+-- ...
//   base    bottom          top                     top            top
//
// A stack grows down from `top`. Spawning takes a stack of the requested size from a
// free list and finishing a fiber puts it back: the steady state costs no system call.
// The pool belongs to one scheduler and is used only from that scheduler's thread.
//
// Every stack of the default size, guarded or from a slab, is kept for reuse until
// the pool dies (as Boost.Fiber's pooled stacks and marl's are). Programs spawn in
// waves, and a wave that found its stacks unmapped paid mmap, a page fault and a
// page-table page per stack again (weft/timers_100k: 1.7x; bench/NOTES.md). A kept
// stack holds only the pages its fibers touched, at most keep_resident after a deep
// one (below). Of other sizes, which a program may vary without end, a pool keeps
// max_kept_other free stacks per size; beyond that a guarded stack is unmapped and
// a slab stack gives all its pages back.
//
// Free guarded stacks are handed out before slab ones, so that after a burst a
// program's fibers again get the guard pages that catch an overflow. Releasing a
// stack never allocates (a fiber ends in a noexcept path, and at the kernel's map
// limit malloc fails too): each free list has room reserved for every stack of its
// size, made when the stack was.
//
// Stacks are address space, not memory: they are mapped MAP_NORESERVE and the
// kernel commits a page when the fiber first touches it, so a 1 MiB stack whose
// fiber touched 4 KiB costs 4 KiB. A stack that comes back deep-touched gives back
// what lies below its top `keep_resident` bytes (madvise(MADV_DONTNEED)), so one
// deep call (a regex, a recursive parser) does not pin its pages in the pool for
// good. How deep it went is read from one word: the last word below the top
// `keep_resident` bytes. A page never touched reads as zero (the kernel maps its shared zero page for
// the read, which counts in no one's RSS); a fiber that went deeper wrote a frame
// there. A frame that happened to leave exactly that word zero goes unnoticed once;
// its stack keeps its pages until a later release sees the word set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include <weft/runtime/detail/sanitizer.hpp>
#include <weft/runtime/stack_options.hpp>

namespace weft::detail {

// stack is one fiber stack: [bottom, bottom + size) is usable, growing down from top().
struct stack {
  char* bottom = nullptr;
  std::size_t size = 0;
  bool guarded = false;
  char* top() const noexcept { return bottom + size; }
};

class stack_pool {
 public:
  stack_pool(std::size_t default_size, guard_pages policy);
  ~stack_pool();
  stack_pool(const stack_pool&) = delete;
  stack_pool& operator=(const stack_pool&) = delete;

  // acquire returns a stack of at least `size` usable bytes (0: the pool's default).
  // Throws std::system_error (ENOMEM) when the kernel refuses the memory.
  stack acquire(std::size_t size) {
    if (size == 0 || size == default_size_) {
      free_list& list = *default_list_;  // the common case, kept inline
      if (std::vector<stack>* from = list.nonempty()) [[likely]] {
        stack s = from->back();
        from->pop_back();
        // A finished fiber leaves ASan redzones behind on frames it never returned from.
        asan_unpoison(s.bottom, s.size);
        return s;
      }
    }
    return acquire_slow(size);
  }

  // Bytes below a stack's top that a released stack keeps resident; the rest of a
  // deep-touched stack goes back to the kernel (64 KiB: weft's old default stack,
  // so stacks that fitted in it cost no system call on release).
  static constexpr std::size_t keep_resident = 64 * 1024;

  // release returns a stack to its free list, after giving back the pages of a
  // deep-touched one.
  void release(const stack& s) noexcept {
    if (s.size != default_size_) [[unlikely]]
      return release_other(s);
    trim_if_deep(s);
    default_list_->put(s);
  }

  // Free stacks of a size other than the default that a pool keeps (see the top).
  static constexpr std::size_t max_kept_other = 1024;

  // guarded_count is how many guarded stacks this pool has (in use or kept);
  // guard_budget is how many the process may have, all pools together.
  std::size_t guarded_count() const noexcept { return guarded_; }
  std::size_t guard_budget() const noexcept { return guard_budget_; }

 private:
  struct free_list {
    std::size_t size = 0;
    std::vector<stack> guarded;    // free stacks, handed out first
    std::vector<stack> unguarded;  // free slab stacks
    // Stacks of this size that exist (free or in use), each vector's reserved room.
    std::size_t made_guarded = 0;
    std::size_t made_unguarded = 0;

    std::vector<stack>* nonempty() noexcept {
      if (!guarded.empty()) return &guarded;
      if (!unguarded.empty()) return &unguarded;
      return nullptr;
    }
    std::size_t free_count() const noexcept { return guarded.size() + unguarded.size(); }
    // put never allocates: the room was reserved when the stack was made.
    void put(const stack& s) noexcept { (s.guarded ? guarded : unguarded).push_back(s); }
  };
  // touched_deep: the last word of the part a trim gives back (just below the top
  // keep_resident bytes) is set (see the top); a trim zeroes it again. Not
  // instrumented: ASan may still hold redzones of the finished fiber's frames there.
  [[gnu::no_sanitize_address]] static bool touched_deep(const stack& s) noexcept {
    return *reinterpret_cast<const volatile std::uint64_t*>(s.top() - keep_resident - sizeof(std::uint64_t)) != 0;
  }
  static void trim(const stack& s) noexcept;
  static void trim_if_deep(const stack& s) noexcept {
    if (s.size > keep_resident && touched_deep(s)) [[unlikely]]
      trim(s);
  }
  stack acquire_slow(std::size_t size);
  void release_other(const stack& s) noexcept;
  // reserve_room makes room in `v` for `count` stacks (std::bad_alloc: none made).
  static void reserve_room(std::vector<stack>& v, std::size_t count);
  free_list& list_for(std::size_t size);
  // take_guard_slot: whether the next new stack gets a guard page, by the policy and
  // the process-wide budget (counted: map_guarded gives the slot back on failure).
  bool take_guard_slot() noexcept;
  stack map_guarded(free_list& list);
  void carve_slab(free_list& list);

  std::size_t default_size_;
  guard_pages policy_;
  std::size_t guard_budget_;
  std::size_t guarded_ = 0;
  std::deque<free_list> lists_;  // one per distinct stack size (few in practice)
  free_list* default_list_;       // lists_'s entry for default_size_
  struct slab {
    char* base;
    std::size_t bytes;
  };
  std::vector<slab> slabs_;  // unmapped only when the pool dies
};

// round_stack_size turns a requested size into the size actually handed out (0:
// `fallback`). More than max_stack_size is weft::error(errc::invalid_argument)
// naming `call`.
std::size_t round_stack_size(std::size_t requested, std::size_t fallback, const char* call);

}  // namespace weft::detail
