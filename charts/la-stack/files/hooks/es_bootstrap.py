"""Post-install/post-upgrade hook: install the statements index template, create the index.

Run as `python3 /hooks/es_bootstrap.py`. Environment:
  ES_URL            Elasticsearch URL, e.g. https://<es>-es-http.<ns>.svc:9200 (required;
                    http:// is accepted for tests, https:// is always verified)
  ES_USERNAME       user with the la_stack_index_bootstrap role (empty: no authentication)
  ES_PASSWORD       its password (required with ES_USERNAME)
  ES_CA_FILE        CA bundle to verify https:// with (ECK's `<es>-es-http-certs-public`
                    ca.crt); empty: the system trust store
  ES_INDEX          index to create (default `statements`); must match the template's patterns
  TEMPLATE_FILE     the index template body (default: statements-template.json beside this file)
  DEADLINE_SECONDS  overall time budget (default 300)

Idempotent: the template carries the sha256 of its body in `_meta.la_stack_sha256` and is
only written when that differs; an existing index is left alone.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from typing import Any

from hooklib import Deadline, JsonClient, Response, env, fail, log, read_json, retry, run

TEMPLATE_NAME = "la-stack-statements"
DIGEST_META_KEY = "la_stack_sha256"
HEALTH_WAIT = "5s"  # server-side wait per poll; the client keeps polling until the deadline


def template_digest(body: dict[str, Any]) -> str:
    """sha256 of the template body as written in the file (without our own digest key)."""
    clean = json.loads(json.dumps(body))
    clean.get("_meta", {}).pop(DIGEST_META_KEY, None)
    canonical = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_digest(body: dict[str, Any]) -> dict[str, Any]:
    stamped = json.loads(json.dumps(body))
    stamped.setdefault("_meta", {})[DIGEST_META_KEY] = template_digest(body)
    return stamped


def stored_digest(response_body: Any) -> str | None:
    """The digest recorded in an existing template, from GET /_index_template/<name>."""
    for item in (response_body or {}).get("index_templates", []):
        if item.get("name") == TEMPLATE_NAME:
            return (item.get("index_template", {}).get("_meta") or {}).get(DIGEST_META_KEY)
    return None


def load_template(path: str, index: str) -> dict[str, Any]:
    body = read_json(path, "index template")
    patterns = body.get("index_patterns") if isinstance(body, dict) else None
    if not isinstance(patterns, list) or not patterns:
        fail(f"the index template {path} has no index_patterns.")
    if not any(fnmatch.fnmatchcase(index, pattern) for pattern in patterns):
        fail(f"ES_INDEX {index!r} does not match the template's index_patterns {patterns}.")
    return body


class Bootstrap:
    def __init__(self, client: JsonClient, deadline: Deadline, username: str) -> None:
        self.client = client
        self.deadline = deadline
        self.who = f"user {username}" if username else "the anonymous user"

    def call(self, method: str, path: str, body: Any = None, what: str = "") -> Response:
        response = retry(
            lambda: self.client.request(method, path, body),
            what or f"{method} {path}",
            self.deadline,
        )
        if response.status == 401:
            fail(f"Elasticsearch rejected the credentials of {self.who} (401); check ES_PASSWORD.")
        if response.status == 403:
            fail(f"{self.who} may not {method} {path} (403): {response.error_reason()}.")
        return response

    def wait_for_cluster(self) -> None:
        path = f"/_cluster/health?wait_for_status=yellow&timeout={HEALTH_WAIT}"
        response = self.call("GET", path, what="waiting for the cluster to be yellow or green")
        if response.status != 200:
            fail(f"cluster health answered {response.status}: {response.error_reason()}.")
        body = response.body or {}
        log(
            f"cluster {body.get('cluster_name')}: {body.get('status')}, "
            f"{body.get('number_of_nodes')} node(s)"
        )

    def ensure_template(self, template: dict[str, Any]) -> str:
        wanted = template_digest(template)
        path = f"/_index_template/{TEMPLATE_NAME}"
        current = self.call("GET", path)
        if current.status == 200 and stored_digest(current.body) == wanted:
            return "unchanged"
        if current.status not in (200, 404):
            fail(
                f"reading index template {TEMPLATE_NAME} failed: {current.status} "
                f"{current.error_reason()}."
            )
        response = self.call("PUT", path, with_digest(template))
        if response.status != 200:
            fail(
                f"Elasticsearch refused index template {TEMPLATE_NAME}: {response.error_reason()}."
            )
        return "created" if current.status == 404 else "updated"

    def ensure_index(self, index: str) -> str:
        response = self.call("PUT", f"/{index}", {})
        if response.status == 200:
            outcome = "created"
        elif (
            response.status == 400 and _error_type(response) == "resource_already_exists_exception"
        ):
            outcome = "exists, left as it is"
        else:
            fail(f"creating index {index} failed: {response.status} {response.error_reason()}.")
        # Ralph's first write must not race the primary shard's allocation.
        health = self.call(
            "GET",
            f"/_cluster/health/{index}?wait_for_status=yellow&timeout={HEALTH_WAIT}",
            what=f"waiting for index {index} to be allocated",
        )
        if health.status != 200:
            fail(f"index {index} health answered {health.status}: {health.error_reason()}.")
        return f"{outcome} ({(health.body or {}).get('status')})"


def _error_type(response: Response) -> str:
    error = response.body.get("error") if isinstance(response.body, dict) else None
    return error.get("type", "") if isinstance(error, dict) else ""


def main() -> None:
    deadline = Deadline.from_env()
    url = env("ES_URL")
    username = os.environ.get("ES_USERNAME", "")
    password = os.environ.get("ES_PASSWORD", "")
    if username and not password:
        fail("ES_PASSWORD must be set when ES_USERNAME is.")
    index = os.environ.get("ES_INDEX") or "statements"
    default_template = os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "statements-template.json"
    )
    template = load_template(os.environ.get("TEMPLATE_FILE") or default_template, index)
    ca_file = os.environ.get("ES_CA_FILE", "")
    headers = JsonClient.basic_auth(username, password) if username else {}
    client = JsonClient(url, deadline, ca_file=ca_file or None, headers=headers)
    if url.startswith("http://"):
        log("warning: plain http, no TLS (acceptable for tests only)")

    bootstrap = Bootstrap(client, deadline, username)
    log(f"Elasticsearch {url}: waiting for the cluster (deadline {deadline.seconds:g}s)")
    bootstrap.wait_for_cluster()
    log(f"index template {TEMPLATE_NAME}: {bootstrap.ensure_template(template)}")
    log(f"index {index}: {bootstrap.ensure_index(index)}")
    log("done")


if __name__ == "__main__":
    run(main)
