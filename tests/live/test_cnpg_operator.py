"""What the real CloudNativePG operator makes of the chart's metastore `Cluster`, checked
against what the rendered `Superset` resource reads.

The local control plane runs CloudNativePG 1.30 (`lastack.cluster.operators`) on kwok Nodes: the
Secrets, Services, PVCs, the initdb Job and the instance Pods it creates are real; the
PostgreSQL inside them, and everything that needs it (the instance status, failover,
backups), only a cluster with running containers shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client

from lastack import polling
from lastack.chart.chart_values import deep_merge
from lastack.chart.render import CNPG_API, SUPERSET_API
from lastack.cluster.operators import CNPG_NAMESPACES
from lastack.paths import VALUES_DIR
from lastack.testing.helm_release import API_VERSION_ARGS, Helm, base_values, kubectl
from tests.helpers import HELM_VERSIONS
from tests.live.cluster import LiveCluster, create_namespace, delete_namespace
from tests.live.eck import decoded

RECONCILE_SECONDS = 90
PROFILES = {"demo": VALUES_DIR / "demo.yaml", "production": VALUES_DIR / "production.yaml"}


@dataclass
class Metastore:
    namespace: str
    cluster: dict[str, Any]  # the rendered Cluster
    superset: dict[str, Any]  # the rendered Superset resource


def rendered(helm: Helm, namespace: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    extra = (*API_VERSION_ARGS, "--api-versions", SUPERSET_API)
    return [d for d in yaml.safe_load_all(helm.template(namespace, values, extra=extra)) if d]


def apply(env: dict[str, str], namespace: str, docs: list[dict[str, Any]]) -> None:
    kubectl(env, "apply", "--server-side", "--field-manager=la-stack-test", "-n", namespace,
            "-f", "-", stdin=yaml.safe_dump_all(docs))


# The local control plane's CloudNativePG reconciles only its own namespaces: one each.
PARAMS = [(h, p) for h in HELM_VERSIONS for p in PROFILES]
assert len(PARAMS) <= len(CNPG_NAMESPACES)


@pytest.fixture(scope="module", params=PARAMS, ids=lambda p: f"{p[1]}-{p[0]}")
def metastore(request: pytest.FixtureRequest, live_cluster: LiveCluster,
              core: client.CoreV1Api, tool_env: dict[str, str],
              cnpg_operator: None) -> Iterator[Metastore]:
    helm_name, profile = request.param
    helm = Helm(helm_name, tool_env)
    namespace = create_namespace(core, CNPG_NAMESPACES[PARAMS.index(request.param)], exact=True)
    values = deep_merge(base_values(live_cluster.local),
                        yaml.safe_load(PROFILES[profile].read_text()) or {})
    values = deep_merge(values, {"superset": {"enabled": True}})
    docs = rendered(helm, namespace, values)
    clusters = [d for d in docs if d["kind"] == "Cluster" and d["apiVersion"] == CNPG_API]
    supersets = [d for d in docs if d["kind"] == "Superset"]
    assert len(clusters) == 1 and len(supersets) == 1, [d["kind"] for d in docs]
    try:
        apply(tool_env, namespace, clusters)
        yield Metastore(namespace, clusters[0], supersets[0])
    finally:
        delete_namespace(core, namespace)


def owned_by_cluster(obj: Any, name: str) -> bool:
    return any(o.kind == "Cluster" and o.name == name
               for o in obj.metadata.owner_references or [])


def read_made(read: Callable[[str, str], Any], namespace: str, name: str) -> Any:
    """The object once the operator has made it (Secrets and Services come a moment apart)."""
    seen: list[Any] = []

    def found() -> polling.Probe:
        try:
            seen.append(read(name, namespace))
        except client.exceptions.ApiException as err:
            if err.status != 404:
                raise
        return polling.Probe(done=bool(seen), state=f"no {name} yet")

    polling.poll(f"{name} from CloudNativePG", found, RECONCILE_SECONDS)
    return seen[-1]


def read_secret(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Secret:
    return read_made(core.read_namespaced_secret, namespace, name)


class TestMetastoreCluster:
    def test_app_secret_carries_what_superset_reads(self, metastore: Metastore,
                                                    core: client.CoreV1Api) -> None:
        """The Superset resource's `metastore.uriFrom` names a Secret and key that the
        operator really created, owned by the Cluster, and the URI in it points at the
        database and read-write Service of that Cluster."""
        name = metastore.cluster["metadata"]["name"]
        ref = metastore.superset["spec"]["metastore"]["uriFrom"]
        secret = read_secret(core, metastore.namespace, ref["name"])
        assert owned_by_cluster(secret, name)
        data = decoded(secret)
        assert ref["key"] in data, sorted(data)
        uri = urlsplit(data[ref["key"]])
        assert uri.scheme.startswith("postgres")
        initdb = metastore.cluster["spec"]["bootstrap"]["initdb"]
        assert uri.path.lstrip("/") == initdb["database"]
        assert uri.username == initdb["owner"]
        service, service_namespace = uri.hostname.split(".")[:2]
        assert service_namespace == metastore.namespace
        svc = read_made(core.read_namespaced_service, metastore.namespace, service)
        assert owned_by_cluster(svc, name)
        assert uri.port in [p.port for p in svc.spec.ports]
        assert svc.spec.selector.get("cnpg.io/instanceRole") == "primary"  # the -rw one

    def test_instances_keep_apart_as_the_values_promise(self, metastore: Metastore,
                                                        core: client.CoreV1Api) -> None:
        """The first instance Pod the operator creates carries the anti-affinity the
        Cluster asks for (later instances wait for a primary that kwok cannot run)."""
        name = metastore.cluster["metadata"]["name"]
        affinity = metastore.cluster["spec"]["affinity"]

        selector = f"cnpg.io/cluster={name},cnpg.io/instanceName"

        def instances() -> list[Any]:
            return core.list_namespaced_pod(metastore.namespace, label_selector=selector).items

        polling.poll(f"an instance Pod of {name}",
                   lambda: polling.Probe(done=bool(instances()), state="no instance Pod yet"),
                   RECONCILE_SECONDS)
        pod = instances()[0]
        anti = core.api_client.sanitize_for_serialization(pod.spec.affinity.pod_anti_affinity)
        kind = ("requiredDuringSchedulingIgnoredDuringExecution"
                if affinity["podAntiAffinityType"] == "required"
                else "preferredDuringSchedulingIgnoredDuringExecution")
        terms = anti[kind]
        keys = [t.get("topologyKey") or t["podAffinityTerm"]["topologyKey"] for t in terms]
        assert affinity["topologyKey"] in keys

    def test_reapplying_keeps_the_password(self, metastore: Metastore,
                                           core: client.CoreV1Api,
                                           tool_env: dict[str, str]) -> None:
        """An upgrade re-applies the same Cluster: the generated password stays."""
        ref = metastore.superset["spec"]["metastore"]["uriFrom"]
        before = decoded(read_secret(core, metastore.namespace, ref["name"]))
        apply(tool_env, metastore.namespace, [metastore.cluster])
        after = decoded(read_secret(core, metastore.namespace, ref["name"]))
        assert after["password"] == before["password"] and after[ref["key"]] == before[ref["key"]]
