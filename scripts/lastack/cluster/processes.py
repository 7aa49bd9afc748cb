"""The control plane's processes: each in its own session, bounded by `timeout`, stopped
by its recorded process-group id (pids are reused: only ours are signalled)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path

from lastack import polling
from lastack.cluster.state import ClusterError, Process, log

STOP_GRACE_SECONDS = 15.0


# Processes this interpreter started: their Popen answers "alive?" exactly (and reaps).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def spawn(name: str, argv: Sequence[str], workdir: Path, ttl: int,
          env: dict[str, str] | None = None, cwd: Path | None = None) -> Process:
    log_path = workdir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    timeout = shutil.which("timeout")
    # `timeout` bounds each server's life even if nobody runs `down`.
    cmd = ([timeout, "--kill-after=10", str(ttl)] if timeout else []) + list(argv)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                cwd=cwd or workdir, env=env, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    return Process(name=name, pid=proc.pid, binary=str(argv[0]), log=str(log_path))


def is_ours(process: Process) -> bool:
    """The pid is alive and still runs our binary (pids are reused)."""
    child = _CHILDREN.get(process.pid)
    if child is not None:
        # /proc/<pid>/cmdline can be empty for an instant right after exec: trust Popen.
        return child.poll() is None
    try:
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{process.pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return process.binary.encode() in cmdline


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal_group(process: Process, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _wait_gone(processes: list[Process], seconds: float) -> list[Process]:
    """Wait until the groups are gone; returns those still alive after `seconds`."""
    alive = list(processes)

    def gone() -> polling.Probe:
        nonlocal alive
        for process in alive:
            child = _CHILDREN.get(process.pid)
            if child is not None:
                child.poll()  # reaps our own child
            else:
                _reap(process.pid)
        alive = [p for p in alive if _group_alive(p.pid)]
        return polling.Probe(done=not alive)

    with suppress(polling.WaitTimeout):
        polling.poll("the process groups gone", gone, seconds, interval=0.1)
    return alive


def stop_processes(processes: list[Process], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process groups we started (by their recorded ids), SIGKILL the ones
    still there after `grace` seconds."""
    ours = [p for p in processes if is_ours(p)]
    for process in ours:
        _signal_group(process, signal.SIGTERM)
    stubborn = _wait_gone(ours, grace)
    for process in stubborn:
        log(f"{process.name} (pid {process.pid}) ignored SIGTERM for {grace:.0f} s: SIGKILL")
        _signal_group(process, signal.SIGKILL)
    _wait_gone(stubborn, 5)


def stop_process(process: Process, grace: float = STOP_GRACE_SECONDS) -> None:
    stop_processes([process], grace)


def tail(path: str, lines: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until(what: str, check: Callable[[], bool], process: Process | None,
               timeout: float, started: float) -> None:
    """Poll `check` until true; fail at the deadline or as soon as `process` exits."""
    def ready() -> polling.Probe:
        if check():
            return polling.Probe(done=True)
        if process is not None and not is_ours(process):
            return polling.Probe(failure="exited")
        return polling.Probe(state="not ready")

    try:
        polling.poll(what, ready, timeout, interval=0.3)
    except polling.WaitFailed:
        raise ClusterError(f"{process.name} exited while waiting for {what}; "
                           f"last log lines ({process.log}):\n{tail(process.log)}") from None
    except polling.WaitTimeout:
        lines = f"; last log lines ({process.log}):\n{tail(process.log)}" if process else ""
        raise ClusterError(f"{what} not ready after {timeout:.0f} s{lines}") from None
    log(f"{what} ready ({time.monotonic() - started:.1f} s)")
