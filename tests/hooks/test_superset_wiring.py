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
(test_superset_wiring_charts.py, which says what that stand-in does not cover).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter

import pytest

from tests.hooks.superset_support import (
    DATABASE,
    INDEX,
    SupersetApi,
    bundle_copy,
    bundle_docs,
    datasets_of,
    statements_dataset_id,
    wire,
)
from tests.hooks.support import assert_one_sentence_failure

pytestmark = pytest.mark.hooks


class TestSupersetWiring:
    """The first run creates everything, the second changes nothing; existing objects are
    adopted; failures are one sentence."""

    # The first run creates everything; the second changes nothing.

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

    # One sentence, naming what to fix.

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

    # A database and dataset that already exist under the names are updated, not doubled.

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

    def test_should_keep_the_wiring_free_of_credentials_in_logs(self, wired, es_stack):
        _, password = es_stack.login("t-es-superset")
        output = wired["first"].stdout + wired["first"].stderr
        assert password not in output
        assert base64.b64encode(password.encode()).decode() not in output
