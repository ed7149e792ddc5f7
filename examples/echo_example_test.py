#!/usr/bin/env python3
"""Checks examples/echo_server and examples/echo_client as programs.

echo_server on a kernel-chosen port, with one scheduler thread and with two; echo_client sends lines through it; a second
connection stays open while SIGTERM arrives: the server must close it after its grace
period and exit 0. Usage: echo_example_test.py ECHO_SERVER ECHO_CLIENT
"""
import re
import signal
import socket
import subprocess
import sys


def check(server_bin, client_bin, threads):
    server = subprocess.Popen([server_bin, "--threads", str(threads), "0"], stdout=subprocess.PIPE, text=True)
    try:
        first = server.stdout.readline()
        match = re.search(r":(\d+)\s*$", first)
        assert match, "no listening line: %r" % first
        port = match.group(1)

        assert ("%d thread" % threads) in first, first

        # Several connections: with several threads the kernel spreads them over the
        # schedulers' listeners (SO_REUSEPORT).
        lines = "".join("line %d %s\n" % (i, "x" * i) for i in range(200))
        for _ in range(4):
            client = subprocess.run([client_bin, "127.0.0.1", port], input=lines, capture_output=True,
                                    text=True, timeout=60)
            assert client.returncode == 0, "client failed: %s" % client.stderr
            assert client.stdout == lines, "echo differs"

        bad = subprocess.run([client_bin, "127.0.0.1", "1"], input="x\n", capture_output=True,
                             text=True, timeout=60)
        assert bad.returncode == 1 and "refused" in bad.stderr, bad.stderr

        idle = socket.create_connection(("127.0.0.1", int(port)), timeout=30)
        idle.sendall(b"ping")
        assert idle.recv(4) == b"ping"
        server.send_signal(signal.SIGTERM)
        rest = server.stdout.read()
        assert server.wait(timeout=30) == 0, "server exit status %s" % server.returncode
        assert "stopping" in rest and "cancelled a connection still open" in rest, rest
        assert idle.recv(1) == b"", "idle connection not closed"
        print("echo examples (%d thread(s)): ok" % threads)
    finally:
        if server.poll() is None:
            server.kill()


if __name__ == "__main__":
    for n in (1, 2):
        check(sys.argv[1], sys.argv[2], n)
