// The benchmark suite's entry point. Names follow <who>/<what>: `floor/` is the
// cost of the bare mechanism (raw Boost.Context), `weft/` is ours, `boost_fiber/` the
// peer. bench/report.py turns one run into the comparison table.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();
