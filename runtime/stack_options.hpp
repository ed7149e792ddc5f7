// stack_options.hpp: how fiber stacks are sized and protected.
#pragma once

#include <cstddef>

namespace weft {

// guard_pages says whether a fiber stack gets a PROT_NONE page below it, so that an
// overflow faults at once instead of overwriting the next stack.
//
// A guarded stack costs two kernel memory mappings and Linux allows
// vm.max_map_count of them per process (65530 by default): guarding every stack caps
// a process near 32,000 fibers. The default therefore guards stacks while the
// process's guarded stacks (all schedulers together) fit in a quarter of that limit
// and carves the rest, unguarded, out of large shared slabs (one mapping per 256
// stacks), so a million fibers still fit. A scheduler keeps the stacks it made for
// reuse until it ends.
enum class guard_pages {
  within_map_budget,  // default: guard while the process has under max_map_count / 4
  always,             // guard every stack; spawning fails with ENOMEM past the limit
  never,              // no guard pages; every stack comes from a slab
};

// default_stack_size is the usable stack of a fiber when nothing else is asked for:
// 1 MiB, room for ordinary library code (std::regex_match on a 1,000-character line
// needs ~740 KiB with libstdc++; getaddrinfo ~12 KiB, iostreams ~7 KiB). It is
// address space, not memory: only the pages a fiber touches become resident (an
// idle fiber costs ~4 KiB), and a stack that comes back from a deep call gives all
// but its top 64 KiB back to the kernel (detail/stack_pool.hpp). What it does cost:
// virtual address space (a million default fibers reserve 1 TiB of the 128 TiB a
// process has; under vm.overcommit_memory=2 every stack counts in full, so use
// smaller stacks there) and about 2 KiB of page tables per fiber.
// Sanitizer builds use four times as much: their frames are larger.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr std::size_t default_stack_size = 4 * 1024 * 1024;
#else
inline constexpr std::size_t default_stack_size = 1024 * 1024;
#endif

// min_stack_size is the smallest stack weft hands out; smaller requests round up.
inline constexpr std::size_t min_stack_size = 16 * 1024;
// max_stack_size is the largest (4 GiB); a larger request (a negative size converted
// to std::size_t, say) makes spawn or run throw weft::error(errc::invalid_argument).
inline constexpr std::size_t max_stack_size = std::size_t(4) << 30;

}  // namespace weft
