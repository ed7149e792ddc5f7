#include <weft/runtime/detail/stack_pool.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <fstream>
#include <string>
#include <system_error>

#include <weft/runtime/detail/sanitizer.hpp>
#include <weft/runtime/error.hpp>

namespace weft::detail {
namespace {

constexpr std::size_t stacks_per_slab = 256;

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

// The kernel's per-process mapping limit; a guarded stack spends two mappings.
std::size_t max_map_count() {
  std::ifstream in("/proc/sys/vm/max_map_count");
  std::size_t value = 0;
  if (in >> value && value > 0) return value;
  return 65530;
}

// Guarded stacks of all pools: vm.max_map_count limits the process, not a pool,
// and pools keep their stacks until they die, so one scheduler's wave of fibers
// must leave the others their share of the budget.
std::atomic<std::size_t> guarded_in_process{0};

// unmap gives stack memory back to the kernel. Under ASan the frames that fibers
// never returned from leave redzones in the shadow, which would outlive the
// mapping: the next mmap at these addresses (a program's own buffer) would read as
// poisoned (a breaker's finding: stack-buffer-underflow on a fresh mmap after a run).
void unmap(char* base, std::size_t bytes) noexcept {
  asan_unpoison(base, bytes);
  ::munmap(base, bytes);
}

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

}  // namespace

std::size_t round_stack_size(std::size_t requested, std::size_t fallback, const char* call) {
  std::size_t size = requested == 0 ? fallback : requested;
  if (size > max_stack_size)  // also keeps the rounding and a slab's size from wrapping around
    throw error(errc::invalid_argument, call,
                "stack_size " + std::to_string(size) + " is more than weft::max_stack_size (" +
                    std::to_string(max_stack_size) + ")");
  size = std::max(size, min_stack_size);
  const std::size_t page = page_size();
  return (size + page - 1) / page * page;
}

stack_pool::stack_pool(std::size_t default_size, guard_pages policy)
    : default_size_(round_stack_size(default_size, weft::default_stack_size, "weft::run")),
      policy_(policy),
      guard_budget_(policy == guard_pages::never ? 0 : max_map_count() / 4),
      default_list_(&list_for(default_size_)) {}

// Guarded stacks go back in runs of neighbours, one munmap per run: each munmap
// ends with a TLB flush, which a VM makes dear (~14 us here against ~0.8 us per
// stack in one call), and the kernel mostly places successive stacks side by side.
// A run joins two stacks only where one's guard page starts exactly at the other's
// end, so it covers nothing but this pool's mappings.
stack_pool::~stack_pool() {
  const std::size_t page = page_size();
  for (auto& list : lists_) {
    std::vector<stack>& free = list.guarded;  // every stack is free by now: their fibers ended
    std::sort(free.begin(), free.end(), [](const stack& a, const stack& b) { return a.bottom < b.bottom; });
    for (std::size_t i = 0; i < free.size();) {
      char* const begin = free[i].bottom - page;
      char* end = free[i].top();
      for (++i; i < free.size() && free[i].bottom - page == end; ++i) end = free[i].top();
      unmap(begin, static_cast<std::size_t>(end - begin));
    }
  }
  for (auto& sl : slabs_) unmap(sl.base, sl.bytes);
  guarded_in_process.fetch_sub(guarded_, std::memory_order_relaxed);
}

stack_pool::free_list& stack_pool::list_for(std::size_t size) {
  for (auto& list : lists_)
    if (list.size == size) return list;
  lists_.emplace_back();
  lists_.back().size = size;
  return lists_.back();
}

stack stack_pool::acquire_slow(std::size_t requested) {
  const std::size_t size = round_stack_size(requested, default_size_, "weft::spawn");
  free_list& list = list_for(size);
  std::vector<stack>* from = list.nonempty();
  if (from == nullptr) {
    if (take_guard_slot()) {
      // A fresh mapping may reuse the addresses of an unmapped stack whose frames
      // left ASan redzones in the shadow: clear them as for a recycled stack.
      stack s = map_guarded(list);
      asan_unpoison(s.bottom, s.size);
      return s;
    }
    carve_slab(list);
    from = &list.unguarded;
  }
  stack s = from->back();
  from->pop_back();
  // A finished fiber leaves ASan redzones behind on frames it never returned from.
  asan_unpoison(s.bottom, s.size);
  return s;
}

void stack_pool::reserve_room(std::vector<stack>& v, std::size_t count) {
  if (v.capacity() < count) v.reserve(std::max(count, 2 * v.capacity()));
}

void stack_pool::release_other(const stack& s) noexcept {
  free_list& list = list_for(s.size);  // exists (acquire made it): allocates nothing
  if (list.free_count() < max_kept_other) {
    trim_if_deep(s);
    list.put(s);
    return;
  }
  if (s.guarded) {
    unmap(s.bottom - page_size(), s.size + page_size());
    --list.made_guarded;
    --guarded_;
    guarded_in_process.fetch_sub(1, std::memory_order_relaxed);
    return;
  }
  // A slab stack cannot be unmapped alone: it keeps its addresses, not its pages.
  ::madvise(s.bottom, s.size, MADV_DONTNEED);
  list.put(s);
}

bool stack_pool::take_guard_slot() noexcept {
  switch (policy_) {
    case guard_pages::never: return false;
    case guard_pages::always:  // counted too: they spend the same mappings
      guarded_in_process.fetch_add(1, std::memory_order_relaxed);
      return true;
    case guard_pages::within_map_budget: break;
  }
  std::size_t n = guarded_in_process.load(std::memory_order_relaxed);
  while (n < guard_budget_)
    if (guarded_in_process.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
  return false;
}

stack stack_pool::map_guarded(free_list& list) {
  const std::size_t size = list.size;
  const std::size_t page = page_size();
  const auto give_slot_back = [] { guarded_in_process.fetch_sub(1, std::memory_order_relaxed); };
  try {
    reserve_room(list.guarded, list.made_guarded + 1);
  } catch (...) {
    give_slot_back();
    throw;
  }
  // MAP_NORESERVE: only touched pages count; an idle fiber's stack usually touches one.
  void* base = ::mmap(nullptr, size + page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) {
    const int saved = errno;
    give_slot_back();
    errno = saved;
    throw_errno("weft: cannot map a fiber stack");
  }
  if (::mprotect(base, page, PROT_NONE) != 0) {
    const int saved = errno;
    ::munmap(base, size + page);
    give_slot_back();
    errno = saved;
    throw_errno("weft: cannot protect a fiber stack's guard page (vm.max_map_count?)");
  }
  ++guarded_;
  ++list.made_guarded;
  return stack{static_cast<char*>(base) + page, size, true};
}

void stack_pool::carve_slab(free_list& list) {
  const std::size_t bytes = list.size * stacks_per_slab;  // no wrap: size <= max_stack_size
  reserve_room(list.unguarded, list.made_unguarded + stacks_per_slab);
  if (slabs_.size() == slabs_.capacity()) slabs_.reserve(2 * slabs_.size() + 1);  // no throw after the mmap
  void* base = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (base == MAP_FAILED) throw_errno("weft: cannot map a slab of fiber stacks");
  slabs_.push_back(slab{static_cast<char*>(base), bytes});
  list.made_unguarded += stacks_per_slab;
  // Pushed highest first so the lowest stacks are handed out first.
  for (std::size_t i = stacks_per_slab; i-- > 0;)
    list.unguarded.push_back(stack{static_cast<char*>(base) + i * list.size, list.size, false});
}

void stack_pool::trim(const stack& s) noexcept {
  // [bottom, top - keep_resident) back to the kernel: reads as zeros again, and the
  // next fiber commits pages as it touches them. keep_resident is page-aligned and
  // so are stacks. Failure only leaves the pages resident.
  ::madvise(s.bottom, s.size - keep_resident, MADV_DONTNEED);
}

}  // namespace weft::detail
