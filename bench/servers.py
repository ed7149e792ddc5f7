#!/usr/bin/env python3
"""weft's servers beside the real ones, driven by the real load generators.

  HTTP:  wrk -t1 -c100 -d5s against examples/http_server's /hello and against nginx
         (one worker, `return 200 "hello\\n"`, access log off, unlimited keep-alive).
  Crawl: bench/crawl (weft::http::client, 100 in flight) fetching 10,000 small files
         from nginx, beside h2load --h1 -c100 fetching the same URLs (the client is
         measured here: the same nginx serves both).
  RESP:  redis-benchmark -q -c 50 -t get,set, with -P 16 and with -P 1, against
         examples/resp_server and against redis-server --save '' --appendonly no.

Method: each server runs pinned to CPU 0 and the load generator to CPU 1 (taskset;
on a one-CPU machine nothing is pinned and the table says so). Runs are paired and
alternate (weft, peer, weft, peer, ...) so that a slow minute of a shared machine
falls on both; the table shows the median of each side, the ratio of the medians,
and the spread (max/min - 1) of each side's runs as the noise.

usage: servers.py BUILD_DIR [--runs N] [--seconds S] [--out FILE]
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


CRAWL_FILES = 10000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc):
    until = time.time() + 10
    while time.time() < until:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not listen on port %d" % port)


class Pinning:
    def __init__(self):
        self.enabled = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None

    def server(self, argv):
        return ["taskset", "-c", "0"] + argv if self.enabled else argv

    def client(self, argv):
        return ["taskset", "-c", "1"] + argv if self.enabled else argv


class Server:
    """A server process on a free port, stopped by PID."""

    def __init__(self, argv_for_port, pin):
        self.port = free_port()
        self.proc = subprocess.Popen(pin.server(argv_for_port(self.port)), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for_port(self.port, self.proc)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wrk_rps(pin, port, seconds):
    out = subprocess.run(pin.client(["wrk", "-t1", "-c100", "-d%ds" % seconds, "http://127.0.0.1:%d/hello" % port]),
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError("wrk saw errors:\n" + out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def redis_rps(pin, port, pipeline, requests):
    out = subprocess.run(pin.client(["redis-benchmark", "-p", str(port), "-q", "-c", "50", "-t", "get,set",
                                     "-P", str(pipeline), "-n", str(requests)]),
                         capture_output=True, text=True, timeout=300).stdout.replace("\r", "\n")
    found = dict(re.findall(r"^(SET|GET): ([\d.]+) requests per second", out, re.M))
    if set(found) != {"SET", "GET"}:
        raise RuntimeError("redis-benchmark:\n" + out)
    return {k: float(v) for k, v in found.items()}


def spread(xs):
    return max(xs) / min(xs) - 1 if min(xs) > 0 else float("nan")


def http_rows(build, pin, runs, seconds, tmp):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    user = "user nobody nogroup;\n" if os.getuid() == 0 else ""

    def nginx_argv(port):
        conf = os.path.join(tmp, "nginx-%d.conf" % port)
        with open(conf, "w") as f:
            f.write("daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n%s"
                    "events { worker_connections 1024; }\n"
                    "http {\n  access_log off;\n  keepalive_requests 1000000000;\n"
                    "  client_body_temp_path %s/body;\n"
                    "  server {\n    listen 127.0.0.1:%d;\n    root %s/www;\n"
                    "    location = /hello { default_type text/plain; return 200 \"hello\\n\"; }\n  }\n}\n"
                    % (tmp, tmp, user, tmp, port, tmp))
        return [nginx, "-p", tmp, "-c", conf, "-e", tmp + "/error.log"]

    weft_argv = lambda port: [os.path.join(build, "examples", "http_server"), str(port)]
    ours, theirs = [], []
    for _ in range(runs):
        for argv, results in ((weft_argv, ours), (nginx_argv, theirs)):
            server = Server(argv, pin)
            try:
                results.append(wrk_rps(pin, server.port, seconds))
            finally:
                server.stop()
    rows = [("http /hello, wrk -c100", ours, theirs, "nginx", 1.0)]

    # The crawler: 10,000 small files from nginx, 100 in flight, beside h2load
    # fetching the same URLs over 100 connections.
    www = os.path.join(tmp, "www")
    os.makedirs(www, exist_ok=True)
    os.chmod(www, 0o755)
    for i in range(CRAWL_FILES):
        with open(os.path.join(www, "f%d" % i), "w") as f:
            f.write("file %d\n" % i + "x" * 100)
        os.chmod(os.path.join(www, "f%d" % i), 0o644)
    server = Server(nginx_argv, pin)
    try:
        prefix = "http://127.0.0.1:%d/f" % server.port
        urls = os.path.join(tmp, "urls.txt")
        with open(urls, "w") as f:
            f.write("".join("%s%d\n" % (prefix, i) for i in range(CRAWL_FILES)))
        crawler, reference = [], []
        for _ in range(runs):
            out = subprocess.run(pin.client([os.path.join(build, "bench", "crawl"), prefix, str(CRAWL_FILES), "100"]),
                                 capture_output=True, text=True, timeout=300)
            if out.returncode != 0:
                raise RuntimeError("crawl: " + out.stdout + out.stderr)
            crawler.append(float(re.search(r"([\d.]+) requests/s", out.stdout).group(1)))
            out = subprocess.run(pin.client(["h2load", "--h1", "-n", str(CRAWL_FILES), "-c", "100", "-i", urls]),
                                 capture_output=True, text=True, timeout=300).stdout
            if "%d succeeded, 0 failed" % CRAWL_FILES not in out:
                raise RuntimeError("h2load:\n" + out)
            reference.append(float(re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s", out).group(1)))
    finally:
        server.stop()
    rows.append(("crawl 10k files from nginx, 100 out", crawler, reference, "h2load --h1", None))
    return rows


def resp_rows(build, pin, runs, tmp):
    redis_argv = lambda port: ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", tmp, "--daemonize", "no"]
    weft_argv = lambda port: [os.path.join(build, "examples", "resp_server"), str(port)]
    rows = []
    for pipeline, requests in ((16, 2000000), (1, 200000)):
        ours = {"SET": [], "GET": []}
        theirs = {"SET": [], "GET": []}
        for _ in range(runs):
            for argv, results in ((weft_argv, ours), (redis_argv, theirs)):
                server = Server(argv, pin)
                try:
                    for k, v in redis_rps(pin, server.port, pipeline, requests).items():
                        results[k].append(v)
                finally:
                    server.stop()
        for cmd in ("SET", "GET"):
            rows.append(("resp %s -P %d, redis-benchmark -c50" % (cmd, pipeline), ours[cmd], theirs[cmd],
                         "redis-server", 1.0))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--out")
    args = ap.parse_args()
    missing = [t for t in ("wrk", "nginx", "redis-server", "redis-benchmark")
               if shutil.which(t) is None and not os.path.exists("/usr/sbin/" + t)]
    if missing:
        print("servers.py: missing %s (./run bench installs them)" % " ".join(missing), file=sys.stderr)
        return 1
    pin = Pinning()
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        rows = http_rows(args.build, pin, args.runs, args.seconds, tmp) + resp_rows(args.build, pin, args.runs, tmp)
    lines = ["weft's servers beside the real ones: requests/s, median of %d paired alternating runs; %s"
             % (args.runs, "server on CPU 0, load generator on CPU 1" if pin.enabled else "not pinned (one CPU)"),
             "%-36s %10s %10s %6s %6s %8s %8s  %s" % ("", "weft", "peer", "ratio", "target", "noise(w)", "noise(p)",
                                                     "peer"),
             "%-36s %10s %10s" % ("", "req/s", "req/s")]
    for name, ours, theirs, peer, target in rows:
        a, b = statistics.median(ours), statistics.median(theirs)
        lines.append("%-36s %10.0f %10.0f %5.2fx %6s %7.0f%% %7.0f%%  %s" % (
            name, a, b, a / b, ">=%.1f" % target if target else "-", 100 * spread(ours), 100 * spread(theirs), peer))
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
