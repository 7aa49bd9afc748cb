"""Superset (PyPI `apache-superset`) on loopback for the hooks tier and `make screenshots`.

Superset lives in its own venv (.tools/venvs/superset) because it pins a large, old stack
(SQLAlchemy 1.4, Flask-AppBuilder, marshmallow 3) that must not meet the tooling venv. The
version is the chart's Superset image tag. Beside it: the packages Superset imports without
declaring them (`flask-caching` held at 2.3.1, `rich`, `cachetools`), the drivers exactly as
the chart's bootstrap script installs them (read from it: psycopg2 for the metastore,
`elasticsearch-dbapi` with elasticsearch-py 7.17, which reaches Elasticsearch 8 in
compatibility mode), and Celery/kombu at the versions Superset's own lock file pins.

The metastore is what the Superset operator hands Superset: a URI (CloudNativePG's `uri`,
here of a loopback PostgreSQL, see postgresql.py), read from the operator's environment
variables by a superset_config.py shaped like the one it generates, with the cache, Celery
broker and results backend on Valkey when one is given. `superset db upgrade` + `init` run
once per PostgreSQL server into a template database that each Superset's database copies
(ensure_template), so a server is up in ~20 s. Without a URI (`make screenshots`) the
metastore is SQLite, seeded once per install (`seed.db`) and copied. The first install takes
about 1.5 minutes.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lastack.chart import chart_values
from lastack.net import free_port
from lastack.paths import TOOLS_DIR
from lastack.testing.services import postgresql
from lastack.testing.services.processes import (
    LoopbackServer,
    ManagedProcess,
    ServiceError,
    ensure_pinned_venv,
    pinned_venv_installed,
    random_secret,
)
from lastack.testing.services.superset_operator import (
    OPERATOR_ENV,
    Valkey,
    config_text,
    operator_env,
)

# The Superset release and drivers the chart runs: its image tag and what its bootstrap
# script installs (psycopg2 for the metastore, the Elasticsearch SQL dialect).
VERSION = chart_values.default("superset.image.tag")
BOOTSTRAP_PINS = chart_values.pip_pins("superset.bootstrapScript")
REQUIREMENTS = (
    f"apache-superset=={VERSION}",
    "flask-caching==2.3.1",
    "rich==15.0.0",
    "cachetools==8.0.1",
    # Superset's own lock (requirements/base.txt): the newest kombu refuses its redis-py 5.
    "celery==5.5.2",
    "kombu==5.5.3",
    *BOOTSTRAP_PINS,
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
    if ensure_pinned_venv(VENV, REQUIREMENTS, "Superset", SUPERSET, log,
                          took=" (about 1.5 minutes)"):
        SEED_DB.unlink(missing_ok=True)  # built by the previous Superset: rebuild
    return VENV


def superset_env(workdir: Path, operator: dict[str, str]) -> dict[str, str]:
    return {
        "PATH": f"{VENV / 'bin'}:/usr/bin:/bin",
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "FLASK_APP": "superset",
        "SUPERSET_CONFIG_PATH": str(workdir / "superset_config.py"),
        # elasticsearch-py 7.17 talks to Elasticsearch 8 only in compatibility mode.
        "ELASTIC_CLIENT_APIVERSIONING": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        **operator,
    }


def run_superset(args: list[str], workdir: Path, what: str, operator: dict[str, str],
                 stdin: str | None = None) -> None:  # fmt: skip
    try:
        result = subprocess.run(
            [str(SUPERSET), *args], env=superset_env(workdir, operator), cwd=workdir,
            input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise ServiceError(f"`superset {what}` took longer than {COMMAND_TIMEOUT:.0f}s") from error
    if result.returncode != 0:
        output = result.stdout + result.stderr
        refused = metastore_error(output)
        if refused:
            uri = operator.get(OPERATOR_ENV["db_uri"], "")
            raise ServiceError(f"`superset {what}` could not use its metastore "
                               f"{redact(uri)}: {refused}")
        raise ServiceError(f"`superset {what}` failed:\n{output[-3000:]}")


def metastore_error(output: str) -> str:
    """psycopg2's own sentence when the metastore refused or was unreachable, else ''."""
    marker = "(psycopg2.OperationalError) "
    for line in output.splitlines():
        if marker in line:
            return line.split(marker, 1)[1].strip()
    return ""


def redact(uri: str) -> str:
    """`uri` without its password, for messages."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def migrate(workdir: Path, operator: dict[str, str]) -> None:
    """What the operator's lifecycle tasks run before the web server: migrations, then init."""
    run_superset(["db", "upgrade"], workdir, "db upgrade", operator)
    run_superset(["init"], workdir, "init", operator)


def ensure_seed(log: Any = print) -> Path:
    """A SQLite metadata database after `db upgrade` and `init`, built once per install."""
    install(log)
    if SEED_DB.exists():
        return SEED_DB
    with tempfile.TemporaryDirectory(prefix="la-stack-superset-seed-") as tmp:
        work = Path(tmp)
        (work / "superset_config.py").write_text(config_text(work))
        log("[services] initialising a Superset metadata database (once per install)")
        migrate(work, operator_env("seed-only", sqlite_uri(work), "seed"))
        shutil.copyfile(work / "superset.db", SEED_DB.with_suffix(".tmp"))
    SEED_DB.with_suffix(".tmp").replace(SEED_DB)
    return SEED_DB


def sqlite_uri(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'superset.db'}"


# A PostgreSQL database migrated once per server, copied for each Superset (CREATE DATABASE
# ... TEMPLATE takes a second where `db upgrade` + `init` take a minute or more).
TEMPLATE_DB = "superset_template"
TEMPLATE_ROLE = "superset_template"


def ensure_template(pg: postgresql.PostgresServer, log: Any = print) -> tuple[str, str]:
    """(template database, role owning its objects) on `pg`, migrated by this Superset;
    pass both to `pg.app_database` for a metastore that starts migrated."""
    install(log)
    if pg.has_database(TEMPLATE_DB):
        return TEMPLATE_DB, TEMPLATE_ROLE
    password = random_secret()
    pg.role(TEMPLATE_ROLE, password)
    building = TEMPLATE_DB + "_building"  # renamed when complete: a failed build is not kept
    pg.psql_result(f"DROP DATABASE IF EXISTS {building}")
    pg.psql_result(f"CREATE DATABASE {building}")
    # PostgreSQL 15 lets only the database owner create in `public`.
    pg.psql_result(f"GRANT CREATE ON SCHEMA public TO {TEMPLATE_ROLE}", database=building)
    uri = f"postgresql://{TEMPLATE_ROLE}:{password}@{pg.host}:{pg.port}/{building}"
    with tempfile.TemporaryDirectory(prefix="la-stack-superset-template-") as tmp:
        work = Path(tmp)
        (work / "superset_config.py").write_text(config_text(work))
        log("[services] migrating a Superset metastore on PostgreSQL (once per server)")
        migrate(work, operator_env("seed-only", uri, "seed"))
    pg.psql_result(f"ALTER DATABASE {building} RENAME TO {TEMPLATE_DB}")
    return TEMPLATE_DB, TEMPLATE_ROLE


# Run by Superset's interpreter with its config: one write and read through the cache, the
# results backend and the Celery broker exactly as configured, so that a wrong password or
# an unreachable Valkey fails the start in one sentence instead of silently later (Superset
# logs a failed cache write and carries on).
VALKEY_CHECK = """
import sys
from superset.app import create_app

def round_trip(cache):
    cache.set("la-stack-check", "1")
    assert cache.get("la-stack-check") == "1", "a written key did not read back"
    cache.delete("la-stack-check")

app = create_app()
with app.app_context():
    from superset.extensions import cache_manager, celery_app, results_backend_manager
    steps = (
        ("CACHE_CONFIG", lambda: round_trip(cache_manager.cache.cache)),
        ("RESULTS_BACKEND", lambda: round_trip(results_backend_manager.results_backend)),
        ("CELERY_CONFIG broker", lambda: celery_app.connection_for_write().ensure_connection(
            max_retries=1)),
    )
    for name, step in steps:
        try:
            step()
        except Exception as error:
            print(f"{name}: {type(error).__name__}: {error}")
            sys.exit(3)
"""


def check_valkey(workdir: Path, operator: dict[str, str], valkey: Valkey) -> None:
    try:
        result = subprocess.run([str(PYTHON), "-c", VALKEY_CHECK],
                                env=superset_env(workdir, operator), cwd=workdir,
                                capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired as error:
        raise ServiceError(f"Superset's Valkey check took longer than {COMMAND_TIMEOUT:.0f}s") \
            from error
    if result.returncode == 3:
        raise ServiceError(f"Superset could not use Valkey at {valkey.host}:{valkey.port}: "
                           f"{result.stdout.strip().splitlines()[-1]}")
    if result.returncode != 0:
        raise ServiceError(f"Superset's Valkey check failed:\n{result.stderr[-3000:]}")


@dataclass
class SupersetServer(LoopbackServer):
    """`superset run` on 127.0.0.1:<free port> with an admin user. Use as a context manager.

    `metastore_uri` is the URI the operator hands Superset (CloudNativePG's `uri`), of a
    database that is already migrated (see ensure_template); empty: a SQLite copy of the
    seed. `valkey`: the cache, broker and results backend; None: no cache."""

    url: str = ""
    admin_password: str = field(default_factory=random_secret)
    secret_key: str = field(default_factory=lambda: random_secret(48))
    metastore_uri: str = ""
    valkey: Valkey | None = None
    instance: str = "la-stack"  # the Superset CR's name
    startup_seconds: float = 0.0
    port: int = 0  # 0: a free port chosen at start
    allow_sqlite: bool = False  # see config_text
    _process: ManagedProcess | None = None
    _workdir: Path | None = field(default=None, repr=False)

    @property
    def admin(self) -> tuple[str, str]:
        return ADMIN_USER, self.admin_password

    def start(self) -> None:
        install()
        seed = None if self.metastore_uri else ensure_seed()
        work = Path(tempfile.mkdtemp(prefix="la-stack-superset-"))
        self._workdir = work
        (work / "data").mkdir()
        (work / "superset_config.py").write_text(
            config_text(work, self.allow_sqlite, valkey=self.valkey is not None)
        )
        if seed is not None:
            shutil.copyfile(seed, work / "superset.db")
        operator = operator_env(self.secret_key, self.metastore_uri or sqlite_uri(work),
                                self.instance, self.valkey)  # fmt: skip
        # The password on stdin, as the chart's init command gives it: never on argv.
        run_superset(
            ["fab", "create-admin", "--username", ADMIN_USER, "--firstname", "la-stack",
             "--lastname", "Admin", "--email", "admin@la-stack.invalid"],
            work, "fab create-admin", operator, stdin=f"{self.admin_password}\n" * 2,
        )  # fmt: skip
        if self.valkey is not None:
            check_valkey(work, operator, self.valkey)
        port = self.port or free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [str(SUPERSET), "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"]
        self._process = ManagedProcess(
            "Superset", argv, superset_env(work, operator), work / "superset.log", work
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
