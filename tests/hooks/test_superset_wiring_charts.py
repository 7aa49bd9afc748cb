"""The starter charts superset_wiring.py imports: each compiles to Elasticsearch SQL, and
each computes the right numbers from the stored statements, checked on a SQLite copy
(the hooks tier's Elasticsearch has no SQL module; the stand-in is described where
it is used)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lastack.paths import shared_dir
from lastack.testing import sql_standin
from lastack.testing.services.hookfiles import bootstrap_config, run_hook
from tests.hooks.statement_dimensions import verb_of, with_expected_dimensions
from tests.hooks.superset_support import (
    DATA_CACHE,
    DATABASE,
    INDEX,
    NO_SQL,
    SupersetApi,
    bundle_docs,
    chart_query_context,
    statements_dataset_id,
    wire,
)

pytestmark = pytest.mark.hooks


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


class TestSupersetWiring:
    """What its charts query and show."""

    # Every chart compiles to Elasticsearch SQL on single-valued fields; with SQL, the rows
    # are the real statements' counts.

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

    # Every chart of the bundle computes the right numbers from the stored statements.
    #
    # A stand-in, said plainly: Elasticsearch here has no SQL module, so the documents it stores
    # are copied into a SQLite table with the dataset's columns and the `Learning analytics`
    # database is pointed at it (lastack.testing.sql_standin), with the course columns the chart's
    # ingest pipeline gives each statement (run on the ingest stand-in, see
    # test_elasticsearch_dimensions.py). Superset compiles the same charts,
    # metrics and filters for SQLite; Elasticsearch's SQL dialect is what this does not cover
    # (test_should_compile_every_chart_to_elasticsearch_sql checks that each chart compiles to
    # it). It runs last in the module.

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

    # The same check on the plugin's real statements: no starter chart is empty on them
    # (the course panels were, while they knew only the older course type). Through the SQLite
    # stand-in described above.

    def test_should_compute_every_chart_from_the_plugins_statements(self, wired,
                                                                     logstore_standin):
        check_every_chart(wired["api"], logstore_standin)
