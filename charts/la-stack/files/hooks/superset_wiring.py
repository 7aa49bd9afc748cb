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
import os
import re
import time
import urllib.parse
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

from hooklib import (
    RETRYABLE_STATUSES,
    Deadline,
    JsonClient,
    Response,
    TransientError,
    env,
    fail,
    log,
    read_json,
    retry,
    run,
)

PASSWORD_MASK = "XXXXXXXXXX"  # what Superset shows and accepts in place of a password
BUNDLE_ROOT = "la_stack_bundle"  # Superset strips the zip's top folder
PLACEHOLDER = re.compile(r'"\$\{([a-z_]+)\}"')
UUID_LINE = re.compile(r"^uuid:\s*([0-9a-f-]{36})\s*$", re.MULTILINE)
# Extra datasets get stable uuids derived from their table name.
DATASET_NAMESPACE = uuid.UUID("7d1e6c1a-3c4f-4a55-9a57-2b7f61f1f0d5")
REQUEST_TIMEOUT_SECONDS = 60.0
GATEWAY_STATUSES = frozenset({502, 503, 504})


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


def sqlalchemy_uri(es_url: str, username: str, password: str, ca_file: str) -> str:
    """elasticsearch-dbapi's URI: credentials URL-quoted, certificates verified with ca_file."""
    parts = urllib.parse.urlsplit(es_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        fail(f"esUrl {es_url!r} is not an http(s) URL.")
    if parts.username or parts.password:
        fail("esUrl must not carry credentials; the hook adds the reader's.")
    user = urllib.parse.quote(username, safe="")
    secret = password if password == PASSWORD_MASK else urllib.parse.quote(password, safe="")
    query = ""
    if parts.scheme == "https" and ca_file:
        query = "?" + urllib.parse.urlencode({"ca_certs": ca_file}, safe="/")
    return f"elasticsearch+{parts.scheme}://{user}:{secret}@{parts.netloc}/{query}"


def rison(value: Any) -> str:
    """Encode a filter for Superset's `q` parameter (Rison, the subset the API takes)."""
    if isinstance(value, bool):
        return "!t" if value else "!f"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, list | tuple):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    if isinstance(value, dict):
        return "(" + ",".join(f"{k}:{rison(v)}" for k, v in value.items()) + ")"
    fail(f"cannot encode {value!r} for the Superset API.")


def query(*filters: tuple[str, str, Any], columns: tuple[str, ...] = ()) -> str:
    spec: dict[str, Any] = {
        "filters": [{"col": c, "opr": o, "value": v} for c, o, v in filters],
        "page_size": 100,
    }
    if columns:
        spec["columns"] = list(columns)
    return "?q=" + urllib.parse.quote(rison(spec), safe="")


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "la-stack-" + uuid.uuid4().hex
    body = io.BytesIO()
    for name, value in fields.items():
        disposition = f'Content-Disposition: form-data; name="{name}"'
        body.write(f"--{boundary}\r\n{disposition}\r\n\r\n".encode())
        body.write(value.encode() + b"\r\n")
    for name, (filename, data) in files.items():
        body.write(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/zip\r\n\r\n'.encode()
        )
        body.write(data + b"\r\n")
    body.write(f"--{boundary}--\r\n".encode())
    return body.getvalue(), f"multipart/form-data; boundary={boundary}"


class SupersetApi(JsonClient):
    """Superset's REST API with a JWT and the CSRF token its session cookie goes with."""

    def __init__(self, base_url: str, deadline: Deadline) -> None:
        if not base_url.startswith(("http://", "https://")):
            fail(f"supersetUrl {base_url!r} is not an http(s) URL.")
        super().__init__(base_url, deadline, cookies=True)
        # Migrations and the assets import can keep one request busy for a while.
        self.request_timeout = REQUEST_TIMEOUT_SECONDS

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        what: str = "",
        transient: frozenset[int] = RETRYABLE_STATUSES,
    ) -> Response:
        """`request`, retried until the deadline."""
        return retry(
            lambda: self.request(method, path, body, transient=transient),
            what or f"{method} {path}",
            self.deadline,
        )

    def login(self, username: str, password: str, secret: str) -> None:
        answer = self.call(
            "POST", "/api/v1/security/login",
            {"username": username, "password": password, "provider": "db", "refresh": False},
            "logging in to Superset",
        )  # fmt: skip
        if answer.status == 401:
            fail(
                f"Superset refused the login of user {username!r}: the admin password in "
                f"{secret} (LA_STACK_ADMIN_PASSWORD) is not that user's password."
            )
        token = answer.body.get("access_token") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not token:
            fail(f"logging in to Superset failed (HTTP {answer.status}: {message(answer)}).")
        self.headers["Authorization"] = f"Bearer {token}"
        answer = self.call("GET", "/api/v1/security/csrf_token/", what="getting a CSRF token")
        csrf = answer.body.get("result") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not csrf:
            fail(f"Superset gave no CSRF token (HTTP {answer.status}: {message(answer)}).")
        self.headers["X-CSRFToken"] = csrf
        self.headers["Referer"] = self.base_url + "/"

    def find(self, resource: str, *filters: tuple[str, str, Any]) -> list[dict[str, Any]]:
        answer = self.call("GET", f"/api/v1/{resource}/" + query(*filters))
        if answer.status != 200 or not isinstance(answer.body, dict):
            fail(f"listing Superset {resource}s failed (HTTP {answer.status}: {message(answer)}).")
        return list(answer.body.get("result") or [])


def message(answer: Response) -> str:
    """The most telling text of a Superset error answer."""
    body = answer.body
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            text = str(first.get("message") or "")
            extra = first.get("extra")
            if isinstance(extra, dict):
                details = [str(v) for k, v in extra.items() if k not in {"issue_codes"} and v]
                if details:
                    text += " (" + "; ".join(details)[:600] + ")"
            return text or json.dumps(first)[:600]
        for key in ("message", "msg", "error"):
            if body.get(key):
                return json.dumps(body[key]) if not isinstance(body[key], str) else body[key]
    return str(body)[:600] or f"HTTP {answer.status}"


def wait_healthy(api: SupersetApi) -> None:
    def probe() -> None:
        answer = api.send("GET", "/health", None, "")
        if answer.status != 200:
            raise TransientError(f"/health answered {answer.status}")

    retry(probe, "waiting for Superset's /health", api.deadline)
    log(f"superset: {api.base_url} is healthy")


def driver_error(text: str) -> str:
    """The driver's own words from a SQLAlchemy-wrapped error, on one line."""
    inner = re.search(r"\[SQL: (.*?)\]\s*(\(Background|$)", text, re.DOTALL)
    text = inner.group(1) if inner else text
    return " ".join(text.split())[:400]


def classify_connection_error(text: str) -> str:
    """What a failed connection test means: auth, privilege, tls, nosql, unreachable, other."""
    lowered = text.lower()
    if "401" in text or "unable to authenticate" in lowered or "authenticationexception" in lowered:
        return "auth"
    if "403" in text or "is unauthorized" in lowered or "authorizationexception" in lowered:
        return "privilege"
    if "certificate_verify_failed" in lowered or "sslerror" in lowered or "certificate" in lowered:
        return "tls"
    if "_sql" in lowered and ("405" in text or "no handler found" in lowered):
        return "nosql"
    if "connection refused" in lowered or "timed out" in lowered or "connectionerror" in lowered:
        return "unreachable"
    return "other"


def check_connection(api: SupersetApi, settings: Settings, uri: str, who: str) -> bool:
    """Superset connects to Elasticsearch as it will for every chart. Returns False when
    Elasticsearch answers but has no SQL endpoint (the wiring is still right then)."""
    name = settings.database_name
    payload = {"database_name": name, "sqlalchemy_uri": uri}

    def attempt() -> Response:
        answer = api.send(
            "POST", "/api/v1/database/test_connection/", json.dumps(payload).encode(),
            "application/json",
        )  # fmt: skip
        if answer.status != 200 and classify_connection_error(message(answer)) == "unreachable":
            raise TransientError(f"Superset cannot reach Elasticsearch yet: {message(answer)}")
        return answer

    answer = retry(attempt, f"testing the connection of database {name!r}", api.deadline)
    if answer.status == 200:
        log(f"database {name!r}: connection test passed as {who}")
        return True
    text = message(answer)
    kind = classify_connection_error(text)
    if kind == "nosql":
        log(
            f"warning: database {name!r}: Elasticsearch authenticated {who} but has no SQL "
            "endpoint (x-pack-sql), so the dashboards cannot query it until it does; "
            "continuing with the wiring."
        )
        return False
    reasons = {
        "auth": f"Elasticsearch refused the password of the reader user {who!r}",
        "privilege": f"the reader user {who!r} lacks a privilege Superset needs",
        "tls": f"Elasticsearch's certificate did not verify against {settings.ca_file}",
    }
    reason = reasons.get(kind, "Superset could not use the connection")
    fail(f"the connection test of database {name!r} failed: {reason} ({driver_error(text)}).")


def read_bundle(directory: str) -> dict[str, str]:
    """Every *.yaml below `directory`, by path relative to it (ConfigMap `..data` links skipped)."""
    files: dict[str, str] = {}
    for root, dirs, names in os.walk(directory, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".."))
        for name in sorted(names):
            if name.endswith(".yaml") and not name.startswith(".."):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8") as handle:
                    files[os.path.relpath(path, directory).replace(os.sep, "/")] = handle.read()
    if "metadata.yaml" not in files or not any(p.startswith("databases/") for p in files):
        fail(f"{directory} is not a Superset bundle: metadata.yaml or databases/ is missing.")
    return files


def file_uuid(text: str, path: str) -> str:
    match = UUID_LINE.search(text)
    if not match:
        fail(f"the bundle file {path} has no uuid.")
    return match.group(1)


def fill(text: str, values: dict[str, str], path: str) -> str:
    """Replace `"${name}"` placeholders with JSON strings (valid YAML double-quoted scalars)."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            fail(f"the bundle file {path} has an unknown placeholder ${{{name}}}.")
        return json.dumps(values[name])

    return PLACEHOLDER.sub(one, text)


def extra_dataset(table: str, database_uuid: str) -> str:
    """A dataset without columns; Superset reads them from Elasticsearch afterwards."""
    dataset_uuid = uuid.uuid5(DATASET_NAMESPACE, table)
    return (
        f"table_name: {json.dumps(table)}\nmain_dttm_col: null\nschema: null\nsql: null\n"
        f"offset: 0\ncache_timeout: null\nparams: null\nextra: null\n"
        f"filter_select_enabled: true\nuuid: {dataset_uuid}\nmetrics:\n"
        "  - metric_name: count\n    verbose_name: Rows\n    metric_type: count\n"
        "    expression: COUNT(*)\ncolumns: []\nversion: 1.0.0\n"
        f"database_uuid: {database_uuid}\n"
    )


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
    queryable = check_connection(api, settings, uri, es_user)
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
