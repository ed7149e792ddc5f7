// record_cache.hpp: memory for fiber records without a malloc per spawn.
//
// Every spawn allocates a record and every join frees one; glibc's malloc/free pair
// costs more than the rest of a spawn. Freed blocks go to a per-thread free list per
// 64-byte size class and are reused by the next spawn on that thread. A record freed
// on another thread simply joins that thread's lists. Each list is capped, so a burst
// of fibers does not pin its memory.
#pragma once

#include <cstddef>

namespace weft::detail {

void* allocate_record(std::size_t size);
void free_record(void* block, std::size_t size) noexcept;

// live_records is how many records are allocated and not yet freed, over every
// thread: weft's test fixture checks it comes back to where it was after each run.
// Takes a lock; never on a hot path.
std::ptrdiff_t live_records() noexcept;

}  // namespace weft::detail
