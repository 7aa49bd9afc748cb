"""Run a program in a network namespace of its own, reaching out only through given ports.

Some operators serve on every interface and offer no flag to choose one (CloudNativePG's
manager serves its admission webhooks on `:<port>`). Inside a private network namespace
"every interface" is that namespace's own loopback, which nothing outside can reach. The
ports named with `--forward` (the kube-apiserver's) are listened on at 127.0.0.1 inside
the namespace and relayed to the same port on the machine's loopback, so the program's
kubeconfig works unchanged.

    python -m lastack.cluster.private_net --forward 6443 -- <program> <args>...

The relay lives exactly as long as the program; SIGTERM/SIGINT are passed on to it and its
exit code is ours. Creating a network namespace needs CAP_SYS_ADMIN (`available()`).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import threading

CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
_LIBC = ctypes.CDLL(None, use_errno=True)


class PrivateNetError(RuntimeError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise PrivateNetError(f"{what} failed: {os.strerror(errno)}")


def available() -> str | None:
    """None when this process may create a network namespace, else why not."""
    if sys.platform != "linux":
        return "network namespaces are a Linux feature"
    if os.geteuid() != 0:
        return "creating a network namespace needs root (CAP_SYS_ADMIN)"
    return None


def _loopback_up() -> None:
    # A new namespace's `lo` is down; bring it up without depending on iproute2.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def _listeners_in_new_namespace(ports: list[int]) -> tuple[int, list[socket.socket]]:
    """Create a network namespace, listen on 127.0.0.1:<port> in it, and come back.

    Returns a descriptor of the new namespace (for the program) and the listeners (which
    keep serving in the namespace they were made in)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    _check(_LIBC.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    try:
        new = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        _loopback_up()
        listeners = []
        for port in ports:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", port))
            listener.listen(64)
            listeners.append(listener)
    finally:
        _check(_LIBC.setns(own, CLONE_NEWNET), "setns back to the machine's network")
        os.close(own)
    return new, listeners


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        # Either side ending ends both; each socket is the source of one pump, closed once.
        for sock in (sink, source):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        source.close()


def _relay(listener: socket.socket, port: int) -> None:
    while True:
        try:
            inside, _ = listener.accept()
        except OSError:
            return
        try:
            outside = socket.create_connection(("127.0.0.1", port), timeout=10)
            outside.settimeout(None)
        except OSError:
            inside.close()
            continue
        for a, b in ((inside, outside), (outside, inside)):
            threading.Thread(target=_pump, args=(a, b), daemon=True).start()


def run(ports: list[int], argv: list[str]) -> int:
    reason = available()
    if reason:
        raise PrivateNetError(reason)
    namespace, listeners = _listeners_in_new_namespace(ports)
    # The program enters the namespace before exec; no relay thread exists yet, so the
    # fork is safe.
    child = subprocess.Popen(
        argv, preexec_fn=lambda: _check(_LIBC.setns(namespace, CLONE_NEWNET), "setns"))
    os.close(namespace)
    for listener, port in zip(listeners, ports, strict=True):
        threading.Thread(target=_relay, args=(listener, port), daemon=True).start()

    def pass_on(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    code = child.wait()
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m lastack.cluster.private_net")
    parser.add_argument("--forward", type=int, action="append", default=[],
                        help="a loopback port to relay into the namespace (repeatable)")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    options = parser.parse_args(args)
    argv = options.argv[1:] if options.argv[:1] == ["--"] else options.argv
    if not argv:
        parser.error("no program given")
    try:
        return run(options.forward, argv)
    except PrivateNetError as error:
        print(f"private_net: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
