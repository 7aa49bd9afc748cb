"""The production profile (`values/production.yaml`) as the real ECK operator reconciles it:
the StatefulSet carries the anti-affinity the values promise and the scheduler keeps the
Elasticsearch Pods on distinct Nodes; the PodDisruptionBudget is ECK's own, health-aware one.

The local control plane runs the ECK operator (`lastack.cluster.operators`) on kwok Nodes: the
objects, the scheduling and the budget are real; Elasticsearch running in those Pods, and
the budget holding during a real drain, only a cluster with running containers shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from kubernetes import client

from lastack import polling
from lastack.chart.chart_values import deep_merge
from lastack.paths import VALUES_DIR
from lastack.testing.helm_release import API_VERSION_ARGS, Helm, base_values
from lastack.testing.hookrunner import HookRunner
from tests.helpers import HELM_VERSIONS
from tests.live import eck
from tests.live.cluster import LiveCluster, create_namespace, delete_namespace

PRODUCTION = VALUES_DIR / "production.yaml"


@dataclass
class Production:
    helm: Helm
    namespace: str
    values: dict[str, Any]

    def elasticsearch(self) -> dict[str, Any]:
        manifest = self.helm.template(self.namespace, self.values,
                                      extra=API_VERSION_ARGS)
        return eck.elasticsearch([d for d in yaml.safe_load_all(manifest) if d])


@pytest.fixture(scope="module", params=HELM_VERSIONS)
def production(request: pytest.FixtureRequest, live_cluster: LiveCluster,
               api: client.ApiClient, core: client.CoreV1Api, tool_env: dict[str, str],
               eck_operator: None) -> Iterator[Production]:
    eck.require_subchart()
    helm = Helm(request.param, tool_env)
    namespace = create_namespace(core, f"la-stack-prod-{helm.name}")
    values = deep_merge(base_values(live_cluster.local), yaml.safe_load(PRODUCTION.read_text()))
    runner = HookRunner(api, live_cluster.server, namespace) if live_cluster.local else None
    try:
        with runner or nullcontext():
            proc = helm.install(namespace, values, check=False)
        report = runner.report() if runner else ""
        assert proc.returncode == 0, f"{proc.stderr}\n{report}"
        yield Production(helm, namespace, values)
    finally:
        delete_namespace(core, namespace)


class TestProductionShape:
    def test_statefulset_keeps_elasticsearch_nodes_apart(self, production: Production,
                                                         apps: client.AppsV1Api,
                                                         core: client.CoreV1Api) -> None:
        """The operator's StatefulSet has the node set's count and the anti-affinity of the
        values, and the scheduler put each of its Pods on its own Node (as many as there
        are Nodes; the others stay Pending, which is the rule at work)."""
        es = production.elasticsearch()
        es_name = es["metadata"]["name"]
        node_set = es["spec"]["nodeSets"][0]
        promised = node_set["podTemplate"]["spec"]["affinity"]["podAntiAffinity"]
        name = eck.node_set_statefulset(apps, production.namespace, es_name, node_set["name"])
        sts = apps.read_namespaced_stateful_set(name, production.namespace)
        assert sts.spec.replicas == node_set["count"]
        anti = apps.api_client.sanitize_for_serialization(
            sts.spec.template.spec.affinity.pod_anti_affinity)
        required = anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        for term in promised["requiredDuringSchedulingIgnoredDuringExecution"]:
            assert term in required, f"{term} not in {required}"
        nodes = len(core.list_node().items)
        selector = ",".join(f"{k}={v}" for k, v in sts.spec.selector.match_labels.items())

        def placed() -> polling.Probe:
            pods = core.list_namespaced_pod(production.namespace, label_selector=selector).items
            hosts = [p.spec.node_name for p in pods if p.spec.node_name]
            return polling.Probe(done=len(pods) == node_set["count"]
                               and len(hosts) == min(nodes, node_set["count"]),
                               state=f"{len(pods)} Pods, on {hosts}")

        hosts = polling.poll(f"the Pods of {name} scheduled", placed, eck.RECONCILE_SECONDS)
        on = [p.spec.node_name for p in core.list_namespaced_pod(
            production.namespace, label_selector=selector).items if p.spec.node_name]
        assert len(set(on)) == len(on), f"two Elasticsearch Pods share a Node: {hosts.state}"

    def test_disruption_budget_is_ecks_health_aware_default(self, production: Production,
                                                            core: client.CoreV1Api) -> None:
        """The profile sets no budget, so the operator's default one is in charge: it selects
        the cluster's Pods by its name and lets one go only while the cluster is green. Here
        the operator never sees it green (no Elasticsearch runs on kwok), so it allows none:
        every node must stay, which is that rule at work."""
        es = production.elasticsearch()
        assert "podDisruptionBudget" not in es["spec"]
        es_name = es["metadata"]["name"]
        nodes = sum(ns["count"] for ns in es["spec"]["nodeSets"])
        policy = client.PolicyV1Api(core.api_client)

        def owned() -> list[Any]:
            return [p for p in policy.list_namespaced_pod_disruption_budget(
                production.namespace).items if eck.owned_by_elasticsearch(p, es_name)]

        polling.poll("the operator's PodDisruptionBudget",
                   lambda: polling.Probe(done=bool(owned()), state=f"{len(owned())} owned budgets"),
                   eck.RECONCILE_SECONDS)
        budgets = owned()
        assert len(budgets) == 1, [p.metadata.name for p in budgets]
        live = policy.api_client.sanitize_for_serialization(budgets[0].spec)
        assert live["selector"]["matchLabels"] == {
            "elasticsearch.k8s.elastic.co/cluster-name": es_name}
        assert live["minAvailable"] == nodes  # not green: no disruption allowed
