"""A stand-in for the Kubernetes API's Secret endpoints and Deployment patches, served on
loopback for the hooks tier.

It stands in until the live tier provides a real kube-apiserver. It models only what the
secrets hook relies on, with the API server's semantics:
- bearer-token authentication (401 otherwise);
- GET /api/v1/namespaces/<ns>/secrets/<name>: 200 with the object, or 404 NotFound;
- POST /api/v1/namespaces/<ns>/secrets: 201 Created, or 409 AlreadyExists;
- PUT .../secrets/<name>: 200, 404 when absent, 409 Conflict when metadata.resourceVersion
  is not the current one (optimistic concurrency), resourceVersion bumped on every write;
- LIST (GET on the collection) and DELETE/PATCH of Secrets answer 403, as the hook's Role
  would;
- PATCH /apis/apps/v1/namespaces/<ns>/deployments/<name> with a JSON merge patch
  (RFC 7386, `application/merge-patch+json`; 415 for another type): 200 with the patched
  object, 404 when absent, generation bumped when the spec changes, as the controller
  sees it;
- test hooks: `forbid` (verb, name) pairs answer 403; `race_create` inserts another writer's
  object just before a POST (which then gets 409); `race_update` bumps the resourceVersion
  just before a PUT (which then gets 409); `unavailable` answers 503 a number of times.
Every call is recorded in `calls` as (method, path).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "stand-in-token"
_PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/secrets(?:/(?P<name>[^/?]+))?$")
_DEPLOYMENT = re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/?]+)$")
MERGE_PATCH = "application/merge-patch+json"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def status_body(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class KubeStandIn:
    def __init__(self, namespace: str = "la-stack") -> None:
        self.namespace = namespace
        self.secrets: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.forbid: set[tuple[str, str]] = set()
        self.race_create: dict[str, dict[str, Any]] = {}
        self.race_update: set[str] = set()
        self.unavailable = 0
        self._version = 100
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> KubeStandIn:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- the store ----------------------------------------------------------------------

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def put_secret(
        self,
        name: str,
        data: dict[str, str],
        secret_type: str = "Opaque",
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Store a Secret as a user (or another writer) would have created it."""
        with self._lock:
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": secret_type,
                "metadata": {
                    "name": name,
                    "namespace": self.namespace,
                    "resourceVersion": self._next_version(),
                    "annotations": dict(annotations or {}),
                },
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            }
            self.secrets[name] = body
            return copy.deepcopy(body)

    def put_deployment(self, name: str) -> None:
        """Store a Deployment as the chart's release would have created it."""
        with self._lock:
            self.deployments[name] = {
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": self.namespace, "generation": 1,
                             "resourceVersion": self._next_version()},
                "spec": {"template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "app"}]}}},
            }

    def pod_template_annotations(self, name: str) -> dict[str, str]:
        return self.deployments[name]["spec"]["template"]["metadata"].get("annotations", {})

    def decoded(self, name: str) -> dict[str, str]:
        data = self.secrets[name].get("data") or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    def version(self, name: str) -> str:
        return self.secrets[name]["metadata"]["resourceVersion"]

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in {"POST", "PUT", "PATCH", "DELETE"}]

    # --- HTTP ---------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # keep pytest output clean
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _dispatch(self) -> None:
                standin.calls.append((self.command, self.path))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self._send(401, status_body(401, "Unauthorized", "Unauthorized"))
                    return
                if standin.unavailable > 0:
                    standin.unavailable -= 1
                    self._send(503, status_body(503, "ServiceUnavailable", "starting"))
                    return
                deployment = _DEPLOYMENT.match(self.path)
                if deployment and deployment["ns"] == standin.namespace:
                    self._patch_deployment(deployment["name"])
                    return
                match = _PATH.match(self.path)
                if not match or match["ns"] != standin.namespace:
                    self._send(404, status_body(404, "NotFound", f"no route {self.path}"))
                    return
                name = match["name"]
                verb = {"GET": "get", "POST": "create", "PUT": "update"}.get(self.command, "")
                if name is None and self.command == "GET":
                    verb = "list"
                if not verb or verb == "list" or (verb, name or "") in standin.forbid:
                    self._send(403, status_body(403, "Forbidden", f"cannot {verb} secrets"))
                    return
                with standin._lock:
                    code, body = getattr(self, f"_{verb}")(name)
                self._send(code, body)

            def _patch_deployment(self, name: str) -> None:
                if self.command != "PATCH" or ("patch", name) in standin.forbid:
                    self._send(403, status_body(403, "Forbidden", "cannot change deployments"))
                    return
                if self.headers.get("Content-Type") != MERGE_PATCH:
                    self._send(415, status_body(415, "UnsupportedMediaType", "merge patch only"))
                    return
                with standin._lock:
                    if name not in standin.deployments:
                        self._send(404, status_body(
                            404, "NotFound", f'deployments.apps "{name}" not found'))
                        return
                    current = standin.deployments[name]
                    patched = merge_patch(current, self._body())
                    if patched["spec"] != current["spec"]:
                        patched["metadata"]["generation"] = current["metadata"]["generation"] + 1
                    patched["metadata"]["resourceVersion"] = standin._next_version()
                    standin.deployments[name] = patched
                self._send(200, copy.deepcopy(patched))

            def _get(self, name: str) -> tuple[int, dict[str, Any]]:
                if name not in standin.secrets:
                    return 404, status_body(404, "NotFound", f'secrets "{name}" not found')
                return 200, copy.deepcopy(standin.secrets[name])

            def _create(self, _: None) -> tuple[int, dict[str, Any]]:
                body = self._body()
                name = body.get("metadata", {}).get("name", "")
                if ("create", name) in standin.forbid:
                    return 403, status_body(403, "Forbidden", "cannot create secrets")
                if name in standin.race_create:
                    other = standin.race_create.pop(name)
                    other.setdefault("metadata", {}).update(
                        name=name, resourceVersion=standin._next_version()
                    )
                    standin.secrets[name] = other
                if name in standin.secrets:
                    return 409, status_body(409, "AlreadyExists", f'secrets "{name}" exists')
                for value in (body.get("data") or {}).values():
                    base64.b64decode(value, validate=True)  # the API server rejects bad base64
                body["metadata"]["resourceVersion"] = standin._next_version()
                standin.secrets[name] = body
                return 201, copy.deepcopy(body)

            def _update(self, name: str) -> tuple[int, dict[str, Any]]:
                body = self._body()
                if name not in standin.secrets:
                    return 404, status_body(404, "NotFound", f'secrets "{name}" not found')
                if name in standin.race_update:
                    standin.race_update.discard(name)
                    current = standin.secrets[name]["metadata"]
                    current["resourceVersion"] = standin._next_version()
                sent = body.get("metadata", {}).get("resourceVersion")
                if sent != standin.secrets[name]["metadata"]["resourceVersion"]:
                    return 409, status_body(409, "Conflict", "the object has been modified")
                body["metadata"]["resourceVersion"] = standin._next_version()
                standin.secrets[name] = body
                return 200, copy.deepcopy(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch

        return Handler
