#!/usr/bin/env python3
"""Instructions per operation of the single-thread rows, two builds side by side.

Builds bench/icount.cpp (this tree's) against BEFORE's and AFTER's headers and
libweft.a (each a source tree with a release build in TREE/build, e.g. a
`git worktree` of an older commit), runs each row under callgrind for 0 and N
operations, and prints (Ir(N) - Ir(0)) / N per row and after/before. Counts are
exact and repeat to the instruction, where timings on a shared VM drift; they
say nothing about cache misses, dependent loads or mispredictions, so a row can
take more time with fewer instructions (compare.py measures time).

usage: icount.py BEFORE AFTER [--filter REGEX] [--n N]
       (e.g. icount.py /tmp/wefd /work/main --filter 'select|channel')
Needs valgrind (apt-get install valgrind).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
# Operations per row: fewer where one costs thousands of instructions.
N_FOR = {"task_group": 50000, "gather_10": 10000, "cancel_blocked": 10000}


def build(tree, out):
    include = os.path.join(tree, "include") if os.path.isdir(os.path.join(tree, "include", "weft")) else tree
    lib = os.path.join(tree, "build", "libweft.a")
    if not os.path.exists(lib):
        sys.exit(f"icount.py: no {lib} (build the tree first: meson setup build --buildtype=release && ninja -C build)")
    subprocess.run(["g++", "-std=c++20", "-O3", "-DNDEBUG", "-pthread", "-DBOOST_CONTEXT_DYN_LINK=1",
                    "-DBOOST_ALL_NO_LIB", "-I", include, os.path.join(HERE, "icount.cpp"), lib,
                    "-lboost_context", "-lssl", "-lcrypto", "-o", out], check=True)


def instructions(binary, row, n):
    r = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", binary, row, str(n)],
                       capture_output=True, text=True)
    m = re.search(r"I\s+refs:\s+([\d,]+)", r.stderr)
    if r.returncode != 0 or not m:
        sys.exit(f"icount.py: {binary} {row} {n} failed:\n{r.stderr[-2000:]}")
    return int(m.group(1).replace(",", ""))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--filter", default=".")
    p.add_argument("--n", type=int, default=100000, help="operations per row (fewer for the dear rows)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bins = [os.path.join(tmp, "before"), os.path.join(tmp, "after")]
        build(args.before, bins[0])
        build(args.after, bins[1])
        rows = subprocess.run([bins[1], "--list"], capture_output=True, text=True, check=True).stdout.split()
        print(f"{'row':<22}{'before':>10}{'after':>10}  after/before   (instructions per operation)")
        for row in rows:
            if not re.search(args.filter, row):
                continue
            n = min(args.n, N_FOR.get(row, args.n))
            per_op = [(instructions(b, row, n) - instructions(b, row, 0)) / n for b in bins]
            print(f"{row:<22}{per_op[0]:>10.1f}{per_op[1]:>10.1f}  {per_op[1] / per_op[0]:>12.3f}", flush=True)


if __name__ == "__main__":
    main()
