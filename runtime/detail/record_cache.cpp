#include <weft/runtime/detail/record_cache.hpp>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>

namespace weft::detail {
namespace {

constexpr std::size_t granule = 64;
constexpr std::size_t classes = 8;  // blocks up to 512 bytes are cached
constexpr std::size_t max_cached = 4096;

struct free_block {
  free_block* next;
};

// Trivially constructible and destructible, so reaching it costs no TLS init
// guard; the blocks are freed at thread exit by `reaper`, armed on first use.
struct cache {
  free_block* head[classes];
  std::size_t count[classes];
};

constinit thread_local cache this_thread_cache [[gnu::tls_model("initial-exec")]] = {};

// The live-record count (live_records()). Each thread keeps the balance of the
// records it allocated and freed in a counter only it writes: a plain load and
// store, no locked instruction on the spawn path. live_records() adds up the
// counters of the threads alive and what the exited ones left. A record freed on
// another thread moves one count between two counters; the sum stays right.
struct balance_list {
  std::mutex mutex;
  struct balance* head = nullptr;
  std::ptrdiff_t exited = 0;  // what threads that have exited left
};
balance_list& balances() {
  static balance_list* list = new balance_list;  // never destroyed: threads outlive main
  return *list;
}

struct balance {
  std::atomic<std::ptrdiff_t> live{0};
  balance* next = nullptr;
  balance* prev = nullptr;
};
constinit thread_local balance this_thread_balance [[gnu::tls_model("initial-exec")]];

void add_live(std::ptrdiff_t n) noexcept {
  auto& live = this_thread_balance.live;
  live.store(live.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

struct reaper {
  reaper() {
    balance_list& list = balances();
    std::lock_guard lock(list.mutex);
    balance& mine = this_thread_balance;
    mine.next = list.head;
    if (list.head) list.head->prev = &mine;
    list.head = &mine;
  }
  ~reaper() {
    for (auto*& h : this_thread_cache.head)
      while (h) {
        free_block* next = h->next;
        ::operator delete(h);
        h = next;
      }
    balance_list& list = balances();
    std::lock_guard lock(list.mutex);
    balance& mine = this_thread_balance;
    list.exited += mine.live.load(std::memory_order_relaxed);
    mine.live.store(0, std::memory_order_relaxed);
    if (mine.prev) mine.prev->next = mine.next; else list.head = mine.next;
    if (mine.next) mine.next->prev = mine.prev;
  }
};

// Arms the thread's reaper (and lists its balance); needed by any thread that
// allocates or frees a record, including plain threads that only free records (a
// join after run() returned).
constinit thread_local bool reaper_armed [[gnu::tls_model("initial-exec")]] = false;

[[gnu::noinline]] void arm_reaper() {
  thread_local reaper arm;
  (void)arm;
  reaper_armed = true;
}

std::size_t class_of(std::size_t size) noexcept { return (size + granule - 1) / granule - 1; }

}  // namespace

void* allocate_record(std::size_t size) {
  if (!reaper_armed) [[unlikely]]
    arm_reaper();
  add_live(1);
  const std::size_t c = class_of(size);
  if (c >= classes) return ::operator new(size);
  cache& k = this_thread_cache;
  if (free_block* b = k.head[c]) {
    k.head[c] = b->next;
    --k.count[c];
    return b;
  }
  return ::operator new((c + 1) * granule);
}

void free_record(void* block, std::size_t size) noexcept {
  if (!reaper_armed) [[unlikely]]
    arm_reaper();
  add_live(-1);
  const std::size_t c = class_of(size);
  if (c >= classes) return ::operator delete(block);
  cache& k = this_thread_cache;
  if (k.count[c] >= max_cached) return ::operator delete(block);
  auto* b = static_cast<free_block*>(block);
  b->next = k.head[c];
  k.head[c] = b;
  ++k.count[c];
}

std::ptrdiff_t live_records() noexcept {
  balance_list& list = balances();
  std::lock_guard lock(list.mutex);
  std::ptrdiff_t sum = list.exited;
  for (const balance* b = list.head; b; b = b->next) sum += b->live.load(std::memory_order_relaxed);
  return sum;
}

}  // namespace weft::detail
