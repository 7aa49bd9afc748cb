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
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastack.net import free_port
from lastack.testing import sql_standin, xapi
from lastack.testing.services import elasticsearch, ingest_node, postgresql, ralph, superset, valkey
from lastack.testing.services.hookfiles import bootstrap_config, run_hook
from lastack.testing.services.processes import ServiceError
from tests.hooks.kube_standin import KubeStandIn
from tests.hooks.moodle_standin import StandinMoodle
from tests.hooks.superset_support import (
    CLUSTER,
    INDEX,
    INSTANCE,
    NAMESPACE,
    STATEMENTS,
    SupersetApi,
    snapshot,
    superset_installed,
    valkey_of,
    wire,
)
from tests.hooks.support import (
    ES_USER_SECRETS,
    WRITER_PASSWORD,
    EsStack,
    cnpg_app_secret,
    cnpg_password,
    kube_env,
    services_skip_reason,
    stack_config,
)


@pytest.fixture(scope="session")
def es_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EsStack]:
    reason = services_skip_reason()
    if reason:
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("es-stack")
    with KubeStandIn() as kube:
        port = free_port()
        config = stack_config(f"https://127.0.0.1:{port}")
        # Ralph's writer made by hand before the install, under the chart's name for it: its
        # password, full of URL-reserved characters, is what Ralph must get.
        kube.put_secret(
            ES_USER_SECRETS["writer"],
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


@pytest.fixture(params=[500, 502], ids=["moodle-5.0", "moodle-5.2-public"])
def moodle(request: pytest.FixtureRequest, tmp_path: Path) -> StandinMoodle:
    """The stand-in Moodle tree, in the layout before 5.1 and in the `public/` one."""
    return StandinMoodle(tmp_path / "moodle", branch=request.param)


@pytest.fixture(scope="session")
def metastore(es_stack: EsStack, postgres_server: postgresql.PostgresServer) -> dict[str, str]:
    """A migrated database owned by `app`, as CloudNativePG bootstraps one, and its
    `<cluster>-app` Secret in the Kubernetes stand-in; returns that Secret's data as read
    back from the stand-in (what `metastore.uriFrom` hands the operator)."""
    superset_installed()
    template, template_role = superset.ensure_template(postgres_server)
    password = cnpg_password()
    postgres_server.app_database("app", "app", password, template, template_role)
    es_stack.kube.put_secret(
        f"{CLUSTER}-app",
        cnpg_app_secret(CLUSTER, NAMESPACE, "app", "app", password,
                        postgres_server.host, postgres_server.port),
        "kubernetes.io/basic-auth",
    )  # fmt: skip
    return es_stack.secret(f"{CLUSTER}-app")


@pytest.fixture(scope="session")
def superset_server(es_stack, metastore, valkey_server) -> Iterator[superset.SupersetServer]:
    """Superset with everything from the Secrets, as the CR wires it: `secretKeyFrom`
    SUPERSET_SECRET_KEY, `metastore.uriFrom` the CNPG `uri`, `valkey.passwordFrom`
    REDIS_PASSWORD, the init command's admin password LA_STACK_ADMIN_PASSWORD."""
    generated = es_stack.secret("t-superset")
    # SQLite allowed for the charts on a SQL stand-in; the wiring never uses it.
    with superset.SupersetServer(
        allow_sqlite=True, instance=INSTANCE, metastore_uri=metastore["uri"],
        valkey=valkey_of(valkey_server, generated["REDIS_PASSWORD"]),
        secret_key=generated["SUPERSET_SECRET_KEY"],
        admin_password=generated["LA_STACK_ADMIN_PASSWORD"],
    ) as server:  # fmt: skip
        yield server


@pytest.fixture(scope="session")
def statements_index(es_stack: EsStack) -> list[dict]:
    """Generated statements in an index of their own, created by the bootstrap hook."""
    created = run_hook("es_bootstrap", es_stack.bootstrap_env(
        {**bootstrap_config(), "alias": INDEX, "testIndex": ""}))
    assert created.returncode == 0, created.stderr
    # Stored as Moodle sends them, live: the LRS stamps `stored` on arrival.
    statements = [{**s, "stored": s["timestamp"]} for s in xapi.generate(STATEMENTS, seed=31)]
    lines = []
    for statement in statements:
        lines += [json.dumps({"index": {"_id": statement["id"]}}), json.dumps(statement)]
    status, answer = es_stack.es.request_raw(
        "POST", f"/{INDEX}/_bulk?refresh=true", "\n".join(lines) + "\n", "application/x-ndjson"
    )
    assert status == 200 and not answer["errors"], answer
    return statements


@pytest.fixture(scope="session")
def sql_available(es_stack: EsStack) -> bool:
    return sql_standin.elasticsearch_has_sql(es_stack.es.request)


@pytest.fixture(scope="session")
def wired(es_stack, superset_server, statements_index, tmp_path_factory):
    """Two runs of the hook; the module's tests look at what they did."""
    tmp = tmp_path_factory.mktemp("superset-wiring")
    first = wire(es_stack, superset_server, tmp)
    assert first.returncode == 0, first.stderr + first.stdout + superset_server.log_tail()
    api = SupersetApi(superset_server.url, *superset_server.admin)
    before = snapshot(api)
    second = wire(es_stack, superset_server, tmp)
    assert second.returncode == 0, second.stderr
    return {"first": first, "second": second, "api": api, "before": before,
            "after": snapshot(api)}  # fmt: skip
