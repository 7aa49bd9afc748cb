"""A program run by `private_net` reaches the machine only through the forwarded ports, and
what it serves on every interface is reachable from nowhere outside its namespace."""

from __future__ import annotations

import http.server
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from lastack.cluster import private_net
from lastack.net import free_port

INSIDE = """
import socket, sys, time, urllib.request
print(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=5).status, flush=True)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[2])))  # every interface of its namespace
server.listen()
print("listening", flush=True)
time.sleep(20)
"""


@pytest.fixture
def loopback_http() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_only_forwarded_ports_cross_the_namespace(loopback_http: int) -> None:
    reason = private_net.available()
    if reason:
        pytest.skip(f"cannot create a network namespace here: {reason}; run as root")
    inner_port = free_port()
    argv = [sys.executable, "-m", "lastack.cluster.private_net", f"--forward={loopback_http}", "--",
            sys.executable, "-c", INSIDE, str(loopback_http), str(inner_port)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "200"  # the forwarded port answers inside
        assert proc.stdout.readline().strip() == "listening"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", inner_port), timeout=2).close()
        proc.terminate()  # passed on to the program: its exit is the wrapper's
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.returncode == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
