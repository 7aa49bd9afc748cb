"""What the Superset operator (v0.2.0) hands a Superset container, for a local Superset
shaped like the operator's: its environment variables and the superset_config.py it
generates from them (internal/config/renderer.go), Valkey section included."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The environment variables the Superset operator (v0.2.0) sets on every Superset container
# and reads back in the superset_config.py it generates: `secretKeyFrom` lands in SECRET_KEY,
# `metastore.uriFrom` (CloudNativePG's `uri`) in DB_URI, `valkey.host`/`port`/`passwordFrom`
# in the VALKEY_* ones, and the CR's name in INSTANCE_NAME, which prefixes every cache key.
OPERATOR_ENV = {
    "instance": "SUPERSET_OPERATOR__INSTANCE_NAME",
    "secret_key": "SUPERSET_OPERATOR__SECRET_KEY",
    "db_uri": "SUPERSET_OPERATOR__DB_URI",
    "valkey_host": "SUPERSET_OPERATOR__VALKEY_HOST",
    "valkey_port": "SUPERSET_OPERATOR__VALKEY_PORT",
    "valkey_user": "SUPERSET_OPERATOR__VALKEY_USER",
    "valkey_pass": "SUPERSET_OPERATOR__VALKEY_PASS",
}
# What the operator's generated config points at Valkey for `spec.valkey` with its defaults:
# Flask-Caching section -> (Valkey database, key prefix after `<instance>_`, default timeout).
VALKEY_CACHES = {
    "CACHE_CONFIG": (1, "superset_", 300),
    "DATA_CACHE_CONFIG": (2, "superset_data_", 86400),
    "FILTER_STATE_CACHE_CONFIG": (3, "superset_filter_", 3600),
    "EXPLORE_FORM_DATA_CACHE_CONFIG": (4, "superset_explore_", 3600),
    "THUMBNAIL_CACHE_CONFIG": (5, "superset_thumbnail_", 3600),
    "DISTRIBUTED_COORDINATION_CONFIG": (7, "coordination_", 300),
}
CELERY_DB = 0  # broker and Celery results
RESULTS_DB, RESULTS_PREFIX = 6, "superset_results_"  # SQL Lab's RESULTS_BACKEND


@dataclass(frozen=True)
class Valkey:
    """Where Superset's cache, Celery broker and results backend live (the CR's `valkey`)."""

    host: str
    port: int
    password: str
    username: str = ""


def valkey_config() -> str:
    """The Valkey part of the operator's generated superset_config.py, as Python read at
    start from OPERATOR_ENV: the same keys, databases, prefixes and timeouts."""
    env = OPERATOR_ENV
    lines = [
        f"_valkey_user = os.environ.get({env['valkey_user']!r}, '')",
        f"_valkey_pass = os.environ.get({env['valkey_pass']!r}, '')",
        "_valkey_auth = (f\"{quote(_valkey_user, safe='')}:{quote(_valkey_pass, safe='')}@\""
        " if _valkey_pass else f\"{quote(_valkey_user, safe='')}@\" if _valkey_user else '')",
        f"_valkey_url = f\"redis://{{_valkey_auth}}{{os.environ[{env['valkey_host']!r}]}}:"
        f"{{os.environ[{env['valkey_port']!r}]}}\"",
        f"_instance = os.environ[{env['instance']!r}]",
    ]
    for key, (db, prefix, timeout) in VALKEY_CACHES.items():
        lines.append(
            f"{key} = {{'CACHE_TYPE': 'RedisCache', 'CACHE_DEFAULT_TIMEOUT': {timeout}, "
            f"'CACHE_KEY_PREFIX': f'{{_instance}}_{prefix}', "
            f"'CACHE_REDIS_URL': f'{{_valkey_url}}/{db}'}}"
        )
    lines += [
        "class CeleryConfig:",
        f"    broker_url = f'{{_valkey_url}}/{CELERY_DB}'",
        f"    result_backend = f'{{_valkey_url}}/{CELERY_DB}'",
        "CELERY_CONFIG = CeleryConfig",
        "from cachelib.redis import RedisCache as _ResultsCache",
        f"RESULTS_BACKEND = _ResultsCache(host=os.environ[{env['valkey_host']!r}], "
        f"port=int(os.environ[{env['valkey_port']!r}]), username=_valkey_user or None, "
        f"password=_valkey_pass, db={RESULTS_DB}, key_prefix=f'{{_instance}}_{RESULTS_PREFIX}')",
    ]
    return "\n".join(lines) + "\n"


def config_text(workdir: Path, allow_sqlite: bool = False, valkey: bool = False) -> str:
    """superset_config.py of a local server, shaped like the one the Superset operator
    generates (internal/config/renderer.go at v0.2.0): SECRET_KEY and the metastore URI from
    its environment variables, then, with `valkey`, its cache/Celery/results section; then
    what la-stack adds as `spec.config`. No Valkey: no cache at all. `allow_sqlite` lets a
    database point at a SQLite file (the SQL stand-in), which Superset refuses by default."""
    operator = [
        "import os",
        "from urllib.parse import quote",
        f"SECRET_KEY = os.environ[{OPERATOR_ENV['secret_key']!r}]",
        f"SQLALCHEMY_DATABASE_URI = os.environ[{OPERATOR_ENV['db_uri']!r}]",
        "SQLALCHEMY_EXAMPLES_URI = SQLALCHEMY_DATABASE_URI",
    ]
    local: dict[str, object] = {
        "DATA_DIR": str(workdir / "data"),
        # The 5-per-second login limit would slow the tests' repeated logins.
        "RATELIMIT_ENABLED": False,
    }
    if not valkey:
        local |= {"DATA_CACHE_CONFIG": {"CACHE_TYPE": "NullCache"},
                  "CACHE_CONFIG": {"CACHE_TYPE": "NullCache"}}  # fmt: skip
    if allow_sqlite:
        local["PREVENT_UNSAFE_DB_CONNECTIONS"] = False
    return (
        "\n".join(operator) + "\n"
        + (valkey_config() if valkey else "")
        + "# la-stack's additions (spec.config)\n"
        + "".join(f"{key} = {value!r}\n" for key, value in local.items())
    )


def operator_env(secret_key: str, db_uri: str, instance: str,
                 valkey: Valkey | None = None) -> dict[str, str]:  # fmt: skip
    """The values the operator puts in OPERATOR_ENV, from the CR's Secret references."""
    env = {OPERATOR_ENV["instance"]: instance, OPERATOR_ENV["secret_key"]: secret_key,
           OPERATOR_ENV["db_uri"]: db_uri}  # fmt: skip
    if valkey is not None:
        env |= {OPERATOR_ENV["valkey_host"]: valkey.host,
                OPERATOR_ENV["valkey_port"]: str(valkey.port),
                OPERATOR_ENV["valkey_pass"]: valkey.password}  # fmt: skip
        if valkey.username:
            env[OPERATOR_ENV["valkey_user"]] = valkey.username
    return env
