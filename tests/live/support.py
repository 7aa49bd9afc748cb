"""Helpers of the live tier: running Helm, recording what a release does, snapshots."""

from __future__ import annotations

import base64
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch

from lastack.chart_values import deep_merge  # noqa: F401 (the live tier's merge)
from lastack.render import DEFAULT_API_VERSIONS, effective_chart_dir
from lastack.toolchain import HELMS, KUBECTL, KUBERNETES_VERSION, require
from tests.live.eck import owned_by_elasticsearch
from tests.live.hookrunner import hold_values

RELEASE = "la-stack"
HELM_TIMEOUT = "4m"
# Helm 3's --wait and Helm 4's kstatus watcher (Helm 4's bare --wait means watcher too;
# spelled out so the strategy under test is explicit).
WAIT_FLAGS = {"helm3": ("--wait",), "helm4": ("--wait=watcher",)}
# Helm 4 applies server-side, and the pinned ECK operator's full-object writes of the
# Elasticsearch claim `.spec.nodeSets` for `elastic-operator` (elastic/cloud-on-k8s#8975):
# without forcing, every
# Helm 4 upgrade after the operator's first reconcile is refused with a conflict. The chart
# README tells users the same.
CHANGE_FLAGS = {"helm3": (), "helm4": ("--force-conflicts",)}
HOOK = "helm.sh/hook"
HOOK_WEIGHT = "helm.sh/hook-weight"


# What `helm template` is told the cluster serves, as discovery tells `helm install`: the
# operator prerequisites (ECK, CloudNativePG).
API_VERSION_ARGS = tuple(a for api in DEFAULT_API_VERSIONS for a in ("--api-versions", api))


def chart_dir() -> Path:
    """The chart Helm installs: charts/la-stack with only the subcharts that are present."""
    return effective_chart_dir()


def base_values(local: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        # kwok has no load balancer, so Helm's wait would never see an address; a user's
        # kind/k3d would not give one either without an LB implementation.
        "moodle": {"service": {"type": "ClusterIP"}},
    }
    if local:
        values.update(hold_values())
    return values


@dataclass
class Helm:
    """One Helm binary (helm3/helm4) against the live cluster."""

    name: str
    env: dict[str, str]

    def run(self, *args: str, values: dict[str, Any] | None = None, timeout: float = 360,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(require(HELMS[self.name])), *args]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="la-stack-values-") as f:
            if values is not None:
                yaml.safe_dump(values, f)
                f.flush()
                cmd += ["--values", f.name]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env,
                                  timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    @property
    def wait(self) -> tuple[str, ...]:
        return WAIT_FLAGS[self.name]

    @property
    def change(self) -> tuple[str, ...]:
        """Flags of the commands that change a release's objects (upgrade, rollback)."""
        return CHANGE_FLAGS[self.name]

    def install(self, namespace: str, values: dict[str, Any],
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("install", RELEASE, str(chart_dir()), "-n", namespace, *self.wait,
                        "--timeout", HELM_TIMEOUT, values=values, check=check)

    def upgrade(self, namespace: str, values: dict[str, Any]) -> None:
        self.run("upgrade", RELEASE, str(chart_dir()), "-n", namespace, *self.wait,
                 *self.change, "--timeout", HELM_TIMEOUT, values=values)

    def template(self, namespace: str, values: dict[str, Any],
                 extra: Sequence[str] = ()) -> str:
        return self.run("template", RELEASE, str(chart_dir()), "-n", namespace,
                        "--kube-version", KUBERNETES_VERSION, *extra, values=values).stdout


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [str(require(KUBECTL)), *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env,
                          timeout=180, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def hook_objects(manifest: str, phase: str) -> list[dict[str, Any]]:
    """Objects of `helm get hooks` / `helm template` output that run in `phase`."""
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    return [d for d in docs
            if phase in ((d["metadata"].get("annotations") or {}).get(HOOK, "")).split(",")]


# --------------------------------------------------------------------------- recorder


@dataclass(frozen=True)
class Seen:
    """One watch event. `rv` is the object's resourceVersion: on one etcd (this cluster,
    kind, k3d) it is the store's revision, so it orders events across kinds; the API calls
    it opaque, so this is a test-side assumption about single-store clusters."""

    kind: str
    type: str  # ADDED, MODIFIED, DELETED
    name: str
    rv: int
    hook: str
    weight: int
    succeeded: bool  # Jobs: a Complete/SuccessCriteriaMet condition is True
    failed: bool  # Jobs: a Failed/FailureTarget condition is True


WATCHED: dict[str, tuple[str, str]] = {
    # kind: (api class, list method)
    "ServiceAccount": ("CoreV1Api", "list_namespaced_service_account"),
    "ConfigMap": ("CoreV1Api", "list_namespaced_config_map"),
    "Secret": ("CoreV1Api", "list_namespaced_secret"),
    "Service": ("CoreV1Api", "list_namespaced_service"),
    "PersistentVolumeClaim": ("CoreV1Api", "list_namespaced_persistent_volume_claim"),
    "Role": ("RbacAuthorizationV1Api", "list_namespaced_role"),
    "RoleBinding": ("RbacAuthorizationV1Api", "list_namespaced_role_binding"),
    "Job": ("BatchV1Api", "list_namespaced_job"),
    "Deployment": ("AppsV1Api", "list_namespaced_deployment"),
    "StatefulSet": ("AppsV1Api", "list_namespaced_stateful_set"),
}


@dataclass
class Recorder:
    """Watches a namespace's objects while a Helm command runs; `events` in rv order."""

    api: client.ApiClient
    namespace: str
    events: list[Seen] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Recorder:
        started: list[threading.Event] = []
        for kind, (api_class, method) in WATCHED.items():
            lister = getattr(getattr(client, api_class)(self.api), method)
            ready = threading.Event()
            started.append(ready)
            thread = threading.Thread(target=self._watch, args=(kind, lister, ready),
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        for ready in started:
            if not ready.wait(30):
                raise AssertionError(f"the recorder could not start: {self.errors}")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _watch(self, kind: str, lister: Callable[..., Any], ready: threading.Event) -> None:
        try:
            rv = lister(self.namespace).metadata.resource_version
        except client.exceptions.ApiException as err:
            self.errors.append(f"{kind}: {err}")
            return
        ready.set()
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(lister, self.namespace, resource_version=rv,
                                      timeout_seconds=2):
                    obj = event["object"]
                    rv = obj.metadata.resource_version
                    self._record(kind, event["type"], obj)
                    if self._stop.is_set():
                        break
            except client.exceptions.ApiException as err:
                self.errors.append(f"{kind} watch: {err}")
                return
            finally:
                w.stop()

    def _record(self, kind: str, type_: str, obj: Any) -> None:
        annotations = obj.metadata.annotations or {}
        true = set()
        if kind == "Job" and obj.status and obj.status.conditions:
            true = {c.type for c in obj.status.conditions if c.status == "True"}
        seen = Seen(kind=kind, type=type_, name=obj.metadata.name,
                    rv=int(obj.metadata.resource_version), hook=annotations.get(HOOK, ""),
                    weight=int(annotations.get(HOOK_WEIGHT, "0")),
                    succeeded=bool(true & {"Complete", "SuccessCriteriaMet"}),
                    failed=bool(true & {"Failed", "FailureTarget"}))
        with self._lock:
            self.events.append(seen)

    def ordered(self) -> list[Seen]:
        with self._lock:
            return sorted(self.events, key=lambda e: e.rv)

    def first(self, kind: str, name: str, pred: Callable[[Seen], bool]) -> Seen | None:
        return next((e for e in self.ordered()
                     if e.kind == kind and e.name == name and pred(e)), None)


# --------------------------------------------------------------------------- snapshots


def secrets_snapshot(core: client.CoreV1Api, namespace: str) -> dict[str, dict[str, str]]:
    """{name: data} of every Secret but Helm's own release records and the ECK operator's
    (it issues a certificate per new node and renews them: not ours to keep)."""
    return {s.metadata.name: {k: base64.b64decode(v).decode(errors="replace")
                              for k, v in (s.data or {}).items()}
            for s in core.list_namespaced_secret(namespace).items
            if s.type != "helm.sh/release.v1" and not owned_by_elasticsearch(s)}


def resource_versions(objects: list[Any]) -> dict[tuple[str, str], str]:
    return {(o["kind"], o["metadata"]["name"]): o["metadata"]["resourceVersion"]
            for o in objects}
