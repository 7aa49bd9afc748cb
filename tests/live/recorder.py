"""Helpers of the live tier: recording what a release does, snapshots of its objects."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client, watch

from lastack.testing.helm_release import HOOK, HOOK_WEIGHT
from tests.live.eck import owned_by_elasticsearch

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
