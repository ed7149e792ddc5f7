#!/usr/bin/env python3
"""Drives examples/http_server with clients nobody here wrote: curl, wrk, ab, h2load.

The server runs on a kernel-chosen loopback port with one and with two scheduler
threads, serving a temporary directory. curl checks answers byte for byte (files,
HEAD, 404, 405, HTTP/1.0, keep-alive reuse, path traversal); raw sockets send what
curl will not (no Host, garbage, huge headers, HTTP/2.0, a chunked body); wrk, ab
and h2load --h1 load it for a second or two and must see only 2xx answers and no
socket errors. SIGTERM must stop it with exit status 0. Then once more with --tls
and a certificate made here: curl (verifying it) and h2load over HTTPS.
Usage: http_example_test.py HTTP_SERVER
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

TOOLS = ("curl", "wrk", "ab", "h2load")


def run(args, text=True):
    return subprocess.run(args, capture_output=True, text=text, timeout=60)


def curl(*args):
    """curl's body and status code (-w), failing loudly if curl itself fails."""
    r = run(["curl", "-sS", "--max-time", "20", "-w", "\n%{http_code}"] + list(args))
    assert r.returncode == 0, "curl %s failed: %s" % (args, r.stderr)
    body, _, code = r.stdout.rpartition("\n")
    return body, int(code)


def raw(port, data):
    """Sends bytes on a fresh connection, returns everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def status_line(answer):
    return answer.split(b"\r\n", 1)[0].decode()


def check_curl(port, root):
    base = "http://127.0.0.1:%d" % port
    assert curl(base + "/hello") == ("hello\n", 200)
    with open(os.path.join(root, "data.bin"), "rb") as f:
        expected = f.read()
    got = run(["curl", "-sS", "--max-time", "20", "-o", "-", base + "/data.bin"], text=False)
    assert got.returncode == 0 and got.stdout == expected, "data.bin differs"
    # A large file goes out streamed, in pieces, with its length up front.
    for how in (["-I"], ["-sS", "-D", "-", "-o", "/dev/null"]):
        heads = run(["curl", "-sS", "--max-time", "20"] + how + [base + "/data.bin"]).stdout.lower()
        lines = [line.strip() for line in heads.splitlines()]
        assert "content-length: %d" % len(expected) in lines and "chunked" not in heads, heads
    assert curl(base + "/") == ("<h1>index</h1>", 200)
    assert curl(base + "/sub/") == ("sub index", 200)
    assert curl(base + "/sub")[1] == 301
    assert curl("-L", base + "/sub") == ("sub index", 200)
    assert curl(base + "/missing.txt")[1] == 404
    assert curl("--path-as-is", base + "/../etc/passwd")[1] == 400
    assert curl(base + "/%2e%2e/etc/passwd")[1] == 400
    assert curl("-d", "x=1", base + "/hello")[1] == 405
    # Nothing outside DIR, through a symbolic link either; a link inside DIR is fine.
    assert curl(base + "/outside-link/secret.txt")[1] == 404
    assert curl(base + "/inside-link.html") == ("<h1>index</h1>", 200)
    # Only regular files: a FIFO would block the read for good (and, repeated, the
    # whole pool), so it is refused at once, again and again.
    for _ in range(8):
        assert curl(base + "/fifo")[1] == 403
    assert curl(base + "/index.html") == ("<h1>index</h1>", 200)

    head = run(["curl", "-sS", "-I", base + "/hello"])
    assert head.returncode == 0 and "HTTP/1.1 200" in head.stdout, head.stdout
    assert re.search(r"(?im)^content-length: 6\r?$", head.stdout), head.stdout

    old = run(["curl", "-sS", "-0", "-v", base + "/hello"])
    assert old.stdout == "hello\n" and "Connection: close" in old.stderr, old.stderr

    # Two URLs in one curl: the second goes over the first's connection.
    two = run(["curl", "-sS", "-v", base + "/hello", base + "/index.html"])
    assert two.stdout == "hello\n<h1>index</h1>", two.stdout
    assert "Re-using existing connection" in two.stderr, two.stderr


def check_raw(port):
    assert status_line(raw(port, b"GET /hello HTTP/1.1\r\n\r\n")) == "HTTP/1.1 400 Bad Request"
    assert status_line(raw(port, b"NONSENSE\r\n\r\n")) == "HTTP/1.1 400 Bad Request"
    # The absolute form, which a server must accept (RFC 9112 3.2.2).
    absolute = raw(port, b"GET http://127.0.0.1:%d/hello?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % port)
    assert status_line(absolute) == "HTTP/1.1 200 OK" and absolute.endswith(b"hello\n"), absolute
    big = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    assert status_line(raw(port, big)) == "HTTP/1.1 431 Request Header Fields Too Large"
    assert status_line(raw(port, b"GET /hello HTTP/2.0\r\nHost: x\r\n\r\n")) == \
        "HTTP/1.1 505 HTTP Version Not Supported"
    # Pipelined, the second with a chunked body (405: POST), the third closes.
    answer = raw(port, b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"POST /hello HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       b"3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n"
                       b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    statuses = re.findall(rb"HTTP/1.1 (\d+)", answer)
    assert statuses == [b"200", b"405", b"200"], answer


def check_load(port):
    url = "http://127.0.0.1:%d/hello" % port
    wrk = run(["wrk", "-t1", "-c20", "-d2s", url])
    assert wrk.returncode == 0, wrk.stderr
    assert "Non-2xx" not in wrk.stdout and "Socket errors" not in wrk.stdout, wrk.stdout
    assert re.search(r"(\d+) requests in", wrk.stdout) and int(re.search(r"(\d+) requests in", wrk.stdout)
                                                             .group(1)) > 0, wrk.stdout

    ab = run(["ab", "-q", "-k", "-n", "5000", "-c", "20", url])
    assert ab.returncode == 0, ab.stderr
    assert re.search(r"Complete requests:\s+5000", ab.stdout), ab.stdout
    assert re.search(r"Failed requests:\s+0", ab.stdout), ab.stdout
    assert "Non-2xx" not in ab.stdout, ab.stdout

    h2 = run(["h2load", "--h1", "-n", "5000", "-c", "20", url])
    assert h2.returncode == 0, h2.stderr
    assert "5000 succeeded, 0 failed, 0 errored" in h2.stdout, h2.stdout
    assert re.search(r"status codes: 5000 2xx", h2.stdout), h2.stdout


def check(server_bin, root, threads):
    server = subprocess.Popen([server_bin, "--threads", str(threads), "0", root], stdout=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline()
        match = re.search(r":(\d+)\s*$", first)
        assert match, "no listening line: %r" % first
        port = int(match.group(1))
        check_curl(port, root)
        check_raw(port)
        check_load(port)
        server.send_signal(signal.SIGTERM)
        rest = server.stdout.read()
        assert server.wait(timeout=30) == 0, "server exit status %s" % server.returncode
        assert "stopping" in rest, rest
        print("http_server with %d thread(s): curl, raw, wrk, ab, h2load ok" % threads)
    finally:
        if server.poll() is None:
            server.kill()


def check_https(server_bin, root):
    """--tls with a certificate made here: curl (verifying it) and h2load over TLS."""
    if shutil.which("openssl") is None:
        print("missing openssl: HTTPS not checked (./run test installs it)")
        return
    with tempfile.TemporaryDirectory() as keys:  # not under root: the server would serve the key
        check_https_with(server_bin, root, os.path.join(keys, "cert.pem"), os.path.join(keys, "key.pem"))


def check_https_with(server_bin, root, cert, key):
    made = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
    assert made.returncode == 0, made.stderr
    server = subprocess.Popen([server_bin, "--tls", cert, key, "0", root], stdout=subprocess.PIPE, text=True)
    try:
        match = re.search(r":(\d+)\s*$", server.stdout.readline())
        assert match, "no listening line"
        base = "https://localhost:%s" % match.group(1)
        assert curl("--cacert", cert, base + "/hello") == ("hello\n", 200)
        got = run(["curl", "-sS", "--max-time", "20", "--cacert", cert, "-o", "-", base + "/data.bin"], text=False)
        assert got.returncode == 0 and got.stdout == bytes(range(256)) * 4096, got.stderr
        refused = run(["curl", "-sS", "--max-time", "20", base + "/hello"])  # without the certificate
        assert refused.returncode != 0, refused.stdout
        h2 = run(["h2load", "--h1", "-n", "2000", "-c", "10", base + "/hello"])
        assert h2.returncode == 0, h2.stderr
        assert "2000 succeeded, 0 failed, 0 errored" in h2.stdout, h2.stdout
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0, "server exit status %s" % server.returncode
        print("http_server --tls: curl, h2load ok")
    finally:
        if server.poll() is None:
            server.kill()


def main():
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        print("missing %s: ./run test installs them (apt-get install curl wrk apache2-utils nghttp2-client)"
              % " ".join(missing))
        return 77  # meson: skipped
    with tempfile.TemporaryDirectory() as root:
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write("<h1>index</h1>")
        os.mkdir(os.path.join(root, "sub"))
        with open(os.path.join(root, "sub", "index.html"), "w") as f:
            f.write("sub index")
        with open(os.path.join(root, "data.bin"), "wb") as f:
            f.write(bytes(range(256)) * 4096)  # 1 MiB: more than one write
        outside = os.path.join(os.path.dirname(root), os.path.basename(root) + "-outside")
        os.mkdir(outside)
        with open(os.path.join(outside, "secret.txt"), "w") as f:
            f.write("secret")
        os.symlink(outside, os.path.join(root, "outside-link"))
        os.symlink("index.html", os.path.join(root, "inside-link.html"))
        os.mkfifo(os.path.join(root, "fifo"))
        try:
            for threads in (1, 2):
                check(sys.argv[1], root, threads)
            check_https(sys.argv[1], root)
        finally:
            shutil.rmtree(outside)
    return 0


if __name__ == "__main__":
    sys.exit(main())
