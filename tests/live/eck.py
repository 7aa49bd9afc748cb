"""What the ECK operator made of a release's Elasticsearch, read from the API, and what the
rendered chart expects of it (URLs, mounted Secrets and the keys clients read).

Expectations come from the rendered objects; the operator's objects are recognised by
their owner reference to the Elasticsearch resource, not by names assumed from ECK's code.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from lastack import polling
from lastack.chart.render import missing_subcharts_reason
from lastack.cluster import kwait

ES_KIND = "Elasticsearch"
SUBCHART = "eck-elasticsearch"
RECONCILE_SECONDS = 90
# An in-cluster https URL: <service>.<namespace>.svc[.cluster.local]:<port>.
_SERVICE_URL = re.compile(r"https://([a-z0-9-]+)\.([a-z0-9-]+)\.svc(?:\.cluster\.local)?:(\d+)")
POD_KINDS = ("Deployment", "StatefulSet", "Job", "Pod")


def require_subchart() -> None:
    """The Elasticsearch resource comes from the eck-elasticsearch subchart."""
    reason = missing_subcharts_reason([SUBCHART])
    if reason:
        pytest.skip(f"no Elasticsearch to reconcile: {reason}")


def elasticsearch(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in rendered if o["kind"] == ES_KIND)


# ECK "soft-owns" what other namespaces may reference (the public CA Secret): labels
# instead of an owner reference.
SOFT_OWNER = {"kind": "eck.k8s.elastic.co/owner-kind", "name": "eck.k8s.elastic.co/owner-name"}


def owned_by_elasticsearch(obj: Any, es_name: str | None = None) -> bool:
    """Made by the operator for the Elasticsearch `es_name` (any, when None)."""
    labels = obj.metadata.labels or {}
    owners = [(o.kind, o.name) for o in obj.metadata.owner_references or []]
    owners.append((labels.get(SOFT_OWNER["kind"]), labels.get(SOFT_OWNER["name"])))
    return any(kind == ES_KIND and es_name in (None, name) for kind, name in owners)


def decoded(secret: client.V1Secret) -> dict[str, str]:
    return {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.data or {}).items()}


def _strings(value: Any) -> Iterator[str]:
    """Every string in a rendered object, JSON documents inside strings included."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value
        if value.lstrip().startswith(("{", "[")):
            try:
                parsed = json.loads(value)
            except ValueError:
                return
            yield from _strings(parsed)


@dataclass(frozen=True)
class Endpoint:
    host: str  # as the client dials it
    service: str
    port: int


def service_endpoints(rendered: list[dict[str, Any]], namespace: str) -> set[Endpoint]:
    """Every https URL into the release namespace that the chart configures a client with."""
    return {Endpoint(m.group(0).split("//", 1)[1].rsplit(":", 1)[0], m.group(1), int(m.group(3)))
            for text in (s for obj in rendered for s in _strings(obj))
            for m in _SERVICE_URL.finditer(text) if m.group(2) == namespace}


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


@dataclass(frozen=True)
class SecretMount:
    workload: str  # "Deployment la-stack-ralph"
    secret: str
    keys: frozenset[str]  # the files under the mount that the rendered config names


def foreign_secret_mounts(rendered: list[dict[str, Any]],
                          ours: set[str]) -> list[SecretMount]:
    """Secret volumes of the chart's Pods whose Secret neither the chart nor its hook makes
    (`ours`): those another party (ECK) must provide, with the keys clients read."""
    texts = [s for obj in rendered for s in _strings(obj)]
    mounts = []
    for obj in (o for o in rendered if o["kind"] in POD_KINDS):
        spec = _pod_spec(obj)
        volumes = {v["name"]: v["secret"]["secretName"] for v in spec.get("volumes") or []
                   if "secret" in v}
        for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            for mount in container.get("volumeMounts") or []:
                secret = volumes.get(mount["name"])
                if secret is None or secret in ours:
                    continue
                prefix = mount["mountPath"].rstrip("/") + "/"
                keys = {t[len(prefix):].split("/")[0] for t in texts if t.startswith(prefix)}
                keys.discard("")  # the mount path itself
                mounts.append(SecretMount(f"{obj['kind']} {obj['metadata']['name']}", secret,
                                          frozenset(keys)))
    return mounts


def wait_owned(core: client.CoreV1Api, read: Any, what: str, namespace: str,
               es_name: str) -> Any:
    """The object once it exists; it must be the operator's (owned by the Elasticsearch)."""
    obj = kwait.wait_exists(core, read, what, namespace, RECONCILE_SECONDS)
    assert owned_by_elasticsearch(obj, es_name), \
        f"{what} is not the operator's: owners {obj.metadata.owner_references}, " \
        f"labels {obj.metadata.labels}"
    return obj


# --------------------------------------------------------------------------- certificates


def _openssl(*args: str) -> str:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def dns_names(cert_pem: str) -> set[str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "tls.crt")
        path.write_text(cert_pem)
        out = _openssl("x509", "-in", str(path), "-noout", "-ext", "subjectAltName")
    return {n.strip()[len("DNS:"):] for n in out.replace("\n", ",").split(",")
            if n.strip().startswith("DNS:")}


def verifies_against(cert_pem: str, ca_pem: str) -> None:
    """Raise unless the first certificate of `cert_pem` chains to `ca_pem`."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, ca = Path(tmp, "tls.crt"), Path(tmp, "ca.crt")
        cert.write_text(cert_pem)
        ca.write_text(ca_pem)
        _openssl("verify", "-CAfile", str(ca), "-untrusted", str(cert), str(cert))


# --------------------------------------------------------------------------- file realm


@dataclass(frozen=True)
class FileRealm:
    hashes: dict[str, str]  # user -> bcrypt hash
    roles: dict[str, set[str]]  # user -> roles
    role_definitions: dict[str, Any]  # roles.yml


def parse_file_realm(data: dict[str, str]) -> FileRealm:
    hashes = dict(line.split(":", 1) for line in data.get("users", "").splitlines() if line)
    roles: dict[str, set[str]] = {}
    for line in data.get("users_roles", "").splitlines():
        if line:
            role, users = line.split(":", 1)
            for user in users.split(","):
                roles.setdefault(user, set()).add(role)
    return FileRealm(hashes, roles, yaml.safe_load(data.get("roles.yml") or "{}") or {})


def realm_secret(core: client.CoreV1Api, namespace: str, es_name: str) -> client.V1Secret | None:
    """The Secret the operator assembled the file realm into (found by its content)."""
    for secret in core.list_namespaced_secret(namespace).items:
        if owned_by_elasticsearch(secret, es_name) and {"users", "users_roles"} <= set(
                secret.data or {}):
            return secret
    return None


def warnings_about(core: client.CoreV1Api, namespace: str, es_name: str) -> list[str]:
    events = core.list_namespaced_event(namespace, field_selector=(
        f"involvedObject.kind={ES_KIND},involvedObject.name={es_name},type=Warning")).items
    return [f"{e.reason}: {e.message}" for e in events]


def operator_users(core: client.CoreV1Api, namespace: str, es_name: str) -> set[str]:
    """The users the operator made itself: the keys of its own credential Secrets."""
    return {key for secret in core.list_namespaced_secret(
                namespace, label_selector="eck.k8s.elastic.co/credentials=true").items
            if owned_by_elasticsearch(secret, es_name) for key in (secret.data or {})}


# --------------------------------------------------------------------------- workloads


def node_set_statefulset(apps: client.AppsV1Api, namespace: str, es_name: str,
                         node_set: str) -> str:
    """The operator's StatefulSet of one node set (told apart by the node-set label ECK
    puts on its Pods)."""
    def probe() -> polling.Probe:
        for sts in apps.list_namespaced_stateful_set(namespace).items:
            labels = sts.spec.template.metadata.labels or {}
            if (owned_by_elasticsearch(sts, es_name)
                    and labels.get("elasticsearch.k8s.elastic.co/statefulset-name")
                    == sts.metadata.name and sts.metadata.name.endswith(f"-{node_set}")):
                return polling.Probe(done=True, state=sts.metadata.name)
        return polling.Probe(state="no StatefulSet of the node set yet")

    return polling.poll(f"the StatefulSet of node set {node_set}", probe,
                      RECONCILE_SECONDS).state


def elasticsearch_pods(core: client.CoreV1Api, namespace: str,
                       es_name: str) -> list[client.V1Pod]:
    """Pods of the operator's StatefulSets (their owner is one it owns)."""
    apps = client.AppsV1Api(core.api_client)
    owned = {s.metadata.name for s in apps.list_namespaced_stateful_set(namespace).items
             if owned_by_elasticsearch(s, es_name)}
    return [p for p in core.list_namespaced_pod(namespace).items
            if any(o.kind == "StatefulSet" and o.name in owned
                   for o in p.metadata.owner_references or [])]


def replicas_probe(apps: client.AppsV1Api, namespace: str, name: str, want: int) -> polling.Probe:
    sts = apps.read_namespaced_stateful_set(name, namespace)
    return polling.Probe(done=sts.spec.replicas == want and (sts.status.replicas or 0) == want,
                       state=f"spec {sts.spec.replicas}, status {sts.status.replicas}")


def data_claims(core: client.CoreV1Api, namespace: str, es: dict[str, Any]) -> set[str]:
    """PVCs of the operator's StatefulSets, from the node sets' volume claim templates."""
    prefixes = {f"{t['metadata']['name']}-" for node_set in es["spec"]["nodeSets"]
                for t in node_set.get("volumeClaimTemplates", [])}
    return {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(namespace).items
            if c.metadata.name.startswith(tuple(prefixes))}
