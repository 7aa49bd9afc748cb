"""What the hooks tier's tests share: running a hook and reading its failure, the secrets
hook's environment against the Kubernetes stand-in, the session's config, and the shapes of
the Secrets other operators make. A plain module: tests import it, conftest.py uses it for
its fixtures."""

from __future__ import annotations

import copy
import json
import secrets
import shutil
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lastack.chart.render import RELEASE_NAME, render_chart
from lastack.testing.services import elasticsearch, ralph
from lastack.testing.services.es_distribution import find_java
from lastack.testing.services.hookfiles import bootstrap_config, bootstrap_env
from lastack.testing.services.processes import ServiceError
from tests.hooks.kube_standin import TOKEN, KubeStandIn

# A user-provided password full of URL-reserved characters, on purpose.
WRITER_PASSWORD = "r@lph:p/ss%w?rd#1&+= x"
# The chart's helm-test index (its default values), and a write alias rolled over in tests.
TEST_INDEX = bootstrap_config()["testIndex"]
ROLLED_ALIAS = "statements_rolled"
# The session's release: the chart's defaults, with its own names for the Secrets the tests
# read, and a read-only LRS account for the dashboards besides the chart's.
SESSION_RELEASE = "t"
ES_USER_SECRETS = {"writer": "t-es-ralph", "reader": "t-es-superset",
                   "bootstrap": "t-es-bootstrap"}
SESSION_VALUES: dict[str, Any] = {
    "fullnameOverride": SESSION_RELEASE,
    "eck-elasticsearch": {"auth": {"fileRealm": [{"secretName": s}
                                                 for s in ES_USER_SECRETS.values()]}},
    "elasticsearch": {"users": {role: {"secretName": s} for role, s in ES_USER_SECRETS.items()}},
    "lrs": {"accounts": {"dashboards": {
        "username": "dashboards", "mbox": "mailto:dashboards@example.org",
        "scopes": ["statements/read"], "secretName": "{{ .Release.Name }}-lrs-dashboards",
        "existingSecret": ""}}},
    "ralph": {"lrsEnvSecret": "t-ralph-env", "lrsAuthSecret": "t-ralph-auth"},
}  # fmt: skip
# Only the chart's helm-test account has a `target` (its values give accounts none); the
# rollover tests need one more account writing to an alias of its own.
ROLLED_ACCOUNT = {"secret": "t-lrs-rolled", "username": "rolled",
                  "scopes": ["statements/write", "statements/read/mine"],
                  "agent": {"mbox": "mailto:rolled@example.org"}, "existingSecret": "",
                  "target": ROLLED_ALIAS}  # fmt: skip


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
        find_java()
    except ServiceError as error:
        return f"hooks tier needs a JDK: {error}"
    if not elasticsearch.installed() and not shutil.which("mvn"):
        return "hooks tier needs Maven to fetch Elasticsearch: apt-get install maven"
    return None


def rendered_secrets_config(values: dict | None = None, name: str = RELEASE_NAME) -> dict:
    """The secrets hook's config, secrets.json, as the chart renders it from `values`."""
    objects = render_chart(values, name=name, subcharts=())
    (configmap,) = [o for o in objects
                    if o["kind"] == "ConfigMap" and "secrets.json" in o.get("data", {})]
    return json.loads(configmap["data"]["secrets.json"])


def stack_config(es_url: str | None = None) -> dict[str, Any]:
    """The session's secrets config: the chart's render of SESSION_VALUES and ROLLED_ACCOUNT,
    Ralph pointed at `es_url` when given (a loopback server stands in for ECK's Service)."""
    config = rendered_secrets_config(SESSION_VALUES, SESSION_RELEASE)
    config["lrsAccounts"].append(copy.deepcopy(ROLLED_ACCOUNT))
    if es_url:
        config["ralph"]["esUrl"] = es_url
    return config


def entry(config: dict[str, Any], kind: str, secret: str) -> dict[str, Any]:
    """The `kind` entry (esUsers, lrsAccounts, generic) of `config` whose Secret is `secret`."""
    return next(e for e in config[kind] if e["secret"] == secret)


def account_of(entries: list[dict[str, Any]], username: str) -> dict[str, Any]:
    """The entry of an account list (the config's, or auth.json's) for `username`."""
    return next(e for e in entries if e["username"] == username)


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


def ralph_python() -> str:
    """Ralph's interpreter (the hook image's Python and bcrypt), installed on demand."""
    try:
        ralph.install()
    except ServiceError as error:
        pytest.skip(f"Ralph's venv could not be installed: {error}")
    return str(ralph.PYTHON)


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

