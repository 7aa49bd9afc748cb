"""Start a server process on loopback, wait for it with a bound, and stop exactly it."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from lastack import polling


def pinned_venv_installed(venv: Path, requirements: Sequence[str], entry: Path) -> bool:
    """True when `venv` holds exactly `requirements` (stamped at install) and `entry`."""
    stamp = venv / ".la-stack-requirements"
    return entry.exists() and stamp.exists() and stamp.read_text() == "\n".join(requirements) + "\n"


def install_pinned_venv(venv: Path, requirements: Sequence[str], what: str) -> None:
    """Create `venv` and pip-install the pinned `requirements` into it, then stamp it."""
    python = venv / "bin" / "python"
    if not python.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         *requirements], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ServiceError(f"pip could not install {what}:\n{result.stderr[-3000:]}")
    stamp = venv / ".la-stack-requirements"
    stamp.unlink(missing_ok=True)  # a new file: a hard-linked copy of the venv keeps its own
    stamp.write_text("\n".join(requirements) + "\n")


def ensure_pinned_venv(venv: Path, requirements: Sequence[str], what: str, entry: Path,
                       log: Callable[[str], object], took: str = "") -> bool:
    """Install `requirements` into `venv` unless it already holds exactly them (and `entry`);
    True when it installed them now."""
    if pinned_venv_installed(venv, requirements, entry):
        return False
    log(f"[services] installing {' '.join(requirements)} into {venv}{took}")
    install_pinned_venv(venv, requirements, what)
    return True


def venv_package_versions(python: Path, *names: str) -> dict[str, str]:
    """The installed versions of `names` in the venv of `python`."""
    code = (
        "import json, sys\nfrom importlib.metadata import version\n"
        "print(json.dumps({n: version(n) for n in sys.argv[1:]}))"
    )
    result = subprocess.run(
        [str(python), "-c", code, *names], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


class LoopbackServer:
    """The lifecycle the loopback services share: `with Server(...) as s:` starts it, and
    leaving the block stops the process and removes its working directory. Subclasses are
    dataclasses with `_process` and `_workdir` fields and their own `start()`."""

    _process: ManagedProcess | None
    _workdir: Path | None

    def start(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()  # what a failed start left behind: its process, its directory
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    @property
    def log_file(self) -> Path | None:
        return self._process.log_file if self._process else None

    @property
    def host(self) -> str:
        """Every loopback server binds here only."""
        return "127.0.0.1"

    def log_tail(self, lines: int = 40) -> str:
        return tail(self._process.log_file, lines) if self._process else "(not started)"


class ServiceError(RuntimeError):
    """A service could not be installed or started; the message says why and what to do."""


def random_secret(length: int = 24) -> str:
    return base64.urlsafe_b64encode(os.urandom(length)).decode().rstrip("=")




def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ManagedProcess:
    """A child process in its own process group, so that stopping it stops its children too
    (Elasticsearch's launcher forks the JVM) and nothing else."""

    def __init__(
        self, name: str, argv: Sequence[str], env: dict[str, str], log_file: Path, cwd: Path
    ) -> None:
        self.name = name
        self.log_file = log_file
        with open(log_file, "ab") as log:
            self.popen = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll `ready` until true; fail with the log's tail when the process dies or time runs
        out. Returns the seconds it took."""
        start = time.monotonic()

        def probe() -> polling.Probe:
            if not self.running():
                return polling.Probe(failure=f"exited with status {self.popen.returncode}")
            try:
                return polling.Probe(done=ready())
            except OSError:  # not listening yet
                return polling.Probe()

        try:
            polling.poll(what, probe, timeout)
        except polling.WaitFailed:
            raise ServiceError(
                f"{self.name} exited with status {self.popen.returncode} before {what}; "
                f"last lines of {self.log_file}:\n{tail(self.log_file)}") from None
        except polling.WaitTimeout:
            self.stop()
            raise ServiceError(
                f"{self.name} did not reach {what} within {timeout:.0f}s; "
                f"last lines of {self.log_file}:\n{tail(self.log_file)}") from None
        return time.monotonic() - start

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the process group we created, then SIGKILL it if it lingers."""
        if self.popen.poll() is not None:
            return
        try:
            os.killpg(self.popen.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)
