"""Wait helpers on the official `kubernetes` client, for the live tier.

Every wait has a deadline *and* a failure condition that ends it early with the
object's own explanation (Job conditions, ReplicaSet/StatefulSet FailedCreate events…),
so a broken install fails in seconds with a reason instead of timing out.
pytest-helm-charts' Job wait looks only at `conditions[0] == "Complete"`, which misses
`SuccessCriteriaMet` (first since Kubernetes 1.31) and never sees a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes.client import AppsV1Api, BatchV1Api, CoreV1Api
from kubernetes.client.exceptions import ApiException

from lastack.polling import Probe, poll

JOB_SUCCESS = ("Complete", "SuccessCriteriaMet")
JOB_FAILURE = ("Failed", "FailureTarget")


def _read(reader: Callable[..., Any], *args: Any) -> Any | None:
    try:
        return reader(*args)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def _conditions(obj: Any) -> list[Any]:
    return list((obj.status and obj.status.conditions) or [])


def describe_conditions(obj: Any) -> str:
    return "; ".join(f"{c.type}={c.status} ({c.reason}: {c.message})"
                     for c in _conditions(obj)) or "no conditions"


def _namespace_gone(core: CoreV1Api, namespace: str) -> str | None:
    ns = _read(core.read_namespace, namespace)
    if ns is None:
        return f"namespace {namespace} does not exist"
    if ns.metadata.deletion_timestamp is not None:
        return f"namespace {namespace} is being deleted"
    return None


def _failed_create_events(core: CoreV1Api, namespace: str, kind: str, name: str) -> str | None:
    """The newest FailedCreate event of an object (Pod Security, quota…), if any."""
    events = core.list_namespaced_event(
        namespace, field_selector=(f"involvedObject.kind={kind},involvedObject.name={name},"
                                   "reason=FailedCreate")).items
    if not events:
        return None
    newest = max(events, key=lambda e: (e.last_timestamp or e.event_time or
                                        e.metadata.creation_timestamp))
    return f"{kind} {name} cannot create Pods: {newest.message}"


# --------------------------------------------------------------------------- Jobs


def job_probe(batch: BatchV1Api, name: str, namespace: str, seen: list[bool]) -> Probe:
    job = _read(batch.read_namespaced_job_status, name, namespace)
    if job is None:
        if seen:
            return Probe(failure=f"Job {namespace}/{name} was deleted before it finished")
        return Probe(state="Job does not exist yet")
    seen.append(True)
    true = {c.type for c in _conditions(job) if c.status == "True"}
    if true & set(JOB_FAILURE):
        return Probe(failure=f"Job {namespace}/{name} failed: {describe_conditions(job)}")
    if true & set(JOB_SUCCESS):
        return Probe(done=True, state=describe_conditions(job))
    status = job.status
    return Probe(state=(f"active={status.active or 0} succeeded={status.succeeded or 0} "
                        f"failed={status.failed or 0}; {describe_conditions(job)}"))


def wait_job_succeeded(batch: BatchV1Api, name: str, namespace: str,
                       timeout: float = 120) -> None:
    """Success: `Complete` or `SuccessCriteriaMet`. Failure: `Failed`/`FailureTarget`, or
    the Job vanishing after it was seen."""
    seen: list[bool] = []
    poll(f"Job {namespace}/{name}", lambda: job_probe(batch, name, namespace, seen), timeout)


# --------------------------------------------------------------------------- workloads


def deployment_probe(apps: AppsV1Api, core: CoreV1Api, name: str, namespace: str) -> Probe:
    dep = _read(apps.read_namespaced_deployment_status, name, namespace)
    if dep is None:
        return Probe(failure=f"Deployment {namespace}/{name} does not exist")
    conds = {c.type: c for c in _conditions(dep)}
    progressing = conds.get("Progressing")
    if progressing and progressing.status == "False":
        return Probe(failure=f"Deployment {namespace}/{name}: {describe_conditions(dep)}")
    failure = conds.get("ReplicaFailure")
    if failure and failure.status == "True":
        return Probe(failure=f"Deployment {namespace}/{name}: {failure.message}")
    for rs in apps.list_namespaced_replica_set(namespace).items:
        owners = rs.metadata.owner_references or []
        if any(o.kind == "Deployment" and o.name == name for o in owners):
            why = _failed_create_events(core, namespace, "ReplicaSet", rs.metadata.name)
            if why and (rs.status.replicas or 0) < (rs.spec.replicas or 0):
                return Probe(failure=why)
    want = dep.spec.replicas if dep.spec.replicas is not None else 1
    st = dep.status
    done = ((st.observed_generation or 0) >= dep.metadata.generation
            and (st.updated_replicas or 0) == want and (st.replicas or 0) == want
            and (st.available_replicas or 0) == want)
    return Probe(done=done, state=(f"replicas={st.replicas} updated={st.updated_replicas} "
                                   f"available={st.available_replicas} want={want}"))


def wait_deployment_rolled_out(apps: AppsV1Api, core: CoreV1Api, name: str, namespace: str,
                               timeout: float = 120) -> None:
    """Success: every replica updated and available. Failure: ProgressDeadlineExceeded,
    ReplicaFailure, or the ReplicaSet's FailedCreate events (e.g. Pod Security)."""
    poll(f"Deployment {namespace}/{name} rollout",
         lambda: deployment_probe(apps, core, name, namespace), timeout)


def statefulset_probe(apps: AppsV1Api, core: CoreV1Api, name: str, namespace: str) -> Probe:
    sts = _read(apps.read_namespaced_stateful_set_status, name, namespace)
    if sts is None:
        return Probe(failure=f"StatefulSet {namespace}/{name} does not exist")
    want = sts.spec.replicas if sts.spec.replicas is not None else 1
    st = sts.status
    why = _failed_create_events(core, namespace, "StatefulSet", name)
    if why and (st.replicas or 0) < want:
        return Probe(failure=why)
    done = ((st.observed_generation or 0) >= sts.metadata.generation
            and (st.ready_replicas or 0) == want and (st.updated_replicas or 0) == want
            and (st.current_revision == st.update_revision or want == 0))
    return Probe(done=done, state=(f"replicas={st.replicas} ready={st.ready_replicas} "
                                   f"updated={st.updated_replicas} want={want}"))


def wait_statefulset_rolled_out(apps: AppsV1Api, core: CoreV1Api, name: str, namespace: str,
                                timeout: float = 120) -> None:
    """Success: every replica ready at the update revision. Failure: FailedCreate events."""
    poll(f"StatefulSet {namespace}/{name} rollout",
         lambda: statefulset_probe(apps, core, name, namespace), timeout)


# --------------------------------------------------------------------------- existence


def wait_exists(core: CoreV1Api, read: Callable[[], Any], what: str, namespace: str,
                timeout: float = 60) -> Any:
    """Wait until `read()` stops answering 404; fails when the namespace goes away."""
    found: list[Any] = []

    def probe() -> Probe:
        obj = _read(read)
        if obj is not None:
            found.append(obj)
            return Probe(done=True)
        gone = _namespace_gone(core, namespace)
        return Probe(failure=gone, state="absent (404)")

    poll(what, probe, timeout)
    return found[-1]


def wait_namespace_deleted(core: CoreV1Api, namespace: str, timeout: float = 120) -> None:
    """Success: the namespace is gone. Failure: a deletion condition reports an error."""
    bad = ("NamespaceDeletionDiscoveryFailure", "NamespaceDeletionGroupVersionParsingFailure",
           "NamespaceDeletionContentFailure")

    def probe() -> Probe:
        ns = _read(core.read_namespace, namespace)
        if ns is None:
            return Probe(done=True)
        errors = [c for c in _conditions(ns) if c.type in bad and c.status == "True"]
        if errors:
            return Probe(failure="; ".join(f"{c.type}: {c.message}" for c in errors))
        return Probe(state=describe_conditions(ns))

    poll(f"deletion of namespace {namespace}", probe, timeout)
