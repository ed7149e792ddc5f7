#!/usr/bin/env python3
"""Checks examples/resp_server against a real redis-server, byte for byte.

Both servers start on free loopback ports (redis-server with --save '' and
--appendonly no, in a temporary directory, stopped by PID). The same requests go
to each, on one connection in order, and every reply must be identical: plain
commands, wrong arities, bad integers, overflow, expiry options, unknown commands,
inline requests, pipelines, and protocol errors (answered, then the connection
closes). Then redis-cli runs each command against resp_server, and
redis-benchmark -P 16 must finish with no errors. Skipped if redis-server,
redis-cli or redis-benchmark is missing (./run test installs them).
Usage: resp_example_test.py RESP_SERVER
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, proc):
    until = time.time() + 10
    while time.time() < until:
        assert proc.poll() is None, "server exited with %s" % proc.returncode
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("server did not listen on %d" % port)


def command(*args):
    """A request as redis-cli sends it: an array of bulk strings."""
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Connection:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line + b"\r\n"

    def reply(self):
        """One whole RESP2 reply, as raw bytes."""
        first = self.line()
        if first[:1] == b"$":
            n = int(first[1:-2])
            if n < 0:
                return first
            while len(self.buf) < n + 2:
                self.fill()
            data, self.buf = self.buf[:n + 2], self.buf[n + 2:]
            return first + data
        if first[:1] == b"*":
            return first + b"".join(self.reply() for _ in range(max(0, int(first[1:-2]))))
        return first

    def rest_until_close(self):
        """Whatever else comes before the server closes (must come within 10 s)."""
        try:
            while True:
                self.fill()
        except EOFError:
            out, self.buf = self.buf, b""
            return out

    def close(self):
        self.sock.close()


def exchange(port, steps):
    """steps: (request bytes, number of replies, how to compare); returns the replies."""
    conn = Connection(port)
    replies = []
    for request, count, mode in steps:
        conn.sock.sendall(request)
        if mode == "close":
            got = [conn.reply() for _ in range(count)]
            replies.append((got, conn.rest_until_close()))
            break
        for _ in range(count):
            r = conn.reply()
            if mode == "unordered":  # KEYS: the order is the hash table's
                first, _, items = r.partition(b"\r\n")
                r = first + b"\r\n" + b"".join(sorted(re.findall(rb"\$\d+\r\n[^\r]*\r\n", items)))
            if mode == "ttl":  # a remaining time: equal up to the time between the two runs
                n = int(r[1:-2])
                r = b":%d\r\n" % ((n + 500) // 1000 if n > 1000 else n)
            replies.append(r)
    conn.close()
    return replies


C = command
BIG_MSET = C("MSET", *[x for i in range(300) for x in ("m%d" % i, "value-%d" % i)])
SCRIPT = [
    (C("PING"), 1, ""), (C("ping", "hello"), 1, ""), (C("PING", "a", "b"), 1, ""),
    (C("ECHO", "x y"), 1, ""), (C("ECHO"), 1, ""), (C("GeT", "missing"), 1, ""),
    (C("SET", "k", "v"), 1, ""), (C("GET", "k"), 1, ""), (C("SET", "k", "v2", "NX"), 1, ""),
    (C("SET", "k", "v3", "xx"), 1, ""), (C("GET", "k"), 1, ""), (C("SET", "new", "v", "XX"), 1, ""),
    (C("SET", "k", "v", "NX", "XX"), 1, ""), (C("SET", "k", "v", "EX"), 1, ""), (C("SET", "k", "v", "FOO"), 1, ""),
    (C("SET", "k", "v", "EX", "0"), 1, ""), (C("SET", "k", "v", "EX", "-5"), 1, ""),
    (C("SET", "k", "v", "EX", "abc"), 1, ""), (C("SET", "k", "v", "EX", "9223372036854775807"), 1, ""),
    (C("SET", "k", "v", "PX", "9223372036854775807"), 1, ""), (C("SET", "k", "v", "PX", "10", "KEEPTTL"), 1, ""),
    (C("SET", "k", "v", "EX", "10", "PX", "10"), 1, ""), (C("SET", "k", "v4", "EX", "100"), 1, ""),
    (C("TTL", "k"), 1, ""), (C("PTTL", "k"), 1, "ttl"), (C("SET", "k", "v5", "KEEPTTL"), 1, ""), (C("TTL", "k"), 1, ""),
    (C("SET", "k", "v6", "GET"), 1, ""), (C("TTL", "k"), 1, ""), (C("SET", "nothing", "x", "GET"), 1, ""),
    (C("SET", "k", "v7", "NX", "GET"), 1, ""), (C("SET"), 1, ""), (C("SET", "k"), 1, ""),
    (C("DEL", "k", "nothing", "k"), 1, ""), (C("EXISTS", "k", "new", "new"), 1, ""), (C("DEL"), 1, ""),
    (C("INCR", "n"), 1, ""), (C("INCR", "n"), 1, ""), (C("DECR", "n"), 1, ""), (C("DECR", "m"), 1, ""),
    (C("SET", "s", "abc"), 1, ""), (C("INCR", "s"), 1, ""), (C("SET", "z", "01"), 1, ""), (C("INCR", "z"), 1, ""),
    (C("SET", "sp", " 1"), 1, ""), (C("INCR", "sp"), 1, ""), (C("SET", "mz", "-0"), 1, ""), (C("DECR", "mz"), 1, ""),
    (C("SET", "big", "9223372036854775807"), 1, ""), (C("INCR", "big"), 1, ""), (C("DECR", "big"), 1, ""),
    (C("SET", "neg", "-9223372036854775808"), 1, ""), (C("DECR", "neg"), 1, ""), (C("INCR", "neg"), 1, ""),
    (C("SET", "huge", "92233720368547758070"), 1, ""), (C("INCR", "huge"), 1, ""), (C("INCR", "a", "b"), 1, ""),
    (C("EXPIRE", "missing", "10"), 1, ""), (C("SET", "e", "1"), 1, ""), (C("EXPIRE", "e", "100"), 1, ""),
    (C("TTL", "e"), 1, ""), (C("EXPIRE", "e", "100", "NX"), 1, ""), (C("EXPIRE", "e", "50", "GT"), 1, ""),
    (C("EXPIRE", "e", "200", "gt"), 1, ""), (C("TTL", "e"), 1, ""), (C("EXPIRE", "e", "10", "LT"), 1, ""),
    (C("TTL", "e"), 1, ""), (C("EXPIRE", "e", "10", "NX", "XX"), 1, ""), (C("EXPIRE", "e", "10", "GT", "LT"), 1, ""),
    (C("EXPIRE", "e", "10", "FOO"), 1, ""), (C("EXPIRE", "e", "abc"), 1, ""),
    (C("EXPIRE", "e", "10", b"foo\x00bar"), 1, ""), (C("EXPIRE", "e", "10", b"foo\r\n"), 1, ""),
    (C("EXPIRE", "e", "9223372036854775807"), 1, ""), (C("PEXPIRE", "e", "9223372036854775807"), 1, ""),
    (C("EXPIRE", "e"), 1, ""), (C("PEXPIRE", "e", "100000"), 1, ""), (C("PTTL", "e"), 1, "ttl"),
    (C("PEXPIRE", "e", "-1"), 1, ""), (C("GET", "e"), 1, ""), (C("TTL", "e"), 1, ""), (C("PTTL", "e"), 1, ""),
    (C("SET", "p", "v"), 1, ""), (C("TTL", "p"), 1, ""), (C("PTTL", "p"), 1, ""), (C("TTL"), 1, ""),
    (C("MSET", "a", "1", "b", "2"), 1, ""), (C("MSET", "a"), 1, ""), (C("MSET", "a", "1", "b"), 1, ""),
    (C("MGET", "a", "b", "c", "s"), 1, ""), (C("MGET"), 1, ""),
    (C("MSET", "hello", "1", "hallo", "2", "hxllo", "3", "h*llo", "4", "h[a]llo", "5"), 1, ""),
    (C("KEYS", "h?llo"), 1, "unordered"), (C("KEYS", "h[ae]llo"), 1, "unordered"), (C("KEYS", "h[^e]llo"), 1, "unordered"),
    (C("KEYS", "h[a-b]llo"), 1, "unordered"), (C("KEYS", "h\\*llo"), 1, "unordered"), (C("KEYS", "*"), 1, "unordered"),
    (C("KEYS", "h*o"), 1, "unordered"), (C("KEYS", "nomatch*"), 1, ""), (C("KEYS"), 1, ""),
    # Patterns nested past redis's cap of 1,000 '*' levels do not match, even where
    # a match exists; 30,000 stars once overflowed the server's stack.
    (C("SET", "a" * 2000, "deep"), 1, ""), (C("KEYS", "*a" * 1500), 1, ""), (C("KEYS", "*a" * 900), 1, ""),
    (C("KEYS", "*a" * 30000 + "b"), 1, ""), (C("DEL", "a" * 2000), 1, ""),
    (C("FOO"), 1, ""), (C("foo", "a", "b c"), 1, ""), (C("foo", "x" * 200, "y"), 1, ""),
    (C("foo", "a" * 100, "b" * 100, "c"), 1, ""), (C("x" * 300), 1, ""), (C("foo", "new\r\nline"), 1, ""),
    (C("CONFIG", "GET", "save"), 1, ""), (C("CONFIG", "GET", "appendonly"), 1, ""), (C("CONFIG"), 1, ""),
    (C("CONFIG", "GET"), 1, ""), (C("CONFIG", "FOO"), 1, ""),
    # Names without regard to case: as asked without glob characters, redis's own
    # with them.
    (C("CONFIG", "GET", "SAVE"), 1, ""), (C("CONFIG", "GET", "SAV?"), 1, ""), (C("CONFIG", "GET", "APPENDONL?"), 1, ""),
    # "*" alone lists the empty key too (redis does not run its matcher for it).
    (C("SET", "", "empty"), 1, ""), (C("KEYS", "*"), 1, "unordered"), (C("DEL", ""), 1, ""),
    (b"PING\r\n", 1, ""), (b"ECHO   spaced\r\n", 1, ""), (b"SET 'a b' \"c\\x41\\n\"\r\n", 1, ""),
    (b"GET \"a b\"\n", 1, ""), (b"\r\n", 0, ""), (b"*0\r\n", 0, ""), (b"*-1\r\n", 0, ""),
    (b"PING\r\nPING x\r\n" + C("GET", "a") + C("INCR", "a"), 4, ""),
    (C("GET", "a")[:7], 0, ""), (C("GET", "a")[7:], 1, ""),  # one command split across writes
    (C("SET", "bin", b"\x00\x01\r\n\xff"), 1, ""), (C("GET", "bin"), 1, ""),
    # One array command in three writes, split inside a "$" line and inside a bulk:
    # the server resumes where it stopped (parse_progress).
    (BIG_MSET[:1000], 0, ""), (BIG_MSET[1000:2003], 0, ""), (BIG_MSET[2003:], 1, ""),
    (C("GET", "m0"), 1, ""), (C("GET", "m299"), 1, ""),
]

PROTOCOL_ERRORS = [
    [(b"*abc\r\n", 1, "close")],
    [(b"*1\r\n:5\r\n", 1, "close")],
    [(b"*1\r\n$-5\r\n", 1, "close")],
    [(b"*1\r\n$999999999999\r\n", 1, "close")],
    [(b"*1\r\n\r\n", 1, "close")],
    [(b"*3000000000\r\n", 1, "close")],
    [(b"ECHO \"unbalanced\r\n", 1, "close")],
    [(b"ECHO \"closed\"x\r\n", 1, "close")],
    [(b"a" * 70000, 1, "close")],
    [(b"*1\r\n" + b"$" * 70000, 1, "close")],
    # A NUL before a line's end hides the end from redis-server (strchr): it waits
    # for more, until the line is too long.
    [(b"PING\x00\r\n" + b"a" * 70000, 1, "close")],
    [(b"*1\x00\r\n" + b"a" * 70000, 1, "close")],
    [(b"*1\r\n$4\x00\r\n" + b"a" * 70000, 1, "close")],
    [(C("PING") + b"*x\r\n" + C("PING"), 2, "close")],
    [(C("QUIT") + C("PING"), 1, "close")],
    [(C("SET", "q", "1") + b"QUIT\r\n", 2, "close")],
]


def compare(ours, theirs):
    failures = 0
    for steps in [SCRIPT] + PROTOCOL_ERRORS:
        a, b = exchange(ours, steps), exchange(theirs, steps)
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                failures += 1
                print("DIFFERS for %r:\n  resp_server:  %r\n  redis-server: %r" % (steps[min(i, len(steps) - 1)][0][:80], x, y))
        assert len(a) == len(b), (a, b)
    assert failures == 0, "%d replies differ from redis-server's" % failures
    print("%d requests: every reply identical to redis-server's" % (len(SCRIPT) + len(PROTOCOL_ERRORS)))


def check_clients(port):
    def cli(*args):
        r = subprocess.run(["redis-cli", "-p", str(port)] + list(args), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return r.stdout[:-1] if r.stdout.endswith("\n") else r.stdout
    assert cli("PING") == "PONG"
    assert cli("SET", "greeting", "hello world") == "OK"
    assert cli("GET", "greeting") == "hello world"
    assert cli("SET", "greeting", "x", "NX") == ""
    assert cli("INCR", "counter") == "1" and cli("DECR", "counter") == "0"
    assert cli("MSET", "k1", "a", "k2", "b") == "OK"
    assert cli("MGET", "k1", "k2", "k3").split("\n") == ["a", "b", ""]
    assert cli("EXPIRE", "k1", "100") == "1" and cli("TTL", "k1") == "100"
    assert 99000 < int(cli("PTTL", "k1")) <= 100000
    assert sorted(cli("KEYS", "k?").split("\n")) == ["k1", "k2"]
    assert cli("EXISTS", "k1", "k2", "nope") == "2" and cli("DEL", "k1", "k2") == "2"
    assert cli("ECHO", "echoed") == "echoed"
    assert "unknown command" in cli("NOSUCH")
    assert cli("QUIT") == "OK"

    r = subprocess.run(["redis-benchmark", "-p", str(port), "-q", "-n", "20000", "-P", "16", "-c", "20",
                        "-t", "ping,set,get,incr,mset"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.replace("\r", "\n").split("\n") if "requests per second" in l]
    assert len(lines) >= 5, r.stdout
    assert "ERR" not in r.stdout and "rror" not in r.stderr, (r.stdout, r.stderr)
    print("redis-cli and redis-benchmark: ok\n" + "\n".join(lines))


def main():
    missing = [t for t in ("redis-server", "redis-cli", "redis-benchmark") if shutil.which(t) is None]
    if missing:
        print("missing %s: ./run test installs them (apt-get install redis-server redis-tools)" % " ".join(missing))
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        redis_port = free_port()
        redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no", "--dir", tmp, "--daemonize", "no"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ours = subprocess.Popen([sys.argv[1], "0"], stdout=subprocess.PIPE, text=True)
        try:
            first = ours.stdout.readline()
            match = re.search(r":(\d+)\s*$", first)
            assert match, "no listening line: %r" % first
            port = int(match.group(1))
            wait_for_port(redis_port, redis)
            compare(port, redis_port)
            check_clients(port)
            ours.send_signal(signal.SIGTERM)
            assert ours.wait(timeout=30) == 0, "resp_server exit status %s" % ours.returncode
        finally:
            for p in (ours, redis):
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
