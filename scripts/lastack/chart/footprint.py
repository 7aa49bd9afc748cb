"""`make footprint`: CPU, memory and storage per component, from the full render.

Long-running workloads count towards the totals (replicas x containers). Hook Jobs and
test Pods run briefly and one at a time, so they are listed apart and not added up.
The Elasticsearch resource is read like ECK reads it: its node sets' Pod templates, and
ECK's default of 2Gi memory when a node set sets none. The `Superset` resource counts its
components (web server, Celery worker, beat, …: replicas x the component's container, else
the shared one) and lists its lifecycle tasks apart; a CloudNativePG `Cluster` counts
`instances` x its resources and storage.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from lastack.chart import chartdeps
from lastack.chart.render import render_chart
from lastack.paths import VALUES_DIR

ECK_DEFAULT_MEMORY = Decimal(2 * 1024**3)
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}
TRANSIENT = {"Job", "CronJob", "Pod"}
OPERATED = {"Elasticsearch", "Superset", "Cluster"}
# Components of a `Superset` resource (presence = enabled) and their default replicas.
SUPERSET_COMPONENTS = ("webServer", "celeryWorker", "celeryBeat", "celeryFlower",
                       "websocketServer", "mcpServer")
_BINARY = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "m": Decimal("0.001")}


def quantity(value: str | int | float | None) -> Decimal:
    """A Kubernetes quantity as a number (cores or bytes)."""
    if value is None:
        return Decimal(0)
    text = str(value)
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * factor
    for suffix, factor in _DECIMAL.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * Decimal(factor)
    return Decimal(text)


@dataclass
class Usage:
    cpu_request: Decimal = Decimal(0)
    cpu_limit: Decimal = Decimal(0)
    memory_request: Decimal = Decimal(0)
    memory_limit: Decimal = Decimal(0)
    storage: Decimal = Decimal(0)
    objects: list[str] = field(default_factory=list)

    def add_containers(self, containers: Iterable[dict], times: int,
                       default_memory: Decimal = Decimal(0)) -> None:
        for container in containers:
            res = container.get("resources") or {}
            requests, limits = res.get("requests") or {}, res.get("limits") or {}
            memory_limit = quantity(limits.get("memory")) or default_memory
            memory_request = quantity(requests.get("memory")) or memory_limit
            self.cpu_request += quantity(requests.get("cpu")) * times
            self.cpu_limit += quantity(limits.get("cpu")) * times
            self.memory_request += memory_request * times
            self.memory_limit += memory_limit * times

    def add(self, other: Usage) -> None:
        for name in ("cpu_request", "cpu_limit", "memory_request", "memory_limit", "storage"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def component_of(obj: dict) -> str:
    labels = obj["metadata"].get("labels") or {}
    if obj["kind"] == "Elasticsearch":
        return "elasticsearch"
    if obj["kind"] == "Superset":
        return "superset"
    return (labels.get("app.kubernetes.io/component") if labels.get(
        "app.kubernetes.io/part-of") == "la-stack" else None) or labels.get(
        "app.kubernetes.io/name") or obj["metadata"]["name"]


def claim_storage(templates: Iterable[dict], times: int) -> Decimal:
    return sum((quantity(t["spec"]["resources"]["requests"]["storage"]) * times
                for t in templates), Decimal(0))


def usage_by_component(objects: list[dict]) -> tuple[dict[str, Usage], dict[str, Usage]]:
    """({component: steady usage}, {component: transient usage})."""
    steady: dict[str, Usage] = defaultdict(Usage)
    transient: dict[str, Usage] = defaultdict(Usage)
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        target = steady if kind in WORKLOADS | OPERATED | {"PersistentVolumeClaim"} \
            else transient if kind in TRANSIENT else None
        if target is None:
            continue
        usage = target[component_of(obj)]
        usage.objects.append(f"{kind}/{name}")
        spec = obj["spec"]
        if kind == "Superset":
            add_superset(usage, transient[f"{component_of(obj)}-lifecycle"], spec, name)
        elif kind == "Cluster":
            instances = spec.get("instances", 1)
            usage.add_containers([{"resources": spec.get("resources") or {}}], instances)
            usage.storage += quantity((spec.get("storage") or {}).get("size")) * instances
        elif kind == "Elasticsearch":
            for node_set in spec["nodeSets"]:
                count = node_set.get("count", 1)
                pod = (node_set.get("podTemplate") or {}).get("spec") or {}
                containers = pod.get("containers") or [{"name": "elasticsearch"}]
                usage.add_containers(containers, count, ECK_DEFAULT_MEMORY)
                usage.storage += claim_storage(node_set.get("volumeClaimTemplates") or [
                    {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}], count)
        elif kind == "PersistentVolumeClaim":
            usage.storage += quantity(spec["resources"]["requests"]["storage"])
        elif kind == "Pod":
            usage.add_containers(spec["containers"], 1)
        else:
            template = spec["jobTemplate"]["spec"]["template"] if kind == "CronJob" \
                else spec["template"]
            replicas = spec.get("replicas", 1) if kind in WORKLOADS else 1
            usage.add_containers(template["spec"]["containers"], replicas)
            usage.storage += claim_storage(spec.get("volumeClaimTemplates") or [], replicas)
    return dict(steady), dict(transient)


def _container(template: dict | None) -> dict:
    return ((template or {}).get("container")) or {}


def add_superset(steady: Usage, lifecycle: Usage, spec: dict, name: str) -> None:
    """A component's resources are its own container's, else the shared podTemplate's."""
    shared = _container(spec.get("podTemplate")).get("resources")
    for component in SUPERSET_COMPONENTS:
        if component not in spec:
            continue
        settings = spec[component] or {}
        resources = _container(settings.get("podTemplate")).get("resources") or shared or {}
        steady.add_containers([{"resources": resources}], settings.get("replicas", 1))
    tasks = spec.get("lifecycle") or {}
    if not tasks.get("disabled"):
        lifecycle.objects.append(f"Superset/{name} lifecycle tasks")
        resources = _container(tasks.get("podTemplate")).get("resources") or shared or {}
        lifecycle.add_containers([{"resources": resources}], 1)


def total(usages: Iterable[Usage]) -> Usage:
    out = Usage()
    for usage in usages:
        out.add(usage)
    return out


def fmt_cpu(value: Decimal) -> str:
    return f"{value:.2f}" if value else "-"


def fmt_bytes(value: Decimal) -> str:
    return f"{value / 1024**3:.2f}Gi" if value else "-"


def table(title: str, rows: dict[str, Usage], with_total: bool) -> list[str]:
    header = ("component", "cpu req", "cpu lim", "mem req", "mem lim", "storage")
    body = [(name, fmt_cpu(u.cpu_request), fmt_cpu(u.cpu_limit), fmt_bytes(u.memory_request),
             fmt_bytes(u.memory_limit), fmt_bytes(u.storage)) for name, u in sorted(rows.items())]
    if with_total:
        t = total(rows.values())
        body.append(("TOTAL", fmt_cpu(t.cpu_request), fmt_cpu(t.cpu_limit),
                     fmt_bytes(t.memory_request), fmt_bytes(t.memory_limit), fmt_bytes(t.storage)))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = "  ".join
    out = [title, line(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out += [line(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return out


def profile_usage(profile: Path) -> tuple[dict[str, Usage], dict[str, Usage]]:
    return usage_by_component(render_chart(values_files=[profile]))


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack footprint")
    parser.add_argument("profiles", nargs="*", default=["demo", "production"],
                        help="names of files in values/ (default: demo production)")
    opts = parser.parse_args(args)
    absent = [d.name for d in chartdeps.missing()]
    for name in opts.profiles:
        steady, transient = profile_usage(VALUES_DIR / f"{name}.yaml")
        print("\n".join(table(f"\n== {name} profile: long-running workloads", steady, True)))
        print("\n".join(table("-- hook Jobs and test Pods (brief, one at a time; not totalled)",
                              transient, False)))
    if absent:
        print(f"\nnot counted (subchart archives absent): {', '.join(absent)}")
    return 0
