"""Post-install/post-upgrade hook: wire Superset to Elasticsearch, import the starter dashboards.

Run as `python3 /hooks/superset_wiring.py`. Environment:
  SETTINGS_FILE     JSON settings (below; required)
  SUPERSET_PASSWORD the Superset admin's password (required)
  ES_USERNAME       the read-only Elasticsearch user Superset connects as (required)
  ES_PASSWORD       its password (required)
  DEADLINE_SECONDS  overall time budget (default 300)

Settings (JSON): {"supersetUrl": "http://<superset>:8088", "username": "admin",
  "credentialsSecret": "<Secret named in messages>", "databaseName": "Learning analytics",
  "esUrl": "https://<es>-es-http.<ns>.svc:9200", "caFile": "<CA path inside Superset's Pods>",
  "index": "statements", "datasets": ["<more index names>"], "dashboards": true,
  "bundleDir": "<directory in Superset's export format>"}

Steps, each bounded by the deadline: wait for /health; log in through the REST API (JWT, then
a CSRF token); check the connection Superset will use (a refused login or an untrusted
certificate ends the run with one sentence; an Elasticsearch without SQL is a warning, repeated
in the last line, as the wiring is right without it); find the database and datasets by name
and reuse their uuids, so nothing is ever duplicated; import the bundle through Superset's
assets import, which creates or overwrites every object in place by uuid (the dashboard import
would leave existing charts and datasets as they were). The database password never enters
the bundle: it is sent apart, in `passwords`. Datasets come from the bundle rather than from
POST /api/v1/dataset/, which needs a non-empty index (Superset lists tables with
`SHOW VALID_TABLES`), so a fresh install with no statements yet works too.
"""

from __future__ import annotations

import io
import json
import re
import time
import urllib.parse
import zipfile
from dataclasses import dataclass
from typing import Any

from hooklib import Deadline, env, fail, log, read_json, retry, run
from superset_api import GATEWAY_STATUSES, SupersetApi, message, multipart, wait_healthy
from superset_bundle import BUNDLE_ROOT, extra_dataset, file_uuid, fill, read_bundle
from superset_connection import PASSWORD_MASK, check_connection, sqlalchemy_uri


@dataclass(frozen=True)
class Settings:
    superset_url: str
    username: str
    credentials_secret: str
    database_name: str
    es_url: str
    ca_file: str
    index: str
    datasets: tuple[str, ...]
    dashboards: bool
    bundle_dir: str


def load_settings(path: str) -> Settings:
    raw = read_json(path, "settings file")
    try:
        return Settings(
            superset_url=str(raw["supersetUrl"]).rstrip("/"),
            username=str(raw["username"]),
            credentials_secret=str(raw.get("credentialsSecret") or "the credentials Secret"),
            database_name=str(raw["databaseName"]),
            es_url=str(raw["esUrl"]).rstrip("/"),
            ca_file=str(raw["caFile"]),
            index=str(raw["index"]),
            datasets=tuple(str(d) for d in raw.get("datasets") or () if d != raw["index"]),
            dashboards=bool(raw.get("dashboards", True)),
            bundle_dir=str(raw["bundleDir"]),
        )
    except KeyError as error:
        fail(f"the settings file {path} lacks {error.args[0]!r}.")


class Wiring:
    def __init__(self, api: SupersetApi, settings: Settings) -> None:
        self.api = api
        self.settings = settings

    def existing_database(self) -> dict[str, Any] | None:
        found = self.api.find("database", ("database_name", "eq", self.settings.database_name))
        exact = [d for d in found if d.get("database_name") == self.settings.database_name]
        return exact[0] if exact else None

    def existing_dataset(self, database_id: int, table: str) -> dict[str, Any] | None:
        found = self.api.find(
            "dataset", ("table_name", "eq", table), ("database", "rel_o_m", database_id)
        )
        exact = [d for d in found if d.get("table_name") == table]
        return exact[0] if exact else None

    def existing_dashboard(self, slug: str) -> dict[str, Any] | None:
        answer = self.api.call("GET", f"/api/v1/dashboard/{urllib.parse.quote(slug)}")
        return answer.body.get("result") if answer.status == 200 else None

    def bundle(self, masked_uri: str) -> tuple[bytes, str, list[str], dict[str, str]]:
        """The zip to import, the database file's name, the new extra tables, and the
        dashboards it holds (slug: title)."""
        s = self.settings
        files = read_bundle(s.bundle_dir)
        if not s.dashboards:
            files = {p: t for p, t in files.items() if not p.startswith(("charts/", "dashboards/"))}
        database_files = [p for p in files if p.startswith("databases/")]
        if len(database_files) != 1:
            fail(f"the bundle must hold one database file, not {len(database_files)}.")
        database_file = database_files[0]
        renames: dict[str, str] = {}
        database = self.existing_database()
        if database:
            # Reuse the uuid of a database of that name, e.g. one clicked in by hand.
            renames[file_uuid(files[database_file], database_file)] = str(database["uuid"])
        main_uuid = renames.get(file_uuid(files[database_file], database_file)) or file_uuid(
            files[database_file], database_file
        )
        new_tables: list[str] = []
        for table in s.datasets:
            if not (database and self.existing_dataset(database["id"], table)):
                files[f"datasets/la_stack_extra/{table}.yaml"] = extra_dataset(table, main_uuid)
                new_tables.append(table)
        for path, text in files.items():
            if path.startswith("datasets/") and '"${table}"' in text and database:
                current = self.existing_dataset(database["id"], s.index)
                if current:
                    renames[file_uuid(text, path)] = str(current["uuid"])
        dashboards: dict[str, str] = {}
        for path, text in files.items():
            if path.startswith("dashboards/"):
                slug = re.search(r"^slug:\s*(\S+)\s*$", text, re.MULTILINE)
                title = re.search(r"^dashboard_title:\s*(.+?)\s*$", text, re.MULTILINE)
                if slug:
                    dashboards[slug.group(1)] = title.group(1) if title else slug.group(1)
                    current = self.existing_dashboard(slug.group(1))
                    if current and current.get("uuid"):
                        renames[file_uuid(text, path)] = str(current["uuid"])
        values = {"database_name": s.database_name, "sqlalchemy_uri": masked_uri, "table": s.index}
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path, text in sorted(files.items()):
                text = fill(text, values, path)
                for old, new in renames.items():
                    text = text.replace(old, new)
                zipped.writestr(f"{BUNDLE_ROOT}/{path}", text)
        return archive.getvalue(), database_file, new_tables, dashboards

    def import_bundle(self, data: bytes, database_file: str, password: str) -> None:
        body, content_type = multipart(
            {"passwords": json.dumps({database_file: password})},
            {"bundle": ("la-stack-superset-bundle.zip", data)},
        )
        answer = retry(
            # A 500 here is Superset rejecting the bundle, not a passing outage.
            lambda: self.api.send(
                "POST", "/api/v1/assets/import/", body, content_type, GATEWAY_STATUSES
            ),
            "importing the dashboard bundle",
            self.api.deadline,
        )
        if answer.status != 200:
            fail(
                f"Superset refused the dashboard bundle (HTTP {answer.status}: {message(answer)})."
            )

    def refresh_columns(self, table: str) -> None:
        database = self.existing_database()
        dataset = database and self.existing_dataset(database["id"], table)
        if not dataset:
            fail(f"dataset {table!r} is missing after the import.")
        # Superset answers 500 when Elasticsearch cannot list the columns: not worth a retry.
        answer = self.api.call(
            "PUT", f"/api/v1/dataset/{dataset['id']}/refresh", transient=GATEWAY_STATUSES
        )
        if answer.status == 200:
            log(f"dataset {table!r}: created, columns read from Elasticsearch")
        else:
            log(
                f"warning: dataset {table!r}: created, but its columns could not be read from "
                f"Elasticsearch yet ({message(answer)}); use 'Sync columns from source' later."
            )


def main() -> None:
    deadline = Deadline.from_env()
    settings = load_settings(env("SETTINGS_FILE"))
    password = env("SUPERSET_PASSWORD")
    es_user, es_password = env("ES_USERNAME"), env("ES_PASSWORD")
    api = SupersetApi(settings.superset_url, deadline)
    start = time.monotonic()
    wait_healthy(api)
    api.login(settings.username, password, settings.credentials_secret)
    uri = sqlalchemy_uri(settings.es_url, es_user, es_password, settings.ca_file)
    queryable = check_connection(api, settings.database_name, settings.ca_file, uri, es_user)
    wiring = Wiring(api, settings)
    existed = wiring.existing_database() is not None
    masked = sqlalchemy_uri(settings.es_url, es_user, PASSWORD_MASK, settings.ca_file)
    data, database_file, new_tables, dashboards = wiring.bundle(masked)
    wiring.import_bundle(data, database_file, es_password)
    database = wiring.existing_database()
    if not database:
        fail(f"database {settings.database_name!r} is missing after the import.")
    log(f"database {settings.database_name!r}: {'updated' if existed else 'created'} "
        f"(id {database['id']}), reading index {settings.index!r} as {es_user}")  # fmt: skip
    for table in new_tables:
        wiring.refresh_columns(table)
    for slug, title in dashboards.items():
        if not wiring.existing_dashboard(slug):
            fail(f"dashboard {title} is missing after the import.")
        log(f"dashboard {title}: {settings.superset_url}/superset/dashboard/{slug}/")
    # Without SQL the run still succeeds: what it made is complete and ECK's default
    # distribution serves SQL; the last line says why the charts are empty meanwhile.
    waiting = "" if queryable else "; the charts stay empty until Elasticsearch serves SQL"
    log(
        f"superset wiring: done in {time.monotonic() - start:.0f}s "
        f"({len(dashboards)} dashboards, bundle imported in place){waiting}"
    )


if __name__ == "__main__":
    run(main)
