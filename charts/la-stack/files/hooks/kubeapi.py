"""The few Kubernetes calls the secrets hook makes: get, create, update of Secrets by name,
and a patch of a Deployment's pod template (to roll the Pods reading a rewritten Secret).

Never a list: the hook's Role grants get/update only on the Secret names it manages (and
create, which RBAC cannot restrict by name), and patch only on the Deployments it rolls.
Reaches the API with the Pod's ServiceAccount; `K8S_API_URL`, `K8S_TOKEN_FILE`,
`K8S_CA_FILE` and `K8S_NAMESPACE` override the in-cluster defaults (tests point them at a
stand-in server on loopback).
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from hooklib import Deadline, JsonClient, Response, fail, retry

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass
class Secret:
    """The parts of a Secret the hook reads and writes; `raw` keeps the rest for updates."""

    name: str
    type: str = "Opaque"
    data: dict[str, str] = field(default_factory=dict)  # decoded values
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_api(cls, body: dict[str, Any]) -> Secret:
        meta = body.get("metadata") or {}
        data = {}
        for key, value in (body.get("data") or {}).items():
            try:
                data[key] = base64.b64decode(value, validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                fail(
                    f"Secret {meta.get('name')} has a value for key {key!r} that is not UTF-8 text."
                )
        return cls(
            name=meta.get("name", ""),
            type=body.get("type") or "Opaque",
            data=data,
            labels=dict(meta.get("labels") or {}),
            annotations=dict(meta.get("annotations") or {}),
            raw=body,
        )

    def to_api(self, namespace: str) -> dict[str, Any]:
        body = dict(self.raw)
        meta = dict(body.get("metadata") or {})
        meta.update(name=self.name, namespace=namespace)
        meta["labels"] = self.labels
        meta["annotations"] = self.annotations
        body.update(apiVersion="v1", kind="Secret", metadata=meta, type=self.type)
        body["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in self.data.items()}
        body.pop("stringData", None)
        return body


class Conflict(Exception):
    """409: the Secret was created or changed by someone else since we looked."""


MAX_CONFLICTS = 5  # how often a read-modify-write is retried after a Conflict


def _in_cluster_url() -> str:
    host = os.environ.get("KUBERNETES_SERVICE_HOST", "")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        fail(
            "not running in a cluster (KUBERNETES_SERVICE_HOST is unset) and K8S_API_URL is unset."
        )
    if ":" in host:  # an IPv6 address needs brackets in a URL
        host = f"[{host}]"
    return f"https://{host}:{port}"


def _read_file(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as error:
        fail(f"cannot read the {what} at {path}: {error.strerror}.")


class SecretsApi:
    def __init__(self, deadline: Deadline) -> None:
        url = os.environ.get("K8S_API_URL") or _in_cluster_url()
        token = _read_file(
            os.environ.get("K8S_TOKEN_FILE") or f"{SERVICE_ACCOUNT_DIR}/token",
            "ServiceAccount token",
        )
        self.namespace = os.environ.get("K8S_NAMESPACE") or _read_file(
            f"{SERVICE_ACCOUNT_DIR}/namespace", "namespace file"
        )
        ca_file = os.environ.get("K8S_CA_FILE") or f"{SERVICE_ACCOUNT_DIR}/ca.crt"
        if url.startswith("https://") and not os.path.isfile(ca_file):
            fail(f"the Kubernetes CA file {ca_file} does not exist.")
        self.deadline = deadline
        self.client = JsonClient(
            url, deadline, ca_file=ca_file, headers={"Authorization": f"Bearer {token}"}
        )

    def _path(self, name: str = "") -> str:
        base = f"/api/v1/namespaces/{urllib.parse.quote(self.namespace)}/secrets"
        return f"{base}/{urllib.parse.quote(name)}" if name else base

    def _call(
        self, method: str, name: str, body: Any = None, path: str = "", kind: str = "Secret",
        content_type: str = "application/json",
    ) -> Response:
        def once() -> Response:
            return self.client.request(method, path or self._path(name), body, content_type)

        response = retry(once, f"{method} {kind} {name}", self.deadline)
        if response.status == 401:
            fail("the Kubernetes API rejected the ServiceAccount token (401 Unauthorized).")
        if response.status == 403:
            verb = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch"}.get(
                method, method)
            fail(
                f"the ServiceAccount may not {verb} {kind} {name} in namespace {self.namespace} "
                f"(403 Forbidden); check the hook's Role."
            )
        return response

    def get(self, name: str) -> Secret | None:
        response = self._call("GET", name)
        if response.status == 404:
            return None
        if response.status != 200:
            fail(f"reading Secret {name} failed: {response.status} {response.error_reason()}.")
        return Secret.from_api(response.body)

    def create(self, secret: Secret) -> Secret:
        """Create; raises Conflict when the Secret appeared meanwhile (it is left untouched)."""
        response = self._call("POST", secret.name, secret.to_api(self.namespace), self._path())
        if response.status == 409:
            raise Conflict(secret.name)
        if response.status not in (200, 201):
            fail(
                f"creating Secret {secret.name} failed: {response.status} "
                f"{response.error_reason()}."
            )
        return Secret.from_api(response.body)

    def update(self, secret: Secret) -> Secret:
        """Replace with the resourceVersion we read; Conflict when it changed since."""
        body = secret.to_api(self.namespace)
        if not body["metadata"].get("resourceVersion"):
            raise ValueError("update needs the resourceVersion of a Secret read before")
        response = self._call("PUT", secret.name, body)
        if response.status == 409:
            raise Conflict(secret.name)
        if response.status != 200:
            fail(
                f"updating Secret {secret.name} failed: {response.status} "
                f"{response.error_reason()}."
            )
        return Secret.from_api(response.body)

    def annotate_pod_template(self, deployment: str, annotations: dict[str, str]) -> bool:
        """Merge `annotations` into a Deployment's pod template, which makes its controller
        roll the Pods (as `kubectl rollout restart` does); False when it does not exist."""
        path = (f"/apis/apps/v1/namespaces/{urllib.parse.quote(self.namespace)}/deployments/"
                f"{urllib.parse.quote(deployment)}")
        patch = {"spec": {"template": {"metadata": {"annotations": annotations}}}}
        response = self._call("PATCH", deployment, patch, path, "Deployment",
                              "application/merge-patch+json")
        if response.status == 404:
            return False
        if response.status != 200:
            fail(
                f"patching Deployment {deployment} failed: {response.status} "
                f"{response.error_reason()}."
            )
        return True
