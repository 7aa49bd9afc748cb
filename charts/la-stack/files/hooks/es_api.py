"""Elasticsearch calls of the hook programs: retried to the deadline, and 401/403 turned
into one sentence naming the user (stdlib only; a sibling of hooklib)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hooklib import JsonClient, Response, fail

DIGEST_META_KEY = "la_stack_sha256"


class EsApi:
    def __init__(self, client: JsonClient, username: str) -> None:
        self.client = client
        self.who = f"user {username}" if username else "the anonymous user"

    def call(self, method: str, path: str, body: Any = None, what: str = "") -> Response:
        response = self.client.call(method, path, body, what)
        if response.status == 401:
            fail(f"Elasticsearch rejected the credentials of {self.who} (401); check ES_PASSWORD.")
        if response.status == 403:
            fail(f"{self.who} may not {method} {path} (403): {response.error_reason()}.")
        return response

    def ok(self, method: str, path: str, body: Any = None, what: str = "") -> Response:
        """`call`, failing with one sentence unless Elasticsearch answers 200."""
        response = self.call(method, path, body, what)
        if response.status != 200:
            fail(f"{what or f'{method} {path}'} failed: {response.status} "
                 f"{response.error_reason()}.")
        return response

    def available(self, path: str) -> bool:
        """Whether the distribution serves an API (ILM and SLM are modules some lack)."""
        response = self.call("GET", path)
        return response.status == 200


def error_type(response: Response) -> str:
    error = response.body.get("error") if isinstance(response.body, dict) else None
    return error.get("type", "") if isinstance(error, dict) else ""


def digest(body: Any) -> str:
    """sha256 of a body as we write it, without our own digest key: compared with the one
    stored in `_meta` so that an unchanged object is not written again."""
    clean = json.loads(json.dumps(body))
    if isinstance(clean, dict):
        (clean.get("_meta") or {}).pop(DIGEST_META_KEY, None)
    canonical = json.dumps(clean, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_digest(body: dict[str, Any]) -> dict[str, Any]:
    stamped = json.loads(json.dumps(body))
    stamped.setdefault("_meta", {})[DIGEST_META_KEY] = digest(body)
    return stamped


def stored_digest(meta: Any) -> str | None:
    return (meta or {}).get(DIGEST_META_KEY) if isinstance(meta, dict) else None
