"""Shared helpers of the la-stack hook programs (stdlib only).

The hook programs import this module as a sibling file (`python3 /hooks/<name>.py` puts
/hooks first on sys.path). It offers:

- `log` / `fail`: progress lines on stdout; one `error: <sentence>` line on stderr.
- `Deadline`: the overall time budget, read from `DEADLINE_SECONDS`.
- `retry`: capped exponential backoff with full jitter, bounded by the deadline.
- `JsonClient`: a small JSON-over-HTTP(S) client on urllib that verifies TLS with a CA file.
- `run`: the entry point wrapper that turns `HookError` into exit status 1 without a traceback.
"""

from __future__ import annotations

import base64
import http.cookiejar
import json
import os
import random
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

DEFAULT_DEADLINE_SECONDS = 300.0
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 15.0
REQUEST_TIMEOUT_SECONDS = 30.0


class HookError(Exception):
    """An expected failure: its message is the one sentence the user reads."""


class TransientError(Exception):
    """A failure worth retrying (connection refused, timeout, 5xx, 429...)."""


def log(message: str) -> None:
    print(message, flush=True)


def fail(sentence: str) -> NoReturn:
    raise HookError(sentence)


def run(main: Callable[[], None]) -> None:
    """Run a hook's main function and exit 0, or 1 with one `error:` sentence on stderr."""
    try:
        main()
    except HookError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr, flush=True)
        sys.exit(130)
    sys.exit(0)


def env(name: str, default: str | None = None) -> str:
    """An environment variable; a missing required one is a clear error, not a KeyError."""
    value = os.environ.get(name, "")
    if value:
        return value
    if default is None:
        fail(f"the environment variable {name} must be set.")
    return default


def read_json(path: str, what: str) -> Any:
    """The parsed JSON file at `path`; a missing or malformed file is one sentence naming
    `what` (e.g. "config file")."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as error:
        fail(f"cannot read the {what} {path}: {error.strerror}.")
    except ValueError as error:
        fail(f"the {what} {path} is not valid JSON: {error}.")


class Deadline:
    """The overall time budget of one hook run."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    @classmethod
    def from_env(cls, name: str = "DEADLINE_SECONDS") -> Deadline:
        raw = os.environ.get(name, "") or str(DEFAULT_DEADLINE_SECONDS)
        try:
            seconds = float(raw)
        except ValueError:
            fail(f"{name} must be a number of seconds, not {raw!r}.")
        if seconds <= 0:
            fail(f"{name} must be positive, not {raw!r}.")
        return cls(seconds)

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self.remaining() <= 0


def backoff_delays(
    first: float = BACKOFF_FIRST_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> Callable[[int], float]:
    """Full-jitter exponential backoff: attempt n waits uniformly in [0, min(cap, first*2^n)]."""

    def delay(attempt: int) -> float:
        # Full jitter spreads retries of parallel hook Pods; a floor keeps loops from spinning.
        ceiling = min(cap, first * (2**attempt))
        return max(0.2, random.uniform(0, ceiling))

    return delay


def retry(
    action: Callable[[], T],
    what: str,
    deadline: Deadline,
    delay: Callable[[int], float] | None = None,
) -> T:
    """Call `action` until it returns; retry TransientError until the deadline, then fail."""
    delay = delay or backoff_delays()
    attempt = 0
    while True:
        try:
            return action()
        except TransientError as error:
            wait = min(delay(attempt), deadline.remaining())
            if wait <= 0:
                fail(
                    f"gave up {what} after {deadline.seconds:g} seconds "
                    f"(DEADLINE_SECONDS); last problem: {error}."
                )
            attempt += 1
            log(f"waiting: {what}: {error} (attempt {attempt}, next try in {wait:.1f}s)")
            time.sleep(wait)


@dataclass(frozen=True)
class Response:
    status: int
    body: Any  # parsed JSON when the answer was JSON, else the text
    headers: dict[str, str]

    def error_reason(self) -> str:
        """The most telling short reason of an error answer (Elasticsearch or Kubernetes)."""
        body = self.body
        if isinstance(body, dict):
            error = body.get("error")
            if isinstance(error, dict):
                return str(error.get("reason") or error.get("type") or error)
            if error:
                return str(error)
            if body.get("message"):
                return str(body["message"])
        return str(body)[:200] or f"HTTP {self.status}"


RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class JsonClient:
    """JSON over HTTP(S) with urllib. TLS is always verified, against `ca_file` when given."""

    def __init__(
        self,
        base_url: str,
        deadline: Deadline,
        ca_file: str | None = None,
        headers: dict[str, str] | None = None,
        cookies: bool = False,
    ) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            fail(f"{base_url!r} is not an http(s) URL.")
        self.base_url = base_url.rstrip("/")
        self.deadline = deadline
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.context: ssl.SSLContext | None = None
        if parsed.scheme == "https":
            if ca_file and not os.path.isfile(ca_file):
                fail(f"the CA file {ca_file} does not exist.")
            self.context = ssl.create_default_context(cafile=ca_file or None)
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.HTTPSHandler(context=self.context)]
        if cookies:
            # Session-based APIs (Superset's CSRF token) need their cookie sent back.
            handlers.append(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.opener = urllib.request.build_opener(*handlers)
        self.request_timeout = REQUEST_TIMEOUT_SECONDS

    @staticmethod
    def basic_auth(username: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        transient: frozenset[int] = RETRYABLE_STATUSES,
    ) -> Response:
        """One JSON request. HTTP errors come back as a Response; unreachable is
        TransientError; statuses in `transient` (5xx, 429... by default) raise it too."""
        data = None if body is None else json.dumps(body).encode()
        return self.send(method, path, data, content_type, transient)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        what: str = "",
        transient: frozenset[int] = RETRYABLE_STATUSES,
    ) -> Response:
        """`request`, retried until the deadline while it fails transiently."""
        return retry(
            lambda: self.request(method, path, body, transient=transient),
            what or f"{method} {path}",
            self.deadline,
        )

    def send(
        self,
        method: str,
        path: str,
        data: bytes | None,
        content_type: str,
        transient: frozenset[int] = RETRYABLE_STATUSES,
    ) -> Response:
        """`request` with a raw body (JSON, multipart...)."""
        response = self.send_bytes(method, path, data, content_type)
        if response.status in transient:
            raise TransientError(
                f"{method} {path} answered {response.status} ({response.error_reason()})"
            )
        return response

    def send_bytes(
        self, method: str, path: str, data: bytes | None, content_type: str
    ) -> Response:
        """One request with a raw body (JSON, multipart...), without status retries."""
        headers = dict(self.headers)
        if data is not None:
            headers["Content-Type"] = content_type
        req = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=headers
        )
        timeout = max(1.0, min(self.request_timeout, self.deadline.remaining()))
        try:
            with self.opener.open(req, timeout=timeout) as answer:
                return self._response(answer.status, answer.read(), answer.headers)
        except urllib.error.HTTPError as answer:
            return self._response(answer.code, answer.read(), answer.headers)
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, ssl.SSLCertVerificationError):
                # A wrong CA or host name does not heal by waiting.
                fail(f"TLS verification of {self.base_url} failed: {reason.verify_message}.")
            raise TransientError(f"cannot reach {self.base_url}: {reason}") from error
        except (TimeoutError, ConnectionError, ssl.SSLError) as error:
            raise TransientError(f"cannot reach {self.base_url}: {error}") from error

    @staticmethod
    def _response(status: int, raw: bytes, headers: Any) -> Response:
        text = raw.decode("utf-8", errors="replace")
        try:
            body: Any = json.loads(text) if text else None
        except ValueError:
            body = text
        return Response(status, body, {k.lower(): v for k, v in dict(headers).items()})
