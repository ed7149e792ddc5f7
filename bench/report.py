#!/usr/bin/env python3
"""Turns one Google Benchmark JSON run into weft's comparison table (and a PNG).

Every ratio compares rows measured in the same run: weft against the floor (raw
Boost.Context) and against the peer (Boost.Fiber). Rows a filter left out show "-".

usage: report.py RUN.json [--table OUT.txt] [--png OUT.png]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# (weft row, floor row, max ratio to floor, peer row, max ratio to peer)
COMPARISONS = [
    ("weft/yield_pingpong", "floor/context_switch", 1.5, "boost_fiber/yield_pingpong", 0.5),
    ("weft/spawn_join", "floor/context_create_pooled", 3.0, "boost_fiber/spawn_join", 0.33),
    ("weft/sleep_zero", "floor/context_switch", None, None, None),
    ("weft/timers_100k_64k_stacks", None, None, None, None),
    ("weft/timers_100k", "weft/timers_100k_64k_stacks", None, None, None),
    ("weft/channel_pingpong", "floor/context_switch", 4.0, "boost_fiber/channel_pingpong", 0.5),
    ("weft/channel_throughput", None, None, "boost_fiber/channel_throughput", 0.5),
    ("weft/select_2", "floor/context_switch", None, None, None),
    ("weft/mutex_handoff", None, None, "boost_fiber/mutex_handoff", 0.5),
    ("weft/semaphore_handoff", "floor/context_switch", None, None, None),
    ("weft/task_group_spawn_join", "weft/spawn_join", 1.5, None, None),
    ("weft/gather_10", "weft/spawn_join", None, None, None),
    ("weft/cancel_blocked", "weft/spawn_join", None, None, None),
    ("std/async_roundtrip", None, None, None, None),
    ("weft/to_thread", "std/async_roundtrip", 1.0, None, None),
    ("weft/spawn_join_mt/1", None, None, None, None),
    ("weft/spawn_join_mt/2", "weft/spawn_join_mt/1", 0.59, None, None),
    ("weft/xthread_pingpong", "floor/xthread_pingpong", None, "boost_fiber/xthread_pingpong", 0.5),
    ("weft/xthread_send_throughput", None, None, "boost_fiber/xthread_send_throughput", 0.5),
    ("weft/echo/50", "floor/epoll_echo/50", 1.05, None, None),
    ("weft/echo/1000", "floor/epoll_echo/1000", 1.05, None, None),
    ("weft/echo_mt/1000/1", None, None, None, None),
    ("weft/echo_mt/1000/2", "weft/echo_mt/1000/1", 1.0, None, None),
]
# (row, counter, max value, peer row)
COUNTERS = [
    ("weft/idle_fiber_rss", "bytes_per_fiber", 5 * 1024, "boost_fiber/idle_fiber_rss"),
]
TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}


def load(path):
    with open(path) as f:
        data = json.load(f)
    rows = {}
    # With repetitions, a row is its median; rows that compute a "min" statistic
    # (the echo rows: loopback TCP on a shared VM has a long, one-sided tail of
    # host interference) are their best repetition.
    rank = {"min": 3, "median": 2}
    for b in data.get("benchmarks", []):
        kind = b.get("aggregate_name") if b.get("run_type") == "aggregate" else "single"
        if kind not in rank and kind != "single":
            continue
        # Drop the parts Google Benchmark adds for per-row settings.
        name = "/".join(part for part in b.get("run_name", b["name"]).split("/")
                        if part != "real_time" and not re.match(r"(iterations|min_time|repeats|threads):", part))
        if name in rows and rank.get(rows[name]["kind"], 1) >= rank.get(kind, 1):
            continue
        rows[name] = {
            "ns": b["real_time"] * TO_NS[b.get("time_unit", "ns")],
            "counters": {k: v for k, v in b.items() if isinstance(v, (int, float))},
            "kind": kind,
        }
    return data.get("context", {}), rows


def fmt_ns(v):
    return "-" if v is None else (f"{v:,.1f}" if v < 1000 else f"{v:,.0f}")


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def verdict(r, limit):
    if r is None or limit is None:
        return ""
    return "ok" if r <= limit else "MISSED"


def build_table(context, rows):
    def ns(name):
        return rows[name]["ns"] if name in rows else None

    def cell(v, spec):
        width = int("".join(ch for ch in spec.split(".")[0] if ch.isdigit()) or 0)
        return "-".rjust(width) if v is None else format(v, spec)

    lines = [
        f"weft benchmark table ({context.get('date', '')}, {context.get('num_cpus', '?')} cpus); "
        "every ratio is from this one run",
        "floor = raw Boost.Context (context_switch / context_create_pooled), two threads spinning on two "
        "cache lines (xthread_pingpong), hand-written epoll (echo); peer = Boost.Fiber",
        "",
    ]
    head = (f"{'benchmark':<34}{'ns/op':>9}{'floor ns':>10}{'x floor':>9}{'target':>8}"
            f"{'peer ns':>10}{'x peer':>8}{'target':>8}  verdict")
    lines += [head, "-" * len(head)]
    for name in ["floor/context_switch", "floor/context_create_pooled"]:
        lines.append(f"{name:<34}{cell(ns(name), '9.1f')}")
    for weft, floor, floor_max, peer, peer_max in COMPARISONS:
        rf, rp = ratio(ns(weft), ns(floor)), ratio(ns(weft), ns(peer))
        verdicts = " ".join(v for v in (verdict(rf, floor_max), verdict(rp, peer_max)) if v)
        lines.append(
            f"{weft:<34}{cell(ns(weft), '9.1f')}{cell(ns(floor) if floor else None, '10.1f')}"
            f"{cell(rf, '8.2f') + 'x' if rf else '-':>9}{'<=' + str(floor_max) if floor_max else '':>8}"
            f"{cell(ns(peer) if peer else None, '10.1f')}{cell(rp, '7.2f') + 'x' if rp else '-':>8}"
            f"{'<=' + str(peer_max) if peer_max else '':>8}  {verdicts}".rstrip())
    lines.append("")
    for name, counter, limit, peer in COUNTERS:
        v = rows.get(name, {}).get("counters", {}).get(counter)
        pv = rows.get(peer, {}).get("counters", {}).get(counter)
        peer_txt = f", {peer}: {pv:,.0f} B ({v / pv:.2f}x)" if v is not None and pv else ""
        ok = "" if v is None else ("ok" if v <= limit else "MISSED")
        lines.append(f"{name}: {cell(v, ',.0f')} B {counter} (target <= {limit} B){peer_txt}  {ok}")
    return "\n".join(lines) + "\n"


def write_png(rows, path):
    if not shutil.which("gnuplot"):
        print("report: gnuplot not found, no chart written", file=sys.stderr)
        return
    groups = [("switch", "floor/context_switch", "weft/yield_pingpong", "boost_fiber/yield_pingpong"),
              ("spawn+join", "floor/context_create_pooled", "weft/spawn_join", "boost_fiber/spawn_join"),
              ("sleep(0)", None, "weft/sleep_zero", None)]
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as dat:
        for label, floor, weft, peer in groups:
            vals = [rows[n]["ns"] if n and n in rows else 0 for n in (floor, weft, peer)]
            dat.write(f'"{label}" {vals[0]} {vals[1]} {vals[2]}\n')
    script = f"""
set terminal pngcairo size 900,500 noenhanced
set output '{path}'
set title 'weft vs floor (raw Boost.Context) vs Boost.Fiber, ns per operation (lower is better)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [1:*]
set ylabel 'ns / op (log)'
set key top left
plot '{dat.name}' using 2:xtic(1) title 'floor', '' using 3 title 'weft', '' using 4 title 'Boost.Fiber'
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, capture_output=True)
        print(f"report: chart written to {path}", file=sys.stderr)
    except subprocess.CalledProcessError as e:
        print(f"report: gnuplot failed: {e.stderr.strip()}", file=sys.stderr)
    finally:
        os.unlink(dat.name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--table")
    ap.add_argument("--png")
    args = ap.parse_args()
    context, rows = load(args.run)
    table = build_table(context, rows)
    print()
    print(table, end="", flush=True)
    if args.table:
        with open(args.table, "w") as f:
            f.write(table)
    if args.png:
        write_png(rows, args.png)


if __name__ == "__main__":
    main()
