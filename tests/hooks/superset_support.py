"""What the Superset wiring tests share: the bundle and names they use, a client of
Superset's REST API, and the hook run as its Job runs it."""

from __future__ import annotations

import http.cookiejar
import json
import shutil
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from lastack.paths import CHART_DIR
from lastack.testing.services import superset, valkey
from lastack.testing.services.hookfiles import run_hook
from lastack.testing.services.processes import ServiceError
from lastack.testing.services.superset_operator import Valkey
from tests.hooks.support import EsStack

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
    "ECK's default distribution has it (test_superset_wiring_charts.py checks the numbers on "
    "SQLite)"
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


def valkey_of(server: valkey.ValkeyServer, password: str | None = None) -> Valkey:
    """The CR's `valkey` for `server`: its own password unless another is given."""
    return Valkey(server.host, server.port, server.password if password is None
                  else password)  # fmt: skip


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
