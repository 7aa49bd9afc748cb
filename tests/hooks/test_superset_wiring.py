"""superset_wiring.py against a real Superset (PyPI, the chart's appVersion) and the real
Elasticsearch of this tier, loaded with generated Moodle-like statements.

Superset runs as the Superset operator runs it: its metastore is a real PostgreSQL 15 reached
through the `uri` of a Secret shaped like CloudNativePG's `<cluster>-app`, its cache, Celery
broker and results backend a real Valkey/Redis with the `REDIS_PASSWORD` the secrets hook
generated, its SECRET_KEY and admin password the other keys of that Secret. What the wiring
made is also read where it lives: rows of the metastore, keys in Valkey.

The Elasticsearch here is Maven Central's integ-test-zip distribution, which has no x-pack-sql
module: `/_sql` answers 405, so Superset can store and test the connection (Elasticsearch
authenticates the reader) but cannot run a chart's query. The query through Elasticsearch SQL
is skipped with that reason; everything else (database, URI, datasets, dashboards,
idempotence, failures, the SQL each chart compiles to) is checked against the real services,
and what every chart computes is checked on a SQLite copy of the stored statements
(TestChartsOnASqlStandIn, which says what that stand-in does not cover).
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from lastack.net import free_port
from lastack.paths import CHART_DIR, shared_dir
from lastack.testing import sql_standin, xapi
from lastack.testing.services import postgresql, superset, valkey
from lastack.testing.services.processes import ServiceError
from tests.hooks.conftest import (
    EsStack,
    assert_one_sentence_failure,
    bootstrap_config,
    cnpg_app_secret,
    cnpg_password,
    run_hook,
)
from tests.hooks.statement_dimensions import verb_of, with_expected_dimensions

pytestmark = pytest.mark.hooks

BUNDLE = CHART_DIR / "files" / "superset"
INDEX = "statements_superset"  # a write alias of its own
DATABASE = "Learning analytics"
STATEMENTS = 400
INSTANCE = "t-superset"  # the Superset CR's name: the operator prefixes cache keys with it
CLUSTER = "t-superset-db"  # the CloudNativePG Cluster of the metastore
NAMESPACE = "la-stack"
# Where the operator's generated config keeps what (its defaults for `spec.valkey`, v0.2.0):
# Valkey database and key prefix.
DATA_CACHE = 2, f"{INSTANCE}_superset_data_"
EXPLORE_CACHE = 4, f"{INSTANCE}_superset_explore_"
NO_SQL = (
    "the hooks tier's Elasticsearch (Maven Central's integ-test-zip distribution) has no "
    "x-pack-sql module, so /_sql answers 405 and Superset cannot run a chart's query here; "
    "ECK's default distribution has it (TestChartsOnASqlStandIn checks the numbers on SQLite)"
)


class SupersetApi:
    """Just enough of Superset's REST API for the assertions (JWT + CSRF session)."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.headers = {"Accept": "application/json"}
        status, body = self.request("POST", "/api/v1/security/login", {
            "username": user, "password": password, "provider": "db", "refresh": False})
        assert status == 200, body
        self.headers["Authorization"] = f"Bearer {body['access_token']}"
        _, body = self.request("GET", "/api/v1/security/csrf_token/")
        self.headers.update({"X-CSRFToken": body["result"], "Referer": url + "/"})

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        headers = {**self.headers, **({"Content-Type": "application/json"} if data else {})}
        req = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with self.opener.open(req, timeout=60) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as answer:
            status, raw = answer.code, answer.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def all(self, resource: str) -> list[dict]:
        status, body = self.request("GET", f"/api/v1/{resource}/?q=(page_size:100)")
        assert status == 200, body
        return body["result"]

    def get(self, resource: str, key: Any) -> dict:
        status, body = self.request("GET", f"/api/v1/{resource}/{key}")
        assert status == 200, body
        return body["result"]


def superset_installed() -> None:
    try:
        superset.install()
    except ServiceError as error:
        pytest.skip(f"Superset's venv could not be installed from PyPI: {error}")


@pytest.fixture(scope="module")
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


def valkey_of(server: valkey.ValkeyServer, password: str | None = None) -> superset.Valkey:
    """The CR's `valkey` for `server`: its own password unless another is given."""
    return superset.Valkey(server.host, server.port, server.password if password is None
                           else password)  # fmt: skip


@pytest.fixture(scope="module")
def superset_server(es_stack, metastore, valkey_server) -> Iterator[superset.SupersetServer]:
    """Superset with everything from the Secrets, as the CR wires it: `secretKeyFrom`
    SUPERSET_SECRET_KEY, `metastore.uriFrom` the CNPG `uri`, `valkey.passwordFrom`
    REDIS_PASSWORD, the init command's admin password LA_STACK_ADMIN_PASSWORD."""
    generated = es_stack.secret("t-superset")
    # SQLite allowed for TestChartsOnASqlStandIn; the wiring never uses it.
    with superset.SupersetServer(
        allow_sqlite=True, instance=INSTANCE, metastore_uri=metastore["uri"],
        valkey=valkey_of(valkey_server, generated["REDIS_PASSWORD"]),
        secret_key=generated["SUPERSET_SECRET_KEY"],
        admin_password=generated["LA_STACK_ADMIN_PASSWORD"],
    ) as server:  # fmt: skip
        yield server


@pytest.fixture(scope="module")
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


@pytest.fixture(scope="module")
def sql_available(es_stack: EsStack) -> bool:
    return sql_standin.elasticsearch_has_sql(es_stack.es.request)


def settings(es_stack: EsStack, server: superset.SupersetServer, **overrides: Any) -> dict:
    base = {
        "supersetUrl": server.url, "username": server.admin[0],
        "credentialsSecret": "t-superset", "databaseName": DATABASE,
        "esUrl": es_stack.es.url, "caFile": str(es_stack.es.ca_file), "index": INDEX,
        "datasets": [], "dashboards": True, "bundleDir": str(BUNDLE),
    }  # fmt: skip
    return {**base, **overrides}


def wire(es_stack: EsStack, server: superset.SupersetServer, tmp_path: Path,
         env: dict[str, str] | None = None, **overrides: Any):  # fmt: skip
    settings_file = tmp_path / "wiring.json"
    settings_file.write_text(json.dumps(settings(es_stack, server, **overrides)))
    user, password = es_stack.login("t-es-superset")
    base = {
        "SETTINGS_FILE": str(settings_file),
        "SUPERSET_PASSWORD": server.admin_password,
        "ES_USERNAME": user,
        "ES_PASSWORD": password,
        "DEADLINE_SECONDS": "120",
    }
    return run_hook("superset_wiring", {**base, **(env or {})}, timeout=200)


@pytest.fixture(scope="module")
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


def snapshot(api: SupersetApi) -> dict[str, Any]:
    """What a re-run must not change: objects, ids, uuids, URIs, chart params, layouts."""
    databases = {d["uuid"]: (d["id"], d["database_name"]) for d in api.all("database")}
    details = {u: api.get("database", f"{i}/connection") for u, (i, _) in databases.items()}
    return {
        "databases": databases,
        "uris": {u: (d["sqlalchemy_uri"], d["extra"]) for u, d in details.items()},
        "datasets": {d["uuid"]: (d["id"], d["table_name"]) for d in api.all("dataset")},
        "charts": {c["id"]: (c["slice_name"], api.get("chart", c["id"])["params"])
                   for c in api.all("chart")},
        "dashboards": {d["id"]: (d["slug"], api.get("dashboard", d["id"])["position_json"])
                       for d in api.all("dashboard")},
    }  # fmt: skip


def bundle_docs(pattern: str) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted(BUNDLE.glob(pattern))]


def statements_dataset_id(api: SupersetApi) -> int:
    return next(d["id"] for d in api.all("dataset") if d["table_name"] == INDEX)


def chart_query_context(chart: dict, dataset_id: int, result_type: str) -> dict:
    """The query context Superset's frontend would send for our three kinds of chart."""
    params = chart["params"]
    filters = [{"col": f["subject"], "op": f["operator"],
                **({"val": f["comparator"]} if "comparator" in f else {})}  # IS NOT NULL: none
               for f in params["adhoc_filters"]]  # fmt: skip
    query: dict[str, Any] = {"filters": filters, "row_limit": params.get("row_limit", 100)}
    if params["viz_type"].startswith("echarts_timeseries"):
        axis = {"columnType": "BASE_AXIS", "sqlExpression": params["x_axis"],
                "label": "__timestamp", "expressionType": "SQL",
                "timeGrain": params["time_grain_sqla"]}  # fmt: skip
        query.update(columns=[axis, *params["groupby"]], metrics=params["metrics"],
                     orderby=[[params["metrics"][0], False]])  # fmt: skip
    elif params["viz_type"] in ("table", "funnel"):
        metrics = params.get("metrics") or [params["metric"]]
        query.update(columns=params["groupby"], metrics=metrics,
                     orderby=[[metrics[0], False]])  # fmt: skip
    else:
        query.update(columns=[], metrics=[params["metric"]])
    return {"datasource": {"id": dataset_id, "type": "table"}, "force": True,
            "queries": [query], "result_format": "json", "result_type": result_type}  # fmt: skip


class TestWiring:
    """The first run creates everything; the second changes nothing."""

    def test_should_create_the_database_with_the_readers_verified_uri(self, wired, es_stack):
        api = wired["api"]
        databases = [d for d in api.all("database") if d["database_name"] == DATABASE]
        assert len(databases) == 1
        (bundle_db,) = bundle_docs("databases/*.yaml")
        assert databases[0]["uuid"] == bundle_db["uuid"], "the bundle's fixed uuid"
        detail = api.get("database", f"{databases[0]['id']}/connection")
        user, _ = es_stack.login("t-es-superset")
        host = urllib.parse.urlsplit(es_stack.es.url).netloc
        uri = urllib.parse.urlsplit(detail["sqlalchemy_uri"])
        assert uri._replace(query="").geturl() == f"elasticsearch+https://{user}:XXXXXXXXXX@{host}/"
        assert urllib.parse.parse_qs(uri.query) == {"ca_certs": [str(es_stack.es.ca_file)]}
        assert "verify_certs" not in detail["sqlalchemy_uri"]
        assert json.loads(detail["extra"]) == bundle_db["extra"]
        assert detail["expose_in_sqllab"] is True

    def test_should_reach_elasticsearch_as_the_reader(self, wired, sql_available):
        user = "la-stack-superset"
        if sql_available:
            assert f"connection test passed as {user}" in wired["first"].stdout
        else:
            assert f"Elasticsearch authenticated {user} but has no SQL endpoint" in (
                wired["first"].stdout
            )

    def test_should_end_saying_why_the_charts_are_empty_without_sql(self, wired, sql_available):
        """Without an SQL endpoint the run succeeds (the wiring is complete) and its last line
        repeats that the charts wait for one; with one, the line does not say it."""
        last = wired["first"].stdout.splitlines()[-1]
        assert last.startswith("superset wiring: done"), last
        waiting = "the charts stay empty until Elasticsearch serves SQL"
        assert (waiting in last) is not sql_available, last

    def test_should_create_the_statements_dataset(self, wired):
        api = wired["api"]
        (bundle_ds,) = bundle_docs("datasets/*/*.yaml")
        datasets = [d for d in api.all("dataset") if d["table_name"] == INDEX]
        assert [d["uuid"] for d in datasets] == [bundle_ds["uuid"]]
        detail = api.get("dataset", datasets[0]["id"])
        assert detail["main_dttm_col"] == "timestamp"
        assert {c["column_name"] for c in detail["columns"]} == {
            c["column_name"] for c in bundle_ds["columns"]}
        assert {m["metric_name"] for m in detail["metrics"]} >= {"count", "learners"}

    def test_should_import_the_dashboards_with_their_charts(self, wired):
        api = wired["api"]
        expected = {d["slug"]: d for d in bundle_docs("dashboards/*.yaml")}
        charts = {c["uuid"] for c in bundle_docs("charts/*.yaml")}
        for slug, doc in expected.items():
            dashboard = api.get("dashboard", slug)
            assert dashboard["dashboard_title"] == doc["dashboard_title"]
            status, body = api.request("GET", f"/api/v1/dashboard/{slug}/charts")
            assert status == 200 and body["result"], body
        assert {c["uuid"] for c in api.all("chart")} >= charts
        assert len(expected) == 4
        assert "dashboard Course overview:" in wired["first"].stdout

    def test_should_filter_every_dashboard_by_course_after_import(self, wired):
        """The native filters survive the import, pointed at the imported dataset."""
        api = wired["api"]
        dataset_id = statements_dataset_id(api)
        for doc in bundle_docs("dashboards/*.yaml"):
            metadata = json.loads(api.get("dashboard", doc["slug"])["json_metadata"])
            targets = {f["name"]: f["targets"][0]
                       for f in metadata["native_filter_configuration"]}
            assert targets["Course"] == {"column": {"name": "la_stack.course.name"},
                                         "datasetId": dataset_id}, doc["slug"]
            assert "Time range" in targets, doc["slug"]

    def test_should_change_nothing_on_a_second_run(self, wired):
        assert wired["after"] == wired["before"]
        assert "database 'Learning analytics': updated" in wired["second"].stdout

    def test_should_create_no_duplicates(self, wired):
        api = wired["api"]
        names = Counter(d["database_name"] for d in api.all("database"))
        assert names[DATABASE] == 1
        database = next(d for d in api.all("database") if d["database_name"] == DATABASE)
        assert [d["table_name"] for d in datasets_of(api, database["id"])] == [INDEX]
        slugs = Counter(d["slug"] for d in api.all("dashboard"))
        assert all(count == 1 for count in slugs.values())
        titles = Counter(c["slice_name"] for c in api.all("chart"))
        assert all(count == 1 for count in titles.values())


class TestMetastore:
    """What the wiring made is rows in PostgreSQL, which Superset reached through the
    CloudNativePG `uri` as the Cluster's `app` owner (read here with psql, as a DBA would)."""

    def test_should_connect_as_the_clusters_app_user(self, wired, postgres_server, metastore):
        sessions = postgres_server.query(
            "SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = 'app'")
        assert [metastore["username"]] in sessions
        owners = postgres_server.query(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'", "app")
        assert owners == [["app"]]

    def test_should_store_the_database_without_the_readers_password(
        self, wired, postgres_server, es_stack
    ):
        (bundle_db,) = bundle_docs("databases/*.yaml")
        rows = postgres_server.query(
            f"SELECT uuid, row_to_json(dbs)::text FROM dbs WHERE database_name = '{DATABASE}'",
            "app")  # fmt: skip
        assert [row[0] for row in rows] == [bundle_db["uuid"]]
        _, password = es_stack.login("t-es-superset")
        assert password not in rows[0][1], "encrypted with SUPERSET_SECRET_KEY, never in clear"

    def test_should_store_the_dataset_and_the_dashboards(self, wired, postgres_server):
        tables = postgres_server.query(
            "SELECT t.table_name FROM tables t JOIN dbs d ON d.id = t.database_id "
            f"WHERE d.database_name = '{DATABASE}'", "app")  # fmt: skip
        assert tables == [[INDEX]]
        dashboards = dict(postgres_server.query("SELECT slug, dashboard_title FROM dashboards",
                                                "app"))  # fmt: skip
        assert dashboards.items() >= {
            (d["slug"], d["dashboard_title"]) for d in bundle_docs("dashboards/*.yaml")}
        charts = {row[0] for row in postgres_server.query("SELECT slice_name FROM slices", "app")}
        assert charts >= {c["slice_name"] for c in bundle_docs("charts/*.yaml")}


class TestValkey:
    """Superset keeps its state in Valkey under the operator's prefixes, with the generated
    password (redis-cli authenticates through REDISCLI_AUTH)."""

    def test_should_keep_an_explore_state_in_valkey(self, wired, valkey_server):
        api = wired["api"]
        dataset_id = statements_dataset_id(api)
        form = {"datasource": f"{dataset_id}__table", "viz_type": "table"}
        status, body = api.request("POST", "/api/v1/explore/form_data", {
            "datasource_id": dataset_id, "datasource_type": "table",
            "form_data": json.dumps(form)})  # fmt: skip
        assert status == 201, body
        db, prefix = EXPLORE_CACHE
        assert valkey_server.keys(db, prefix + "*"), "the state is a key in Valkey"
        status, stored = api.request("GET", f"/api/v1/explore/form_data/{body['key']}")
        assert status == 200 and json.loads(stored["form_data"])["viz_type"] == "table", stored
        valkey_server.cli("FLUSHDB", db=db)
        status, _ = api.request("GET", f"/api/v1/explore/form_data/{body['key']}")
        assert status == 404, "read from Valkey, nowhere else"


class TestBackingServiceFailures:
    """A Superset that cannot use its metastore or its Valkey fails to start, saying which
    and why, without the password."""

    def start(self, **options: Any) -> str:
        with pytest.raises(ServiceError) as failure, superset.SupersetServer(**options):
            pass
        return str(failure.value)

    def test_should_name_valkey_on_a_wrong_password(self, superset_server, metastore,
                                                    valkey_server):  # fmt: skip
        message = self.start(metastore_uri=metastore["uri"],
                             valkey=valkey_of(valkey_server, "not-the-password"))
        assert f"could not use Valkey at 127.0.0.1:{valkey_server.port}" in message
        assert "invalid username-password pair" in message
        assert "not-the-password" not in message

    def test_should_name_the_metastore_when_postgresql_is_unreachable(
        self, superset_server, metastore, valkey_server
    ):
        closed = free_port()
        uri = metastore["uri"].replace(f":{metastore['port']}/", f":{closed}/")
        message = self.start(metastore_uri=uri, valkey=valkey_of(valkey_server))
        assert f"could not use its metastore postgresql://app:***@127.0.0.1:{closed}/app" in (
            message)
        assert "Connection refused" in message
        assert metastore["password"] not in message

    def test_should_name_the_metastore_on_a_wrong_password(self, superset_server, metastore,
                                                           valkey_server):  # fmt: skip
        uri = metastore["uri"].replace(metastore["password"], "wrong")
        message = self.start(metastore_uri=uri, valkey=valkey_of(valkey_server))
        assert 'password authentication failed for user "app"' in message

    def test_should_give_up_at_the_deadline_when_the_metastore_goes_away(
        self, es_stack, metastore, postgres_server, valkey_server, tmp_path
    ):
        """A metastore lost under a running Superset (a failed-over or stopped Cluster):
        Superset still answers /health, its login fails, and the hook says so at its
        deadline."""
        template, template_role = superset.ensure_template(postgres_server)
        password = cnpg_password()
        postgres_server.app_database("lost", "lost", password, template, template_role)
        uri = metastore["uri"].replace(f"app:{metastore['password']}@", f"lost:{password}@")
        with superset.SupersetServer(metastore_uri=uri.replace("/app", "/lost"),
                                     valkey=valkey_of(valkey_server)) as server:  # fmt: skip
            postgres_server.query("ALTER ROLE lost NOLOGIN")
            postgres_server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE usename = 'lost'")  # fmt: skip
            result = wire(es_stack, server, tmp_path, {"DEADLINE_SECONDS": "8"})
        line = assert_one_sentence_failure(result, "gave up logging in to Superset",
                                           "DEADLINE_SECONDS")  # fmt: skip
        assert "POST /api/v1/security/login answered 500" in line, line


class TestChartQueries:
    """Every chart compiles to Elasticsearch SQL on single-valued fields; with SQL, the rows
    are the real statements' counts."""

    def test_should_compile_every_chart_to_elasticsearch_sql(self, wired):
        api = wired["api"]
        dataset_id = statements_dataset_id(api)
        for chart in bundle_docs("charts/*.yaml"):
            context = chart_query_context(chart, dataset_id, "query")
            status, body = api.request("POST", "/api/v1/chart/data", context)
            assert status == 200, (chart["slice_name"], body)
            sql = body["result"][0]["query"]
            assert f"FROM {INDEX}" in sql.replace('"', ""), sql
            assert "contextActivities" not in sql
            if chart["params"]["viz_type"].startswith("echarts_timeseries"):
                unit = {"P1D": "day", "P1W": "week", "PT1H": "hour"}[
                    chart["params"]["time_grain_sqla"]]
                assert f"DATE_TRUNC('{unit}', timestamp)" in sql, sql

    def test_should_return_rows_computed_from_the_statements(
        self, wired, statements_index, sql_available
    ):
        if not sql_available:
            pytest.skip(NO_SQL)
        api = wired["api"]
        chart = next(c for c in bundle_docs("charts/*.yaml")
                     if c["slice_name"] == "Statements by verb")  # fmt: skip
        context = chart_query_context(chart, statements_dataset_id(api), "full")
        status, body = api.request("POST", "/api/v1/chart/data", context)
        assert status == 200, body
        rows = {r["la_stack.verb.name"]: r["count"] for r in body["result"][0]["data"]}
        assert rows == dict(Counter(verb_of(s)["name"] for s in statements_index))


class TestFailures:
    """One sentence, naming what to fix."""

    def test_should_name_the_connection_test_on_a_wrong_reader_password(
        self, es_stack, superset_server, statements_index, tmp_path
    ):
        result = wire(es_stack, superset_server, tmp_path, {"ES_PASSWORD": "not-the-password"})
        line = assert_one_sentence_failure(result, "connection test", DATABASE)
        assert "refused the password of the reader user" in line
        assert "not-the-password" not in result.stdout + result.stderr

    def test_should_name_the_admin_password_on_a_refused_login(
        self, es_stack, superset_server, tmp_path
    ):
        result = wire(es_stack, superset_server, tmp_path, {"SUPERSET_PASSWORD": "nope"})
        assert_one_sentence_failure(result, "refused the login", "LA_STACK_ADMIN_PASSWORD")

    def test_should_give_up_at_the_deadline_when_superset_is_down(
        self, es_stack, superset_server, tmp_path
    ):
        result = wire(es_stack, superset_server, tmp_path, {"DEADLINE_SECONDS": "3"},
                      supersetUrl="http://127.0.0.1:9")  # fmt: skip
        assert_one_sentence_failure(result, "/health", "DEADLINE_SECONDS")


class TestAdoption:
    """A database and dataset that already exist under the names are updated, not doubled."""

    def test_should_reuse_objects_found_by_name(
        self, es_stack, superset_server, statements_index, tmp_path
    ):
        copy = bundle_copy(tmp_path, "beef")
        # Another table name per database: a SQLite metastore keeps table names unique.
        options = {"databaseName": "Adopted", "dashboards": False, "index": INDEX + "-a"}
        made = wire(es_stack, superset_server, tmp_path, bundleDir=str(copy), **options)
        assert made.returncode == 0, made.stderr
        again = wire(es_stack, superset_server, tmp_path, **options)
        assert again.returncode == 0, again.stderr
        assert "database 'Adopted': updated" in again.stdout
        api = SupersetApi(superset_server.url, *superset_server.admin)
        adopted = [d for d in api.all("database") if d["database_name"] == "Adopted"]
        assert len(adopted) == 1 and adopted[0]["uuid"].endswith("beef")
        assert [d["table_name"] for d in datasets_of(api, adopted[0]["id"])] == [INDEX + "-a"]
        assert [d["database_name"] for d in api.all("database")].count(DATABASE) == 1

    def test_should_register_more_indices_once(
        self, es_stack, superset_server, statements_index, sql_available, tmp_path
    ):
        copy = bundle_copy(tmp_path, "cafe")
        options = {"databaseName": "More indices", "dashboards": False, "index": INDEX + "-m",
                   "datasets": [INDEX + "-b"], "bundleDir": str(copy)}  # fmt: skip
        runs = [wire(es_stack, superset_server, tmp_path, **options) for _ in range(2)]
        for result in runs:
            assert result.returncode == 0, result.stderr
        api = SupersetApi(superset_server.url, *superset_server.admin)
        database = next(d for d in api.all("database") if d["database_name"] == "More indices")
        tables = Counter(d["table_name"] for d in datasets_of(api, database["id"]))
        assert tables == {INDEX + "-m": 1, INDEX + "-b": 1}
        if not sql_available:
            assert "use 'Sync columns from source' later" in runs[0].stdout
        assert f"dataset '{INDEX}-b'" not in runs[1].stdout, "created once"


def bundle_copy(tmp_path: Path, tag: str) -> Path:
    """The bundle with other uuids for its database and dataset, as if made elsewhere."""
    copy = tmp_path / f"bundle-{tag}"
    shutil.copytree(BUNDLE, copy)
    for path in copy.rglob("*.yaml"):
        text = path.read_text()
        for doc in (*bundle_docs("databases/*.yaml"), *bundle_docs("datasets/*/*.yaml")):
            text = text.replace(doc["uuid"], doc["uuid"][:-4] + tag)
        path.write_text(text)
    return copy


def datasets_of(api: SupersetApi, database_id: int) -> list[dict]:
    return [d for d in api.all("dataset") if d["database"]["id"] == database_id]


def test_should_keep_the_wiring_free_of_credentials_in_logs(wired, es_stack):
    _, password = es_stack.login("t-es-superset")
    output = wired["first"].stdout + wired["first"].stderr
    assert password not in output
    assert base64.b64encode(password.encode()).decode() not in output


def test_should_keep_the_backing_passwords_out_of_supersets_log(
    wired, superset_server, metastore, es_stack
):
    assert superset_server.log_file is not None
    log = superset_server.log_file.read_text(errors="replace")
    assert "POST /api/v1/security/login" in log, "the log is the server's"
    for secret in (metastore["password"], es_stack.secret("t-superset")["REDIS_PASSWORD"]):
        assert secret not in log


def expected_rows(chart: dict, statements: list[dict]) -> dict[tuple, tuple]:
    """What a chart must show, computed in Python from the statements: (day?, *groupby) ->
    metric values. The metrics are the dataset's: count, distinct learners, distinct objects."""
    params = chart["params"]
    metrics = params.get("metrics") or [params["metric"]]
    distinct = {"learners": "actor.account.name", "activities": "object.id",
                "courses": "la_stack.course.id"}
    # What each metric of the dataset computes over a group, NULLs left out as SQL does.
    of_values = {"average_score": ("result.score.scaled", lambda v: sum(v) / len(v)),
                 "last_stored": ("stored", max)}
    allowed = [(f["subject"], set(f["comparator"]) if f["operator"] == "IN"
                else {f["comparator"]})
               for f in params["adhoc_filters"] if f["operator"] in ("==", "IN")]
    present = [f["subject"] for f in params["adhoc_filters"] if f["operator"] == "IS NOT NULL"]
    timeseries = params["viz_type"].startswith("echarts_timeseries")
    groups: dict[tuple, list[dict]] = {}
    for statement in statements:
        if any(sql_standin.field(statement, col) not in values for col, values in allowed):
            continue
        if any(sql_standin.field(statement, col) is None for col in present):
            continue
        key = tuple(sql_standin.field(statement, col) for col in params.get("groupby") or [])
        if timeseries:
            key = (period(statement["timestamp"], params["time_grain_sqla"]), *key)
        groups.setdefault(key, []).append(statement)

    def value(metric: str, members: list[dict]) -> Any:
        if metric == "count":
            return len(members)
        if metric in of_values:
            column, combine = of_values[metric]
            values = [sql_standin.field(s, column) for s in members]
            present = [v for v in values if v is not None]
            if column == "stored":  # as the SQL copy holds it
                present = [sql_standin.sql_value(v, "DATETIME") for v in present]
            return combine(present) if present else None
        # COUNT(DISTINCT): NULL is no value
        return len({sql_standin.field(s, distinct[metric]) for s in members} - {None})

    return {key: tuple(value(metric, members) for metric in metrics)
            for key, members in groups.items()}


def period(timestamp: str, grain: str) -> str:
    """The start of the time grain holding `timestamp`, as shown_rows writes it: a day, an
    hour, or a week starting on Sunday (SQLite's P1W; Elasticsearch SQL starts on Monday,
    one of the dialect details the SQL stand-in does not cover)."""
    moment = datetime.fromisoformat(timestamp.replace("Z", "+00:00")).astimezone(UTC)
    if grain == "PT1H":
        return moment.strftime("%Y-%m-%dT%H")
    if grain == "P1W":
        moment -= timedelta(days=(moment.weekday() + 1) % 7)
    return moment.date().isoformat()


def shown_rows(chart: dict, data: list[dict]) -> dict[tuple, tuple]:
    """The rows Superset returned, in the shape of expected_rows."""
    params = chart["params"]
    metrics = params.get("metrics") or [params["metric"]]
    shown = {}
    for row in data:
        key = tuple(row[col] for col in params.get("groupby") or [])
        if params["viz_type"].startswith("echarts_timeseries"):
            moment = row["__timestamp"]
            when = (datetime.fromtimestamp(moment / 1000, UTC) if isinstance(moment, (int, float))
                    else datetime.fromisoformat(str(moment)).replace(tzinfo=UTC))
            shown_as = "%Y-%m-%dT%H" if params["time_grain_sqla"] == "PT1H" else "%Y-%m-%d"
            key = (when.strftime(shown_as), *key)
        shown[key] = tuple(row[metric] for metric in metrics)
    return shown


@pytest.fixture(scope="module")
def standin(wired, es_stack, superset_server, statements_index, ingest_node_server,
            tmp_path_factory):
    """The stored statements in SQLite, with `Learning analytics` pointed at them; at the end
    the wiring runs again, which points the database back at Elasticsearch."""
    tmp = tmp_path_factory.mktemp("sql-standin")
    stored = sql_standin.point_superset_at_copy(
        es_stack.es.request, INDEX, tmp / "statements.db", superset_server.url,
        superset_server.admin, DATABASE, derive=ingest_node_server.run_chart_pipeline)
    assert len(stored) == len(statements_index)
    yield stored
    restored = wire(es_stack, superset_server, tmp)
    assert restored.returncode == 0, restored.stderr


class TestChartsOnASqlStandIn:
    """Every chart of the bundle computes the right numbers from the stored statements.

    A stand-in, said plainly: Elasticsearch here has no SQL module, so the documents it stores
    are copied into a SQLite table with the dataset's columns and the `Learning analytics`
    database is pointed at it (lastack.testing.sql_standin), with the course columns the chart's
    ingest pipeline gives each statement (run on the ingest stand-in, see
    test_statements_dimensions). Superset compiles the same charts,
    metrics and filters for SQLite; Elasticsearch's SQL dialect is what this does not cover
    (test_should_compile_every_chart_to_elasticsearch_sql checks that each chart compiles to
    it). It runs last in the module.
    """

    def test_should_compute_every_chart_from_the_statements(self, wired, standin):
        check_every_chart(wired["api"], standin)

    def test_should_cache_the_chart_data_in_valkey(self, wired, standin, valkey_server):
        api = wired["api"]
        db, prefix = DATA_CACHE
        valkey_server.cli("FLUSHDB", db=db)
        chart = bundle_docs("charts/*.yaml")[0]
        context = chart_query_context(chart, statements_dataset_id(api), "full")
        status, body = api.request("POST", "/api/v1/chart/data", context)
        assert status == 200, body
        assert valkey_server.keys(db, prefix + "*"), "the result is cached in Valkey"


def check_every_chart(api: SupersetApi, stored: list[dict]) -> None:
    """Each chart of the bundle shows rows, and exactly the rows computed in Python from the
    stored statements (a top-N table: its rows, and nothing ranked higher left out)."""
    dataset_id = statements_dataset_id(api)
    for chart in bundle_docs("charts/*.yaml"):
        context = chart_query_context(chart, dataset_id, "full")
        status, body = api.request("POST", "/api/v1/chart/data", context)
        assert status == 200, (chart["slice_name"], body)
        shown = shown_rows(chart, body["result"][0]["data"])
        expected = expected_rows(chart, with_expected_dimensions(stored))
        assert shown, chart["slice_name"]
        assert shown.items() <= expected.items(), chart["slice_name"]
        if len(expected) > len(shown):  # a top-N table: the omitted rows rank lower
            assert len(shown) == chart["params"]["row_limit"], chart["slice_name"]
            lowest = min(values[0] for values in shown.values())
            assert all(expected[key][0] <= lowest for key in expected.keys() - shown.keys())


FIXTURE = shared_dir() / "fixtures" / "logstore_xapi-v5.1.0" / "statements.json"
FIXTURE_INDEX = "statements_logstore"


@pytest.fixture(scope="module")
def logstore_standin(wired, es_stack, superset_server, ingest_node_server, tmp_path_factory):
    """What Moodle really sends (logstore_xapi v5.1.0's own expected output), stored in a
    write alias of its own, copied to SQLite, `Learning analytics` pointed at the copy."""
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} is absent: the shared fixtures folder must sit beside the "
                    "checkout (or set LA_STACK_SHARED)")
    created = run_hook("es_bootstrap", es_stack.bootstrap_env(
        {**bootstrap_config(), "alias": FIXTURE_INDEX, "testIndex": ""}))
    assert created.returncode == 0, created.stderr
    lines = []
    for entry in json.loads(FIXTURE.read_text()):
        statement = {"id": str(uuid.uuid4()), **entry["statement"],  # as an LRS sets them
                     "stored": datetime.now(UTC).isoformat(timespec="milliseconds")}
        lines += [json.dumps({"index": {"_id": statement["id"]}}), json.dumps(statement)]
    status, answer = es_stack.es.request_raw(
        "POST", f"/{FIXTURE_INDEX}/_bulk?refresh=true", "\n".join(lines) + "\n",
        "application/x-ndjson")
    assert status == 200 and not answer["errors"], answer
    tmp = tmp_path_factory.mktemp("sql-standin-logstore")
    stored = sql_standin.point_superset_at_copy(
        es_stack.es.request, FIXTURE_INDEX, tmp / "statements.db", superset_server.url,
        superset_server.admin, DATABASE, table=INDEX,  # the table the dataset reads
        derive=ingest_node_server.run_chart_pipeline)
    assert len(stored) == len(lines) // 2
    yield stored
    restored = wire(es_stack, superset_server, tmp)
    assert restored.returncode == 0, restored.stderr


class TestChartsOnWhatMoodleSends:
    """The same check on the plugin's real statements: no starter chart is empty on them
    (the course panels were, while they knew only the older course type). Through the SQLite
    stand-in described above."""

    def test_should_compute_every_chart_from_the_plugins_statements(self, wired,
                                                                     logstore_standin):
        check_every_chart(wired["api"], logstore_standin)
