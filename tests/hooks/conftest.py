"""Fixtures of the hooks tier: hook programs run as subprocesses against real services.

One Elasticsearch and one Ralph per session. The session is provisioned the way the chart
provisions a release: the secrets hook runs first (against the Kubernetes stand-in), its
Secrets become Elasticsearch's file-realm users, the index bootstrap hook runs with the
bootstrap user, and Ralph starts with the env and auth.json the secrets hook derived.
Superset's backing services are one PostgreSQL (its metastore, reached through a Secret
shaped like CloudNativePG's `<cluster>-app`) and one Valkey/Redis whose password is the
`REDIS_PASSWORD` the secrets hook generated.
"""

from __future__ import annotations

import json
import secrets
import shutil
import string
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from lastack.net import free_port
from lastack.testing.services import elasticsearch, ingest_node, postgresql, ralph, valkey
from lastack.testing.services.hookfiles import (
    bootstrap_config,
    bootstrap_env,
    import_hook,
    run_hook,
)
from lastack.testing.services.processes import ServiceError
from tests.hooks.kube_standin import TOKEN, KubeStandIn

# A user-provided password full of URL-reserved characters, on purpose.
WRITER_PASSWORD = "r@lph:p/ss%w?rd#1&+= x"
# The chart's helm-test index (its default values), and a write alias rolled over in tests.
TEST_INDEX = bootstrap_config()["testIndex"]
ROLLED_ALIAS = "statements_rolled"


def hook_module(name: str) -> ModuleType:
    return import_hook(name)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_sentence_failure(result: subprocess.CompletedProcess, *words: str) -> str:
    """Non-zero exit, stderr is exactly one `error: ...` line (no traceback) naming `words`."""
    assert result.returncode != 0, result.stdout
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def kube_env(kube: KubeStandIn, config: dict[str, Any], workdir: Path) -> dict[str, str]:
    config_file = workdir / "config.json"
    config_file.write_text(json.dumps(config))
    token_file = workdir / "token"
    token_file.write_text(TOKEN + "\n")
    return {
        "CONFIG_FILE": str(config_file),
        "K8S_API_URL": kube.url,
        "K8S_TOKEN_FILE": str(token_file),
        "K8S_NAMESPACE": kube.namespace,
        "DEADLINE_SECONDS": "30",
    }


def services_skip_reason() -> str | None:
    """Skip only when a prerequisite is truly absent; say how to get it."""
    try:
        elasticsearch.find_java()
    except ServiceError as error:
        return f"hooks tier needs a JDK: {error}"
    if not elasticsearch.installed() and not shutil.which("mvn"):
        return "hooks tier needs Maven to fetch Elasticsearch: apt-get install maven"
    return None


def stack_config(es_url: str) -> dict[str, Any]:
    """The secrets hook config for the session, shaped as the chart renders it."""
    return {
        "labels": {"app.kubernetes.io/part-of": "la-stack",
                   "app.kubernetes.io/managed-by": "la-stack-secrets-hook",
                   "la-stack.io/release": "t"},
        "annotations": {"argocd.argoproj.io/compare-options": "IgnoreExtraneous",
                        "argocd.argoproj.io/sync-options": "Prune=false"},
        "staleLabels": ["app.kubernetes.io/instance"],
        "esUsers": [
            {"secret": "t-es-ralph", "username": "la-stack-ralph",
             "roles": ["la_stack_statements_writer"], "existingSecret": "my-ralph-es"},
            {"secret": "t-es-superset", "username": "la-stack-superset",
             "roles": ["la_stack_statements_reader"], "existingSecret": ""},
            {"secret": "t-es-bootstrap", "username": "la-stack-bootstrap",
             "roles": ["la_stack_index_bootstrap"], "existingSecret": ""},
        ],
        "lrsAccounts": [
            {"secret": "t-lrs-moodle", "username": "moodle",
             "scopes": ["statements/write", "statements/read/mine"],
             "agent": {"mbox": "mailto:moodle@la-stack.example.org"}, "existingSecret": ""},
            {"secret": "t-lrs-admin", "username": "admin", "scopes": ["all"],
             "agent": {"mbox": "mailto:admin@la-stack.example.org"}, "existingSecret": ""},
            {"secret": "t-lrs-dashboards", "username": "dashboards",
             "scopes": ["statements/read"],
             "agent": {"mbox": "mailto:dashboards@la-stack.example.org"}, "existingSecret": ""},
            # Accounts whose statements Ralph stores elsewhere (auth.json `target`): the
            # chart's helm-test account, and one writing to an alias of its own.
            {"secret": "t-lrs-helm-test", "username": "helm-test",
             "scopes": ["statements/write", "statements/read/mine"],
             "agent": {"mbox": "mailto:helm-test@la-stack.example.org"}, "existingSecret": "",
             "target": TEST_INDEX},
            {"secret": "t-lrs-rolled", "username": "rolled",
             "scopes": ["statements/write", "statements/read/mine"],
             "agent": {"mbox": "mailto:rolled@la-stack.example.org"}, "existingSecret": "",
             "target": ROLLED_ALIAS},
        ],
        "generic": [
            # The keys and lengths the chart asks for (templates/_helpers.tpl).
            {"secret": "t-superset",
             "keys": {"SUPERSET_SECRET_KEY": 64, "LA_STACK_ADMIN_PASSWORD": 24,
                      "REDIS_PASSWORD": 32},
             "existingSecret": ""},
        ],
        "ralph": {"envSecret": "t-ralph-env", "authSecret": "t-ralph-auth",
                  "esUrl": es_url, "esUser": "t-es-ralph"},
    }  # fmt: skip


@dataclass
class EsStack:
    kube: KubeStandIn
    es: elasticsearch.ElasticsearchServer
    config: dict[str, Any]
    secrets_run: subprocess.CompletedProcess
    workdir: Path
    bootstrap_run: subprocess.CompletedProcess | None = None

    def secret(self, name: str) -> dict[str, str]:
        return self.kube.decoded(name)

    def login(self, name: str) -> tuple[str, str]:
        data = self.secret(name)
        return data["username"], data["password"]

    def bootstrap_env(self, config: dict[str, Any] | None = None,
                      **overrides: str) -> dict[str, str]:
        """es_bootstrap's environment as the chart sets it (bootstrap user, ECK-like CA,
        the config the chart renders from its defaults unless `config` is given)."""
        username, password = self.login("t-es-bootstrap")
        config_file = self.workdir / f"es-bootstrap-{len(list(self.workdir.iterdir()))}.json"
        config_file.write_text(json.dumps(config or bootstrap_config()))
        env = bootstrap_env(self.es.url, username, password, self.es.ca_file, config_file)
        env.update(overrides)
        return env


@pytest.fixture(scope="session")
def es_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EsStack]:
    reason = services_skip_reason()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("es-stack")
    with KubeStandIn() as kube:
        port = free_port()
        config = stack_config(f"https://127.0.0.1:{port}")
        kube.put_secret(
            "my-ralph-es",
            {"username": "la-stack-ralph", "password": WRITER_PASSWORD,
             "roles": "la_stack_statements_writer"},
            "kubernetes.io/basic-auth",
        )  # fmt: skip
        secrets_run = run_hook("release_secrets", kube_env(kube, config, workdir))
        assert secrets_run.returncode == 0, secrets_run.stderr
        users = {}
        for entry in config["esUsers"]:
            data = kube.decoded(entry["existingSecret"] or entry["secret"])
            users[data["username"]] = elasticsearch.EsUser(data["password"], entry["roles"])
        with elasticsearch.ElasticsearchServer(users=users, http_port=port) as es:
            stack = EsStack(kube, es, config, secrets_run, workdir)
            stack.bootstrap_run = run_hook("es_bootstrap", stack.bootstrap_env())
            yield stack


@pytest.fixture(scope="session")
def ingest_node_server() -> Iterator[ingest_node.IngestNode]:
    """Elasticsearch 7.10.2 with ingest-common and lang-painless: where the chart's ingest
    pipeline runs here (a stand-in, see lastack.testing.services.ingest_node)."""
    reason = services_skip_reason()
    if reason:
        pytest.skip(reason)
    with ingest_node.IngestNode() as node:
        yield node


@pytest.fixture(scope="session")
def ralph_server(es_stack: EsStack) -> Iterator[ralph.RalphServer]:
    bootstrap = es_stack.bootstrap_run
    assert bootstrap is not None and bootstrap.returncode == 0, bootstrap and bootstrap.stderr
    auth_file = es_stack.workdir / "auth.json"
    auth_file.write_text(es_stack.secret("t-ralph-auth")["auth.json"])
    app_dir = es_stack.workdir / "ralph-app"
    app_dir.mkdir()
    env = ralph.chart_env(
        hosts=es_stack.secret("t-ralph-env")["RALPH_BACKENDS__LRS__ES__HOSTS"],
        auth_file=auth_file,
        ca_file=es_stack.es.ca_file,
        app_dir=app_dir,
    )
    with ralph.RalphServer(env) as server:
        yield server


@pytest.fixture
def kube() -> Iterator[KubeStandIn]:
    with KubeStandIn() as standin:
        yield standin


def ralph_python() -> str:
    """Ralph's interpreter (the hook image's Python and bcrypt), installed on demand."""
    try:
        ralph.install()
    except ServiceError as error:
        pytest.skip(f"Ralph's venv could not be installed: {error}")
    return str(ralph.PYTHON)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgresql.PostgresServer]:
    try:
        postgresql.find_binaries()
    except ServiceError as error:
        pytest.skip(f"Superset's metastore needs PostgreSQL 15: {error}")
    with postgresql.PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def valkey_server(es_stack: EsStack) -> Iterator[valkey.ValkeyServer]:
    """Valkey/Redis with the password the secrets hook generated for Superset."""
    try:
        valkey.find_binaries()
    except ServiceError as error:
        pytest.skip(f"Superset's cache needs a Valkey or Redis server: {error}")
    password = es_stack.secret("t-superset")["REDIS_PASSWORD"]
    with valkey.ValkeyServer(password=password) as server:
        yield server


def cnpg_app_secret(cluster: str, namespace: str, dbname: str, username: str, password: str,
                    host: str | None = None, port: int = 5432) -> dict[str, str]:  # fmt: skip
    """The data of the `<cluster>-app` Secret CloudNativePG generates, key for key.

    CloudNativePG points every key at the `<cluster>-rw` Service; that name resolves only
    in a cluster, so `host`/`port` (a loopback server) replace the Service's host and port
    where given, and nothing else changes shape."""
    short = host or f"{cluster}-rw"
    qualified = host or f"{cluster}-rw.{namespace}"
    return {
        "username": username,
        "password": password,
        "host": short,
        "port": str(port),
        "dbname": dbname,
        "uri": f"postgresql://{username}:{password}@{qualified}:{port}/{dbname}",
        "jdbc-uri": f"jdbc:postgresql://{qualified}:{port}/{dbname}"
                    f"?password={password}&user={username}",
        "pgpass": f"{short}:{port}:{dbname}:{username}:{password}\n",
    }


def cnpg_password() -> str:
    """A password of CloudNativePG's alphabet (letters and digits, 64 of them)."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(64))
