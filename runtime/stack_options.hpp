// stack_options.hpp: how fiber stacks are sized and protected.
#pragma once

#include <cstddef>

namespace weft {

// guard_pages says whether a fiber stack gets a PROT_NONE page below it, so that an
// overflow faults at once instead of overwriting the next stack.
//
// A guarded stack costs two kernel memory mappings and Linux allows
// vm.max_map_count of them per process (65530 by default): guarding every stack caps
// a process near 32,000 fibers. The default therefore guards stacks while they fit in
// a quarter of that limit and carves the rest, unguarded, out of large shared slabs
// (one mapping per 256 stacks), so a million fibers still fit.
enum class guard_pages {
  within_map_budget,  // default: guard while under max_map_count / 4 guarded stacks
  always,             // guard every stack; spawning fails with ENOMEM past the limit
  never,              // no guard pages; every stack comes from a slab
};

// default_stack_size is the usable stack of a fiber when nothing else is asked for.
// Only the pages a fiber touches become resident, so a big nominal size is cheap.
// Sanitizer builds use four times as much: their frames are larger.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr std::size_t default_stack_size = 256 * 1024;
#else
inline constexpr std::size_t default_stack_size = 64 * 1024;
#endif

// min_stack_size is the smallest stack weft hands out; smaller requests round up.
inline constexpr std::size_t min_stack_size = 16 * 1024;

}  // namespace weft
