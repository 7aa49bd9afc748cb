"""NetworkPolicies (`networkPolicy.enabled`): the release's Pods deny all traffic but the
paths the stack uses. A path is allowed when a policy selecting the destination Pod lets the
source in on the port, and a policy selecting the source lets it out; the Pods' labels and
ports are those the charts render (ECK's Elasticsearch Pods: the label ECK sets)."""

from __future__ import annotations

import copy

import jmespath
import pytest

from lastack.chart.render import HelmFailedError, find, render_chart
from tests.helpers import mentions_key, requires_subcharts
from tests.render.network_policies import (
    ECK_CLUSTER_LABEL,
    ENABLED,
    METADATA_ENDPOINT,
    VALUES,
    allowed,
    container_port,
    egress_to_address,
    es_pod_labels,
    hook_labels,
    ingress_from_peer,
    network_policies,
    pod_labels,
    policies_of,
    ports_allow,
)


@pytest.fixture
def enabled(helm) -> list[dict]:
    return render_chart(helm=helm, values=ENABLED)


class TestNetworkPolicySwitch:
    """Off by default; on, it validates and refuses the Moodle chart's permissive policies."""

    def test_should_render_none_of_ours_by_default(self, helm):
        ours = [p for p in find(render_chart(helm=helm), "NetworkPolicy")
                if jmespath.search('metadata.labels."app.kubernetes.io/component"', p)
                == "network"]
        assert ours == []

    def test_should_deny_everything_by_default_for_the_release_pods(self, enabled):
        (deny,) = [p for p in network_policies(enabled)
                   if p["metadata"]["name"].endswith("-default-deny")]
        assert jmespath.search("spec.podSelector.matchLabels", deny) == {
            "app.kubernetes.io/instance": "la-stack"}
        assert sorted(jmespath.search("spec.policyTypes", deny)) == ["Egress", "Ingress"]
        assert not jmespath.search("spec.ingress", deny)
        assert not jmespath.search("spec.egress", deny)

    @pytest.mark.parametrize("key", ["moodle.networkPolicy.enabled",
                                     "moodle.mariadb.networkPolicy.enabled"])
    def test_should_refuse_the_moodle_charts_own_policies(self, helm, key):
        values = copy.deepcopy(ENABLED)
        node = values
        for part in key.split(".")[:-1]:
            node = node.setdefault(part, {})
        node["enabled"] = True
        with pytest.raises(HelmFailedError) as failed:
            render_chart(helm=helm, values=values)
        assert mentions_key(failed.value.stderr, key)

    def test_should_select_every_workload_of_the_release(self, enabled):
        policies = network_policies(enabled)
        workloads = [o for o in enabled if o["kind"] in {"Deployment", "StatefulSet", "Job"}]
        assert workloads
        for workload in workloads:
            labels = jmespath.search("spec.template.metadata.labels", workload)
            assert policies_of(policies, labels, "ingress"), workload["metadata"]["name"]
            assert policies_of(policies, labels, "egress"), workload["metadata"]["name"]


class TestHookPaths:
    """la-stack's own Pods: Elasticsearch for the bootstrap, the kube-apiserver for secrets."""

    def test_should_let_the_bootstrap_hook_reach_elasticsearch(self, enabled):
        policies = network_policies(enabled)
        bootstrap = hook_labels(enabled, "la-stack-es-bootstrap")
        assert allowed(policies, bootstrap, es_pod_labels(enabled), 9200)

    def test_should_let_only_the_secrets_hook_reach_the_api_server(self, enabled):
        policies = network_policies(enabled)
        secrets = hook_labels(enabled, "la-stack-secrets")
        bootstrap = hook_labels(enabled, "la-stack-es-bootstrap")
        for port in VALUES["apiServer"]["ports"]:
            assert egress_to_address(policies, secrets, "10.96.0.1", port)
            assert not egress_to_address(policies, bootstrap, "10.96.0.1", port)

    def test_should_narrow_the_api_server_to_the_given_addresses(self, helm):
        values = {**ENABLED, "networkPolicy": {"enabled": True,
                                               "apiServer": {"cidrs": ["192.0.2.10/32"]}}}
        policies = network_policies(render_chart(helm=helm, values=values))
        secrets = hook_labels(render_chart(helm=helm, values=values), "la-stack-secrets")
        assert egress_to_address(policies, secrets, "192.0.2.10", 6443)
        assert not egress_to_address(policies, secrets, "192.0.2.11", 6443)

    def test_should_let_the_eck_operator_reach_elasticsearch(self, enabled):
        operator = {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": VALUES["eckOperatorNamespace"]}}}
        assert ingress_from_peer(network_policies(enabled), es_pod_labels(enabled),
                                 operator, 9200)

    @requires_subcharts("eck-elasticsearch")
    def test_should_select_the_pods_of_the_rendered_elasticsearch(self, enabled):
        name = jmespath.search("metadata.name", find(enabled, "Elasticsearch")[0])
        assert es_pod_labels(enabled) == {ECK_CLUSTER_LABEL: name}

    def test_should_let_elasticsearch_nodes_talk_to_each_other(self, enabled):
        es = es_pod_labels(enabled)
        assert allowed(network_policies(enabled), es, es, 9300)

    def test_should_let_every_selected_pod_resolve_names(self, enabled):
        dns = VALUES["dns"]
        policies = network_policies(enabled)
        for policy in policies:
            if policy["metadata"]["name"].endswith("-default-deny"):
                continue
            rules = [r for r in policy["spec"]["egress"] if dns in r.get("to", [])]
            assert rules and all(ports_allow(r, 53, "UDP") and ports_allow(r, 53, "TCP")
                                 for r in rules), policy["metadata"]["name"]


@requires_subcharts("ralph", "moodle")
class TestMoodleAndRalphPaths:
    """Moodle sends to Ralph, Ralph writes to Elasticsearch; Moodle reaches nothing else."""

    def test_should_let_moodle_reach_ralph(self, enabled):
        moodle = pod_labels(enabled, "Deployment", "la-stack-moodle")
        ralph = pod_labels(enabled, "Deployment", "la-stack-ralph")
        port = container_port(enabled, "Deployment", "la-stack-ralph")
        assert allowed(network_policies(enabled), moodle, ralph, port)

    def test_should_let_moodle_reach_its_database(self, enabled):
        moodle = pod_labels(enabled, "Deployment", "la-stack-moodle")
        mariadb = pod_labels(enabled, "StatefulSet", "la-stack-mariadb")
        port = container_port(enabled, "StatefulSet", "la-stack-mariadb")
        assert allowed(network_policies(enabled), moodle, mariadb, port)

    def test_should_let_ralph_reach_elasticsearch(self, enabled):
        ralph = pod_labels(enabled, "Deployment", "la-stack-ralph")
        assert allowed(network_policies(enabled), ralph, es_pod_labels(enabled), 9200)

    def test_should_keep_moodle_away_from_elasticsearch_and_the_metadata_endpoint(
            self, enabled):
        policies = network_policies(enabled)
        moodle = pod_labels(enabled, "Deployment", "la-stack-moodle")
        assert not allowed(policies, moodle, es_pod_labels(enabled), 9200)
        assert not egress_to_address(policies, moodle, METADATA_ENDPOINT, 80)
        assert not egress_to_address(policies, moodle, METADATA_ENDPOINT, 443)

    def test_should_let_the_ingress_controller_reach_moodle_and_ralph(self, enabled):
        controller = VALUES["ingressController"]
        policies = network_policies(enabled)
        for kind, name in (("Deployment", "la-stack-moodle"), ("Deployment", "la-stack-ralph")):
            assert ingress_from_peer(policies, pod_labels(enabled, kind, name), controller,
                                     container_port(enabled, kind, name)), name

    def test_should_let_the_helm_test_pod_reach_ralph(self, enabled):
        tester = jmespath.search("metadata.labels",
                                 find(enabled, "Pod", "la-stack-test-data-path")[0])
        ralph = pod_labels(enabled, "Deployment", "la-stack-ralph")
        port = container_port(enabled, "Deployment", "la-stack-ralph")
        assert allowed(network_policies(enabled), tester, ralph, port)

    def test_should_reach_the_internet_only_where_a_value_asks(self, helm, enabled):
        moodle = pod_labels(enabled, "Deployment", "la-stack-moodle")
        ralph = pod_labels(enabled, "Deployment", "la-stack-ralph")
        assert egress_to_address(network_policies(enabled), moodle, "198.51.100.7", 443)
        assert not egress_to_address(network_policies(enabled), ralph, "198.51.100.7", 443)
        values = {**ENABLED, "networkPolicy": {"enabled": True, "internetEgress": []}}
        closed = network_policies(render_chart(helm=helm, values=values))
        assert not egress_to_address(closed, moodle, "198.51.100.7", 443)


# The labels the Superset operator 0.2.0 puts on the Pods of a `Superset` resource
# (`internal/common/names.go`, `superset.apache.org/parent` = the resource's name), and the
# label CloudNativePG puts on every instance of a `Cluster`: those Pods are created in the
# cluster, never rendered, so their labels are written here as the operators document them.
SUPERSET_POD = {"app.kubernetes.io/name": "superset",
                "superset.apache.org/parent": "la-stack-dashboards",
                "app.kubernetes.io/instance": "la-stack-dashboards-web-server"}
SUPERSET_WEB = {**SUPERSET_POD, "app.kubernetes.io/component": "web-server"}
SUPERSET_WORKER = {**SUPERSET_POD, "app.kubernetes.io/component": "celery-worker",
                   "app.kubernetes.io/instance": "la-stack-dashboards-celery-worker"}
METASTORE_POD = {"cnpg.io/cluster": "la-stack-superset-db", "cnpg.io/instanceRole": "primary",
                 "app.kubernetes.io/instance": "la-stack"}


class TestSupersetPaths:
    """Superset reads Elasticsearch, its metastore and its cache; the wiring hook calls it."""

    def test_should_let_superset_reach_elasticsearch_and_its_metastore(self, enabled):
        policies = network_policies(enabled)
        for pod in (SUPERSET_WEB, SUPERSET_WORKER):
            assert allowed(policies, pod, es_pod_labels(enabled), 9200)
            assert allowed(policies, pod, METASTORE_POD, 5432)
        assert not allowed(policies, hook_labels(enabled, "la-stack-superset-wiring"),
                           METASTORE_POD, 5432)

    def test_should_let_the_metastore_replicate_and_its_operator_reach_it(self, enabled):
        policies = network_policies(enabled)
        assert allowed(policies, METASTORE_POD, METASTORE_POD, 5432)
        cnpg = {"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": VALUES["cnpgOperatorNamespace"]}}}
        for port in (8000, 5432):
            assert ingress_from_peer(policies, METASTORE_POD, cnpg, port)
        assert egress_to_address(policies, METASTORE_POD, "10.0.0.1", 6443)

    def test_should_let_the_wiring_hook_and_the_ingress_controller_reach_superset(
            self, enabled):
        policies = network_policies(enabled)
        assert allowed(policies, hook_labels(enabled, "la-stack-superset-wiring"),
                       SUPERSET_WEB, 8088)
        assert ingress_from_peer(policies, SUPERSET_WEB, VALUES["ingressController"], 8088)
        assert not ingress_from_peer(policies, SUPERSET_WORKER, VALUES["ingressController"],
                                     8088)


@requires_subcharts("valkey", "superset-operator")
class TestSupersetSubchartPaths:
    """The Valkey and operator Pods as their charts label them."""

    def test_should_let_superset_reach_valkey(self, enabled):
        policies = network_policies(enabled)
        valkey = pod_labels(enabled, "Deployment", "la-stack-valkey")
        assert allowed(policies, SUPERSET_WORKER, valkey,
                       container_port(enabled, "Deployment", "la-stack-valkey"))
        assert not allowed(policies, hook_labels(enabled, "la-stack-superset-wiring"),
                           valkey, 6379)

    def test_should_let_the_operator_reach_the_api_server(self, enabled):
        operator = pod_labels(enabled, "Deployment", "la-stack-superset-operator")
        assert egress_to_address(network_policies(enabled), operator, "10.0.0.1", 6443)
