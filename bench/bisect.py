#!/usr/bin/env python3
"""Which commit made a benchmark row slower: the suite built at several commits.

  python3 bench/bisect.py --filter 'weft/(channel_throughput|gather_10)$' efd0179 9bc1d89 HEAD
  python3 bench/bisect.py --filter 'weft/gather_10$' --every 16 efd0179..HEAD

Each commit is checked out in a scratch clone of this repository (the working tree
is not touched), `bench/weft_bench` is built in release, and every matching row is
run --runs times; the table shows the best of them, one line per commit, in the
order given. A range A..B takes every --every-th commit of it, plus both ends.

Method notes (bench/NOTES.md has the story that made this a tool): rows of this VM
move by 15-20% between runs of one binary in a noisy minute, so a step shows only
when it is larger than that, or when a row moves while its neighbours do not;
confirm a suspect with bench/compare.py, which alternates two binaries. Keep
everything else off the CPU while it runs. Per-change A/B runs hid a 1.3x drift
for two sessions: compare against an old base now and then, not only against the
last commit.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def git(repo, *args):
    return subprocess.run(["git", "-C", repo] + list(args), check=True, capture_output=True, text=True).stdout


def commits_of(repo, spec, every):
    if ".." not in spec:
        return [git(repo, "rev-parse", "--short", spec).strip()]
    start, end = spec.split("..", 1)
    inner = git(repo, "rev-list", "--reverse", "--abbrev-commit", spec).split()
    picked = [c for i, c in enumerate(inner, 1) if i % every == 0]
    first = git(repo, "rev-parse", "--short", start).strip()
    last = git(repo, "rev-parse", "--short", end or "HEAD").strip()
    return [first] + [c for c in picked if c != last] + [last]


def build(clone, commit):
    git(clone, "checkout", "-q", commit)
    build_dir = os.path.join(clone, "build")
    for attempt in range(2):  # an old build dir may not reconfigure: start afresh once
        if not os.path.isdir(build_dir):
            subprocess.run(["meson", "setup", build_dir, "--buildtype=release"], cwd=clone, check=True,
                           capture_output=True)
        done = subprocess.run(["ninja", "-C", build_dir, "bench/weft_bench"], capture_output=True, text=True)
        if done.returncode == 0:
            return os.path.join(build_dir, "bench", "weft_bench")
        shutil.rmtree(build_dir)
    raise RuntimeError("%s does not build:\n%s" % (commit, done.stdout[-2000:]))


def best_rows(binary, pattern, runs):
    best = {}
    for _ in range(runs):
        out = subprocess.run([binary, "--benchmark_filter=" + pattern], capture_output=True, text=True).stdout
        for name, ns in re.findall(r"^(\S+)\s+([\d.]+) ns", out, re.M):
            best[name] = min(best.get(name, float("inf")), float(ns))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("commits", nargs="+", help="commits, or ranges A..B")
    ap.add_argument("--filter", required=True, help="benchmark filter (a regex over row names)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--every", type=int, default=16, help="for a range: every Nth commit")
    args = ap.parse_args()
    repo = git(os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--show-toplevel").strip()
    commits = [c for spec in args.commits for c in commits_of(repo, spec, args.every)]
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        clone = os.path.join(tmp, "weft")
        subprocess.run(["git", "clone", "-q", repo, clone], check=True)
        for commit in commits:
            rows = best_rows(build(clone, commit), args.filter, args.runs)
            table.append((commit, rows))
            print("%s %s" % (commit, " ".join("%s=%.1f" % kv for kv in sorted(rows.items()))), file=sys.stderr)
    names = sorted({name for _, rows in table for name in rows})
    print("%-10s" % "commit" + "".join("%16s" % n.split("/")[-1][:15] for n in names))
    for commit, rows in table:
        print("%-10s" % commit + "".join("%16s" % ("%.1f" % rows[n] if n in rows else "-") for n in names))
    print("(ns per operation, best of %d runs of each row)" % args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
