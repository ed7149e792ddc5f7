#!/usr/bin/env python3
"""Compares two builds of weft's benchmark suite in one run: before and after a change.

Runs BEFORE and AFTER (two weft_bench binaries) in alternation, ROUNDS times each, so
a noisy minute of a shared machine lands on both; keeps each row's best time (the
least disturbed) and prints after/before per row. A row more than --limit slower
(default 5%) is flagged, and the exit status is 1 if any row is. The floor rows run
the same code in both binaries: how far they moved is printed as the run's noise,
and a flagged row within it says so.

usage: compare.py BEFORE AFTER [--rounds 3] [--limit 0.05] [--filter REGEX (default: weft and floor rows)]
       (e.g. compare.py /tmp/weft_bench.old build/bench/weft_bench)
"""
import argparse
import json
import subprocess
import sys
import tempfile

TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def run_once(binary, bench_filter):
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        subprocess.run([binary, f"--benchmark_filter={bench_filter}",
                        f"--benchmark_out={out.name}", "--benchmark_out_format=json"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rows = json.load(open(out.name))["benchmarks"]
    times = {}
    for row in rows:
        if row.get("run_type") == "aggregate" or "error_occurred" in row:
            continue
        # Rows that report a counter (memory) are compared by it, the rest by time.
        value = row.get("bytes_per_fiber")
        if value is None:
            value = row["real_time"] * TO_NS[row["time_unit"]]
        name = row["run_name"]
        times[name] = min(times.get(name, value), value)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--limit", type=float, default=0.05)
    parser.add_argument("--filter", default="^(weft|floor)/")
    args = parser.parse_args()

    best = {"before": {}, "after": {}}
    for r in range(args.rounds):
        for side, binary in (("before", args.before), ("after", args.after)):
            print(f"round {r + 1}/{args.rounds}: {side}", file=sys.stderr)
            for name, value in run_once(binary, args.filter).items():
                old = best[side].get(name)
                best[side][name] = value if old is None else min(old, value)

    # The floor rows run the same code in both binaries (raw Boost.Context, hand-written
    # epoll): how far they moved is how far this run's noise alone moves a row.
    floor_ratios = [best["after"][n] / v for n, v in best["before"].items()
                    if n.startswith("floor/") and n in best["after"]]
    noise = max((abs(r - 1) for r in floor_ratios), default=None)

    slower = 0
    print(f"{'row':58} {'before':>12} {'after':>12} {'after/before':>13}")
    for name, before in best["before"].items():
        after = best["after"].get(name)
        if after is None:
            print(f"{name:58} {before:12.1f} {'-':>12}")
            continue
        ratio = after / before
        flag = ""
        if ratio > 1 + args.limit and not name.startswith("floor/"):
            flag = f"  slower by more than {args.limit:.0%}"
            if noise is not None and ratio <= 1 + noise:
                flag += " (within the floor rows' noise)"
            slower += 1
        print(f"{name:58} {before:12.1f} {after:12.1f} {ratio:13.3f}{flag}")
    print("(ns per operation, best of the rounds; bytes for bytes_per_fiber rows)")
    if noise is not None:
        print(f"noise: the floor rows, the same code in both builds, moved by up to {noise:.1%} in this run;"
              " more --rounds narrow it")
    return 1 if slower else 0


if __name__ == "__main__":
    sys.exit(main())
