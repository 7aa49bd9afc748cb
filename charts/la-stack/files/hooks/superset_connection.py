"""The connection Superset will use for every chart: elasticsearch-dbapi's URI, and the
verdict of Superset's own connection test in one sentence."""

from __future__ import annotations

import json
import re
import urllib.parse

from hooklib import Response, TransientError, fail, log, retry
from superset_api import SupersetApi, message

PASSWORD_MASK = "XXXXXXXXXX"  # what Superset shows and accepts in place of a password


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


def check_connection(api: SupersetApi, name: str, ca_file: str, uri: str, who: str) -> bool:
    """Superset connects to Elasticsearch as it will for every chart. Returns False when
    Elasticsearch answers but has no SQL endpoint (the wiring is still right then)."""
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
        "tls": f"Elasticsearch's certificate did not verify against {ca_file}",
    }
    reason = reasons.get(kind, "Superset could not use the connection")
    fail(f"the connection test of database {name!r} failed: {reason} ({driver_error(text)}).")
