"""A Valkey or Redis server (Debian's `redis-server` 7.0, or `valkey-server`) on loopback:
Superset's cache, Celery broker and results backend in the hooks tier.

The chart runs the Valkey project's image; both servers speak the same protocol and take the
same flags. It binds 127.0.0.1 with `requirepass` (the password the secrets hook generated,
handed over in a config file, never on argv) and keeps nothing on disk. `redis-cli` reads
the password from REDISCLI_AUTH, never from argv.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lastack.net import free_port
from lastack.testing.services.processes import (
    LoopbackServer,
    ManagedProcess,
    ServiceError,
    random_secret,
)

SERVERS = ("valkey-server", "redis-server")
CLIENTS = ("valkey-cli", "redis-cli")
START_TIMEOUT = 30.0
INSTALL_HINT = "apt-get install redis-server (Debian bookworm; valkey-server is in backports)"


def find_binaries() -> tuple[str, str]:
    """(server, cli) found on PATH; a ServiceError saying how to get them when absent."""
    server = next((shutil.which(name) for name in SERVERS if shutil.which(name)), None)
    cli = next((shutil.which(name) for name in CLIENTS if shutil.which(name)), None)
    if server is None or cli is None:
        raise ServiceError(f"no Valkey/Redis server and client on PATH: {INSTALL_HINT}")
    return server, cli


def server_version() -> str:
    """e.g. `redis-server 7.0.15`."""
    server, _ = find_binaries()
    out = subprocess.run([server, "--version"], capture_output=True, text=True, check=True,
                         timeout=30).stdout  # fmt: skip
    version = next((w[2:] for w in out.split() if w.startswith("v=")), out.strip())
    return f"{Path(server).name} {version}"


def quote_conf(value: str) -> str:
    """A value for redis.conf, double-quoted with its escapes."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class ValkeyServer(LoopbackServer):
    """One Valkey/Redis on 127.0.0.1:<free port> with a password. Use as a context manager."""

    password: str = field(default_factory=random_secret)
    port: int = 0  # 0: a free port chosen at start
    server: str = ""
    version: str = ""
    startup_seconds: float = 0.0
    _cli: str = field(default="", repr=False)
    _process: ManagedProcess | None = None
    _workdir: Path | None = field(default=None, repr=False)

    def start(self) -> None:
        self.server, self._cli = find_binaries()
        work = Path(tempfile.mkdtemp(prefix="la-stack-valkey-"))
        self._workdir = work
        self.port = self.port or free_port()
        settings = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "protected-mode": "yes",
            "requirepass": quote_conf(self.password),
            "dir": str(work),
            # A cache and a broker for one test: nothing to keep.
            "save": '""',
            "appendonly": "no",
            "daemonize": "no",
        }
        config = work / "valkey.conf"
        config.write_text("".join(f"{key} {value}\n" for key, value in settings.items()))
        config.chmod(0o600)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        self._process = ManagedProcess(
            "Valkey", [self.server, str(config)], env, work / "valkey.log", work
        )
        self.startup_seconds = self._process.wait_ready(
            lambda: self.cli("PING", check=False).stdout.strip() == "PONG",
            START_TIMEOUT, "a PONG with the password",
        )  # fmt: skip
        self.version = self.cli("INFO", "server").stdout.split("_version:", 1)[-1].split()[0]

    def cli(self, *args: str, db: int = 0, password: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess:  # fmt: skip
        """redis-cli against this server; the password goes through REDISCLI_AUTH."""
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
               "REDISCLI_AUTH": self.password if password is None else password}
        argv = [self._cli, "-h", self.host, "-p", str(self.port), "-n", str(db), *args]
        result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30,
                                check=False)  # fmt: skip
        if check and (result.returncode != 0 or result.stdout.startswith(("ERR", "NOAUTH",
                                                                          "WRONGPASS"))):
            raise ServiceError(f"redis-cli {' '.join(args)} failed: "
                               f"{(result.stdout + result.stderr).strip()}")
        return result

    def keys(self, db: int, pattern: str = "*") -> list[str]:
        """Key names in `db` (SCAN, not KEYS: the way to look at a live server)."""
        return sorted(set(self.cli("--scan", "--pattern", pattern, db=db).stdout.split()))
