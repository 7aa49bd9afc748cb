"""Superset (PyPI `apache-superset`) on loopback for the hooks tier and `make screenshots`.

Superset lives in its own venv (.tools/venvs/superset) because it pins a large, old stack
(SQLAlchemy 1.4, Flask-AppBuilder, marshmallow 3) that must not meet the tooling venv. The
version is the superset chart's appVersion. Beside it: the packages Superset imports without
declaring them (`flask-caching` held at 2.3.1, `rich`, `cachetools`), and the Elasticsearch
driver exactly as the chart's bootstrap script installs it (`elasticsearch-dbapi` 0.2.12 with
elasticsearch-py 7.17, which reaches Elasticsearch 8 in compatibility mode).

The metadata database is SQLite in a temporary directory. `superset db upgrade` and
`superset init` take ~25 s; their result is kept once per install (`seed.db`) and copied for
each server, so a server is up in ~10 s. The first install takes about 1.5 minutes.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lastack.paths import TOOLS_DIR
from lastack.services.processes import (
    LoopbackServer,
    ManagedProcess,
    ServiceError,
    free_port,
    install_pinned_venv,
    pinned_venv_installed,
    tail,
)

VERSION = "6.1.0"  # the superset chart 0.22.8 appVersion
DRIVERS = ("elasticsearch-dbapi==0.2.12", "elasticsearch==7.17.13")
REQUIREMENTS = (
    f"apache-superset=={VERSION}",
    "flask-caching==2.3.1",
    "rich==15.0.0",
    "cachetools==8.0.1",
    *DRIVERS,
)
VENV = TOOLS_DIR / "venvs" / "superset"
PYTHON = VENV / "bin" / "python"
SUPERSET = VENV / "bin" / "superset"
SEED_DB = VENV / "seed.db"
START_TIMEOUT = 120.0
COMMAND_TIMEOUT = 300.0
ADMIN_USER = "admin"


def installed() -> bool:
    return pinned_venv_installed(VENV, REQUIREMENTS, SUPERSET)


def install(log: Any = print) -> Path:
    """Create the venv and install the pinned requirements from PyPI (quick when done)."""
    if not installed():
        log(f"[services] installing {' '.join(REQUIREMENTS)} into {VENV} (about 1.5 minutes)")
        install_pinned_venv(VENV, REQUIREMENTS, "Superset")
        SEED_DB.unlink(missing_ok=True)  # built by the previous Superset: rebuild
    return VENV


def package_versions(*names: str) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib.metadata import version\n"
        "print(json.dumps({n: version(n) for n in sys.argv[1:]}))"
    )
    result = subprocess.run(
        [str(PYTHON), "-c", code, *names], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def config_text(workdir: Path, secret_key: str, allow_sqlite: bool = False) -> str:
    """superset_config.py of a local server: SQLite metadata, no cache server, no examples.
    `allow_sqlite` lets a database point at a SQLite file (the SQL stand-in), which Superset
    refuses by default."""
    settings: dict[str, object] = {
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir / 'superset.db'}",
        "DATA_DIR": str(workdir / "data"),
        # The defaults (a 1-hour cached query and a 5-per-second login limit) would hide the
        # effect of a re-run from the tests and slow their repeated logins.
        "RATELIMIT_ENABLED": False,
        "DATA_CACHE_CONFIG": {"CACHE_TYPE": "NullCache"},
        "CACHE_CONFIG": {"CACHE_TYPE": "NullCache"},
    }
    if allow_sqlite:
        settings["PREVENT_UNSAFE_DB_CONNECTIONS"] = False
    return "".join(f"{key} = {value!r}\n" for key, value in settings.items())


def superset_env(workdir: Path) -> dict[str, str]:
    return {
        "PATH": f"{VENV / 'bin'}:/usr/bin:/bin",
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "FLASK_APP": "superset",
        "SUPERSET_CONFIG_PATH": str(workdir / "superset_config.py"),
        # elasticsearch-py 7.17 talks to Elasticsearch 8 only in compatibility mode.
        "ELASTIC_CLIENT_APIVERSIONING": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run_superset(args: list[str], workdir: Path, what: str) -> None:
    try:
        result = subprocess.run(
            [str(SUPERSET), *args], env=superset_env(workdir), cwd=workdir,
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise ServiceError(f"`superset {what}` took longer than {COMMAND_TIMEOUT:.0f}s") from error
    if result.returncode != 0:
        raise ServiceError(f"`superset {what}` failed:\n{(result.stdout + result.stderr)[-3000:]}")


def ensure_seed(log: Any = print) -> Path:
    """A metadata database after `db upgrade` and `init`, built once per install."""
    install(log)
    if SEED_DB.exists():
        return SEED_DB
    with tempfile.TemporaryDirectory(prefix="la-stack-superset-seed-") as tmp:
        work = Path(tmp)
        (work / "superset_config.py").write_text(config_text(work, "seed-only"))
        log("[services] initialising a Superset metadata database (once per install)")
        run_superset(["db", "upgrade"], work, "db upgrade")
        run_superset(["init"], work, "init")
        shutil.copyfile(work / "superset.db", SEED_DB.with_suffix(".tmp"))
    SEED_DB.with_suffix(".tmp").replace(SEED_DB)
    return SEED_DB


def random_secret(length: int = 24) -> str:
    return base64.urlsafe_b64encode(os.urandom(length)).decode().rstrip("=")


@dataclass
class SupersetServer(LoopbackServer):
    """`superset run` on 127.0.0.1:<free port> with an admin user. Use as a context manager."""

    url: str = ""
    admin_password: str = field(default_factory=random_secret)
    startup_seconds: float = 0.0
    port: int = 0  # 0: a free port chosen at start
    allow_sqlite: bool = False  # see config_text
    _process: ManagedProcess | None = None
    _workdir: Path | None = field(default=None, repr=False)



    @property
    def admin(self) -> tuple[str, str]:
        return ADMIN_USER, self.admin_password

    def start(self) -> None:
        seed = ensure_seed()
        work = Path(tempfile.mkdtemp(prefix="la-stack-superset-"))
        self._workdir = work
        (work / "data").mkdir()
        (work / "superset_config.py").write_text(
            config_text(work, random_secret(48), self.allow_sqlite)
        )
        shutil.copyfile(seed, work / "superset.db")
        run_superset(
            ["fab", "create-admin", "--username", ADMIN_USER, "--firstname", "la-stack",
             "--lastname", "Admin", "--email", "admin@la-stack.invalid",
             "--password", self.admin_password],
            work, "fab create-admin",
        )  # fmt: skip
        port = self.port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [str(SUPERSET), "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"]
        self._process = ManagedProcess(
            "Superset", argv, superset_env(work), work / "superset.log", work
        )
        self.startup_seconds = self._process.wait_ready(
            self._healthy, START_TIMEOUT, "an OK /health"
        )

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=5) as answer:
                return answer.status == 200
        except urllib.error.URLError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        return tail(self._process.log_file, lines) if self._process else "(not started)"


