"""Superset's REST API as the wiring hook speaks it: JWT login and CSRF token, Rison filters,
multipart uploads, and the most telling text of an error answer."""

from __future__ import annotations

import io
import json
import urllib.parse
import uuid
from typing import Any

from hooklib import (
    Deadline,
    JsonClient,
    Response,
    TransientError,
    fail,
    log,
    retry,
)

REQUEST_TIMEOUT_SECONDS = 60.0
GATEWAY_STATUSES = frozenset({502, 503, 504})


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
