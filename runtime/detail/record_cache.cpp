#include <weft/runtime/detail/record_cache.hpp>

#include <cstdlib>
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

struct reaper {
  ~reaper() {
    for (auto*& h : this_thread_cache.head)
      while (h) {
        free_block* next = h->next;
        ::operator delete(h);
        h = next;
      }
  }
};

// Arms the thread's reaper; needed by any thread that caches a block, including
// plain threads that only free records (a join after run() returned).
constinit thread_local bool reaper_armed [[gnu::tls_model("initial-exec")]] = false;

[[gnu::noinline]] void arm_reaper() {
  thread_local reaper arm;
  (void)arm;
  reaper_armed = true;
}

std::size_t class_of(std::size_t size) noexcept { return (size + granule - 1) / granule - 1; }

}  // namespace

void* allocate_record(std::size_t size) {
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
  const std::size_t c = class_of(size);
  if (c >= classes) return ::operator delete(block);
  cache& k = this_thread_cache;
  if (k.count[c] >= max_cached) return ::operator delete(block);
  if (!reaper_armed) [[unlikely]]
    arm_reaper();
  auto* b = static_cast<free_block*>(block);
  b->next = k.head[c];
  k.head[c] = b;
  ++k.count[c];
}

}  // namespace weft::detail
