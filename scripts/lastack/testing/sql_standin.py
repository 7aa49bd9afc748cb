"""A SQLite copy of a statements index: the SQL engine the starter dashboards run on where
Elasticsearch has no SQL module.

The Elasticsearch that Maven Central ships (the hooks tier's) lacks x-pack-sql, so Superset
cannot run a chart's query against it. To still check what the bundle's charts compute, and to
photograph them with data, the documents Elasticsearch stores are copied, one row per
statement, into a SQLite table with the dataset's columns (read from the bundle, so the two
cannot drift), and the `Learning analytics` database is pointed at that file. Superset then
compiles the same chart definitions for SQLite instead of Elasticsearch SQL. What only a real
Elasticsearch with SQL shows (its SQL dialect, the mapping's types) is not covered by this.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from lastack.paths import CHART_DIR
from lastack.testing.services.hookfiles import import_hook

DATASET_FILE = CHART_DIR / "files/superset/datasets/Learning_analytics/statements.yaml"
SQLITE_TYPES = {"VARCHAR": "TEXT", "BOOLEAN": "INTEGER", "DOUBLE": "REAL", "DATETIME": "TEXT"}
SCROLL_SIZE = 1000


def dataset_columns() -> list[tuple[str, str]]:
    """(column name, Superset type) of the bundle's statements dataset."""
    dataset = yaml.safe_load(DATASET_FILE.read_text())
    return [(c["column_name"], c["type"]) for c in dataset["columns"]]


def field(document: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted path (`verb.id`), or None where a level is missing."""
    value: Any = document
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def sql_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "DATETIME":
        # One text format SQLite's date functions read: UTC, no zone suffix.
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment.isoformat(sep=" ", timespec="milliseconds")
    if kind == "BOOLEAN":
        return int(bool(value))
    if isinstance(value, (dict, list)):
        raise ValueError(f"{value!r} is not single-valued")
    return value


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def write(path: Path, table: str, documents: Iterable[dict[str, Any]]) -> int:
    """(Re)create `table` in the SQLite file at `path` with one row per document."""
    columns = dataset_columns()
    names = ", ".join(quote(name) for name, _ in columns)
    rows = [tuple(sql_value(field(doc, name), kind) for name, kind in columns) for doc in documents]
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(f"DROP TABLE IF EXISTS {quote(table)}")
        declared = ", ".join(f"{quote(name)} {SQLITE_TYPES.get(kind, 'TEXT')}"
                             for name, kind in columns)  # fmt: skip
        db.execute(f"CREATE TABLE {quote(table)} ({declared})")
        marks = ", ".join("?" for _ in columns)
        db.executemany(f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})", rows)
    return len(rows)


def elasticsearch_has_sql(request: Any) -> bool:
    """Whether Elasticsearch answers SQL (`request` as for stored_documents)."""
    status, _ = request("POST", "/_sql", {"query": "SELECT 1"})
    return status == 200


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def stored_documents(request: Any, index: str) -> list[dict[str, Any]]:
    """Every document of `index`, as Elasticsearch returns it (`request` is an ES client's
    `request(method, path, body) -> (status, body)`), in pages of SCROLL_SIZE."""
    documents: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while True:
        query: dict[str, Any] = {"size": SCROLL_SIZE, "sort": [{"id": "asc"}]}
        if after is not None:
            query["search_after"] = after
        status, body = request("POST", f"/{index}/_search", query)
        if status != 200:
            raise RuntimeError(f"reading {index} failed ({status}): {str(body)[:300]}")
        hits = body["hits"]["hits"]
        documents += [hit["_source"] for hit in hits]
        if len(hits) < SCROLL_SIZE:
            return documents
        after = hits[-1]["sort"]


Derive = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def point_superset_at_copy(
    request: Any, index: str, database_file: Path, superset_url: str,
    admin: tuple[str, str], database_name: str = "Learning analytics", table: str = "",
    derive: Derive | None = None,
) -> list[dict[str, Any]]:
    """Copy `index` into `database_file` (as `table`, the one the datasets read; default: the
    index's name) and point Superset's `database_name` at it; return the copied documents.

    `derive` adds what the statements' ingest pipeline indexes outside `_source` (la_stack.*),
    which a copy of `_source` lacks: e.g. the pipeline run on testing.services.ingest_node."""
    documents = stored_documents(request, index)
    if derive is not None:
        documents = derive(documents)
    write(database_file, table or index, documents)
    superset_api = import_hook("superset_api")  # the wiring's client: login and CSRF handling
    api = superset_api.SupersetApi(superset_url, import_hook("hooklib").Deadline(60))
    api.login(*admin, "the local Superset")
    target = api.find("database", ("database_name", "eq", database_name))[0]
    answer = api.call("PUT", f"/api/v1/database/{target['id']}",
                      {"sqlalchemy_uri": sqlite_uri(database_file)})  # fmt: skip
    if answer.status != 200:
        raise RuntimeError(f"pointing {database_name} at the SQLite copy failed: {answer.body}")
    return documents
