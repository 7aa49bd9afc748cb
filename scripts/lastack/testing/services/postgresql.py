"""PostgreSQL 15 (Debian's `postgresql-15`) on loopback: Superset's metastore in the hooks tier.

The chart runs the metastore on a CloudNativePG `Cluster`; here the same server major runs
from Debian's binaries in a temporary data directory, listening on 127.0.0.1 only (no Unix
socket) with scram-sha-256 password authentication for every connection. `app_database`
creates what CloudNativePG's default bootstrap creates: a login role `app` owning a database
`app`. Durability settings are off: the data die with the test.
"""

from __future__ import annotations

import os
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

BIN_DIR = Path(os.environ.get("LA_STACK_POSTGRESQL_BIN", "/usr/lib/postgresql/15/bin"))
PSQL = "psql"
SUPERUSER = "postgres"
START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0
INSTALL_HINT = "apt-get install postgresql-15 (or set LA_STACK_POSTGRESQL_BIN)"


def find_binaries() -> Path:
    """The server binaries folder; a ServiceError saying how to get it when absent."""
    missing = [name for name in ("initdb", "postgres") if not (BIN_DIR / name).exists()]
    if missing:
        raise ServiceError(f"PostgreSQL's {' and '.join(missing)} are not in {BIN_DIR}: "
                           f"{INSTALL_HINT}")
    if shutil.which(PSQL) is None and not (BIN_DIR / PSQL).exists():
        raise ServiceError("psql is missing: apt-get install postgresql-client-15")
    return BIN_DIR


def server_version() -> str:
    """`postgres --version` of the binaries the tests use, e.g. `15.18-0+deb12u1 (<bin dir>)`."""
    bin_dir = find_binaries()
    out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True,
                         text=True, check=True, timeout=30).stdout  # fmt: skip
    return f"{out.split(')', 1)[-1].strip()} ({bin_dir})"


def server_user() -> tuple[int, int] | None:
    """The uid/gid to run initdb and postgres as, or None to run as ourselves. Both refuse to
    run as root, so as root they run as the `postgres` account Debian's package creates (or
    `nobody`), through setpriv, which execs in place: the PID we stop is the server's."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        account = pwd.getpwnam(SUPERUSER)
    except KeyError:
        account = pwd.getpwnam("nobody")
    return account.pw_uid, account.pw_gid


def as_server_user(argv: list[str]) -> list[str]:
    ids = server_user()
    if ids is None:
        return argv
    uid, gid = ids
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclass
class PostgresServer(LoopbackServer):
    """One PostgreSQL 15 server on 127.0.0.1:<free port>. Use as a context manager."""

    port: int = 0  # 0: a free port chosen at start
    superuser_password: str = field(default_factory=random_secret)
    startup_seconds: float = 0.0
    _process: ManagedProcess | None = None
    _workdir: Path | None = field(default=None, repr=False)

    def start(self) -> None:
        bin_dir = find_binaries()
        work = Path(tempfile.mkdtemp(prefix="la-stack-postgresql-"))
        self._workdir = work
        data = work / "data"
        password_file = work / "superuser-password"
        password_file.write_text(self.superuser_password + "\n")
        ids = server_user()
        if ids is not None:
            for path in (work, password_file):
                os.chown(path, *ids)
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER,
                  "--pwfile", str(password_file), "--auth", "scram-sha-256",
                  "--encoding", "UTF8", "--locale", "C.UTF-8"]  # fmt: skip
        self._run(as_server_user(initdb), work, "initdb")
        password_file.unlink()
        self.port = self.port or free_port()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",  # TCP on loopback only
            "password_encryption": "scram-sha-256",
            # Throwaway data: no need to wait for the disk.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        argv = [str(bin_dir / "postgres"), "-D", str(data)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(work)}
        self._process = ManagedProcess(
            "PostgreSQL", as_server_user(argv), env, work / "postgresql.log", work
        )
        self.startup_seconds = self._process.wait_ready(
            self._accepts_password, START_TIMEOUT, "a password login on 127.0.0.1"
        )

    def _run(self, argv: list[str], cwd: Path, what: str) -> None:
        try:
            result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True,
                                    timeout=COMMAND_TIMEOUT, env={"PATH": "/usr/bin:/bin",
                                                                  "LANG": "C.UTF-8"})
        except subprocess.TimeoutExpired as error:
            raise ServiceError(f"{what} took longer than {COMMAND_TIMEOUT:.0f}s") from error
        if result.returncode != 0:
            raise ServiceError(f"{what} failed:\n{(result.stdout + result.stderr)[-2000:]}")

    def _accepts_password(self) -> bool:
        return self.psql_result("SELECT 1", check=False).returncode == 0

    def psql_result(
        self, sql: str, database: str = "postgres", user: str = SUPERUSER,
        password: str | None = None, check: bool = True,
    ) -> subprocess.CompletedProcess:
        """psql over TCP with a password (PGPASSWORD, never argv); unaligned, tuples only."""
        psql = str(BIN_DIR / PSQL) if (BIN_DIR / PSQL).exists() else PSQL
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PGCONNECT_TIMEOUT": "5",
               "PGPASSWORD": self.superuser_password if password is None else password}
        argv = [psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", self.host,
                "-p", str(self.port), "-U", user, "-d", database, "-c", sql]  # fmt: skip
        result = subprocess.run(argv, env=env, capture_output=True, text=True,
                                timeout=COMMAND_TIMEOUT, check=False)  # fmt: skip
        if check and result.returncode != 0:
            raise ServiceError(f"psql on {database} as {user} failed: {result.stderr.strip()}")
        return result

    def query(self, sql: str, database: str = "postgres") -> list[list[str]]:
        """Rows of `sql` as the superuser, each a list of text columns (`|`-separated)."""
        out = self.psql_result(sql, database).stdout
        return [line.split("|") for line in out.splitlines() if line]

    def role(self, name: str, password: str) -> None:
        """A login role with a scram-sha-256 password (created, or its password reset)."""
        exists = self.query(f"SELECT 1 FROM pg_roles WHERE rolname = {quote_literal(name)}")
        verb = "ALTER" if exists else "CREATE"
        self.psql_result(f"{verb} ROLE {quote_ident(name)} LOGIN "
                         f"PASSWORD {quote_literal(password)}")

    def has_database(self, name: str) -> bool:
        return bool(self.query(f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(name)}"))

    def app_database(self, name: str, owner: str, password: str, template: str | None = None,
                     template_role: str | None = None) -> None:  # fmt: skip
        """A login role owning a database, as CloudNativePG bootstraps `app`. With `template`,
        the database starts as a copy of it (CREATE DATABASE ... TEMPLATE), and what
        `template_role` created there is handed to `owner`."""
        self.role(owner, password)
        copy = f" TEMPLATE {quote_ident(template)}" if template else ""
        self.psql_result(f"CREATE DATABASE {quote_ident(name)} OWNER {quote_ident(owner)}{copy}")
        if template_role:
            self.psql_result(f"REASSIGN OWNED BY {quote_ident(template_role)} "
                             f"TO {quote_ident(owner)}", database=name)
