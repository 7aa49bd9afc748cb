"""Ralph: its settings and the ralph subchart's wiring, the Ingress the Moodle sites of
`lrs.sources` send to, its disruption budget, and what its probes mean."""

from __future__ import annotations

import json
import re

import jmespath
import pytest
import yaml

from lastack.chart.render import HelmFailedError, find, render_chart
from lastack.paths import CHART_DIR, VALUES_DIR, shared_dir
from tests.helpers import mentions_key, requires_subcharts
from tests.render.support import CA_SECRET, PROFILE_IDS, PROFILES, restricted

INGRESS = ["templates/ralph/ingress.yaml"]
PRODUCTION = VALUES_DIR / "production.yaml"
DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
FIXTURE = shared_dir() / "fixtures" / "logstore_xapi-v5.1.0" / "statements.json"
INGRESS_VALUES = {"enabled": True, "host": "lrs.example.org", "tls": {"secretName": "lrs-tls"}}
UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def with_ingress(**changes: object) -> dict:
    """An existing Moodle's values (the path the Ingress is for), with these changes."""
    return {"moodle": {"enabled": False}, "lrs": {"ingress": {**INGRESS_VALUES, **changes}}}


def size_in_bytes(nginx_size: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kmg]?)", nginx_size.lower()).groups()
    return int(number) * UNITS[unit]


class TestRalphIngress:
    """Only the xAPI path, always TLS, a body limit that fits one batch."""

    def ingress(self, helm, values=None, **kwargs) -> dict:
        values = values or with_ingress()
        return render_chart(helm=helm, values=values, show_only=INGRESS, **kwargs)[0]

    def test_should_serve_only_the_xapi_path_of_ralphs_service(self, helm):
        ingress = self.ingress(helm, name="lrs")
        rule = jmespath.search("spec.rules[0]", ingress)
        assert rule["host"] == "lrs.example.org"
        assert jmespath.search("http.paths[*].[path, pathType]", rule) == [["/xAPI", "Prefix"]]
        backend = jmespath.search("http.paths[0].backend.service", rule)
        assert backend == {"name": "lrs-ralph", "port": {"number": 8080}}

    def test_should_always_have_tls_for_its_host(self, helm):
        tls = jmespath.search("spec.tls", self.ingress(helm))
        assert tls == [{"hosts": ["lrs.example.org"], "secretName": "lrs-tls"}]

    def test_should_let_cert_manager_issue_the_certificate_when_asked(self, helm):
        issued = self.ingress(helm, with_ingress(tls={"secretName": "lrs-tls",
                                                      "clusterIssuer": "letsencrypt"}))
        assert jmespath.search('metadata.annotations."cert-manager.io/cluster-issuer"',
                               issued) == "letsencrypt"
        own = self.ingress(helm)
        assert jmespath.search('metadata.annotations."cert-manager.io/cluster-issuer"',
                               own) is None

    @pytest.mark.skipif(not FIXTURE.exists(), reason=f"fixture {FIXTURE} is absent")
    def test_should_let_a_full_batch_of_the_largest_statements_through(self, helm):
        """1,000 statements per request (logstoreXapi.delivery.maxBatchSize) of the largest
        statement logstore_xapi's own tests produce, with room for real sites' longer texts."""
        largest = max(len(json.dumps(e["statement"]).encode()) for e in json.loads(
            FIXTURE.read_text()))
        setup = render_chart(helm=helm, values={"lrs": {
            "sources": {"campus": {"mbox": "mailto:m@campus.example.org"}}}},
            show_only=["templates/moodle/setup-configmap.yaml"])[0]
        script = setup["data"]["campus.sh"]
        batch = int(re.search(r'"maxbatchsize": "(\d+)"', script).group(1))
        limit = jmespath.search(
            'metadata.annotations."nginx.ingress.kubernetes.io/proxy-body-size"',
            self.ingress(helm))
        assert size_in_bytes(limit) >= 2 * batch * largest

    def test_should_take_the_ingress_class_and_extra_annotations(self, helm):
        ingress = self.ingress(helm, with_ingress(className="nginx",
                                                  annotations={"example.org/x": "1"}))
        assert jmespath.search("spec.ingressClassName", ingress) == "nginx"
        assert jmespath.search('metadata.annotations."example.org/x"', ingress) == "1"

    def test_should_be_absent_by_default(self, helm):
        assert not find(render_chart(helm=helm, subcharts=()), "Ingress")

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            (with_ingress(host=""), "lrs.ingress.host"),
            (with_ingress(tls={"secretName": ""}), "lrs.ingress.tls.secretName"),
            (with_ingress(maxBodySize="16 MB"), "lrs.ingress.maxBodySize"),
            ({"ralph": {"ingress": {"enabled": True}}}, "ralph.ingress.enabled"),
        ],
        ids=["no-host", "no-tls-secret", "bad-size", "upstream-ingress"],
    )
    def test_should_fail_naming_the_key(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=values, validate=False, subcharts=())
        assert mentions_key(err.value.stderr, key)


class TestRalphPodDisruptionBudget:
    """The ralph chart has no PDB; la-stack renders one for Ralph's Pods when asked
    (values/production.yaml does)."""

    PDB = ["templates/ralph/pdb.yaml"]
    PRODUCTION = [VALUES_DIR / "production.yaml"]

    def test_should_be_absent_by_default(self, helm):
        assert find(render_chart(helm=helm), "PodDisruptionBudget", "la-stack-ralph") == []

    def test_should_leave_a_replica_serving_in_production(self, helm):
        """Production scales by HPA: its minimum is the fewest Pods a drain starts from."""
        pdb = render_chart(helm=helm, values_files=self.PRODUCTION, show_only=self.PDB)[0]
        profile = yaml.safe_load(self.PRODUCTION[0].read_text())["ralph"]
        fewest = profile["autoscaling"].get(
            "minReplicas", DEFAULTS["ralph"]["autoscaling"]["minReplicas"])
        assert fewest - jmespath.search("spec.maxUnavailable", pdb) >= 1

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"podDisruptionBudget": {"enabled": True}}, "ralph.replicaCount"),
            ({"podDisruptionBudget": {"enabled": True},
              "autoscaling": {"enabled": True, "minReplicas": 1}},
             "ralph.autoscaling.minReplicas"),
        ],
        ids=["one-replica", "hpa-min-one"],
    )
    def test_should_refuse_a_budget_the_replicas_cannot_keep(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values={"ralph": values}, subcharts=())
        assert mentions_key(err.value.stderr, key)
        assert "maxUnavailable" in err.value.stderr

    @requires_subcharts("ralph")
    def test_should_select_exactly_ralphs_pods(self, helm):
        objects = render_chart(helm=helm, values_files=self.PRODUCTION)
        selector = jmespath.search("spec.selector.matchLabels",
                                   find(objects, "PodDisruptionBudget", "la-stack-ralph")[0])
        for obj in objects:
            labels = jmespath.search("spec.template.metadata.labels", obj) or {}
            selected = labels.items() >= selector.items()
            is_ralph = (obj["kind"], obj["metadata"]["name"]) == ("Deployment", "la-stack-ralph")
            assert selected == is_ralph, obj["metadata"]["name"]
        ralph = find(objects, "Deployment", "la-stack-ralph")[0]
        assert jmespath.search("spec.selector.matchLabels", ralph).items() <= selector.items()


@requires_subcharts("ralph")
class TestRalphProbes:
    """The ralph chart fixes its probes: liveness on the heartbeat, which asks Elasticsearch
    for its health, readiness on the load-balancer heartbeat (the process answers). So the
    heartbeat must accept yellow, or every ES rolling restart restarts every Ralph Pod."""

    @pytest.mark.parametrize("profile", [None, VALUES_DIR / "production.yaml"],
                             ids=["defaults", "production"])
    def test_should_not_fail_liveness_while_elasticsearch_is_yellow(self, helm, profile):
        objects = render_chart(helm=helm, values_files=[profile] if profile else [],
                               subcharts=["ralph", "eck-elasticsearch"])
        ralph = jmespath.search("spec.template.spec.containers[0]",
                                find(objects, "Deployment", "la-stack-ralph")[0])
        assert jmespath.search("livenessProbe.httpGet.path", ralph) == "/__heartbeat__"
        assert jmespath.search("readinessProbe.httpGet.path", ralph) == "/__lbheartbeat__"
        env = {}
        for name in jmespath.search("envFrom[].configMapRef.name", ralph):
            env.update(find(objects, "ConfigMap", name)[0]["data"])
        assert env["RALPH_BACKENDS__LRS__ES__ALLOW_YELLOW_STATUS"] == "true"
        nodes = sum(n["count"] for n in find(objects, "Elasticsearch")[0]["spec"]["nodeSets"])
        assert profile is None or nodes > 1, "production must be the multi-node case"


class TestRalphEnvironment:
    """The env ConfigMap Ralph loads: Elasticsearch backend over verified TLS."""

    TEMPLATE = ["templates/ralph/env-configmap.yaml"]

    @pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
    def test_should_verify_certificates_with_the_mounted_ca(self, helm, profile):
        files = [profile] if profile else []
        data = render_chart(helm=helm, values_files=files, show_only=self.TEMPLATE)[0]["data"]
        assert data["RALPH_BACKENDS__LRS__ES__CLIENT_OPTIONS__verify_certs"] == "true"
        assert data["RALPH_BACKENDS__LRS__ES__CLIENT_OPTIONS__ca_certs"] == (
            "/usr/local/share/ca-certificates/ca.crt")
        assert data["RALPH_BACKENDS__LRS__ES__DEFAULT_INDEX"] == "statements"
        assert data["RALPH_LRS_RESTRICT_BY_SCOPES"] == "true"
        assert data["RALPH_LRS_RESTRICT_BY_AUTHORITY"] == "true"

    @pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
    def test_should_allow_yellow_whatever_the_node_count(self, helm, profile):
        # Ralph's liveness probe is its heartbeat: an ECK rolling restart turns a cluster of
        # several nodes yellow, which must not restart every Ralph Pod.
        files = [profile] if profile else []
        data = render_chart(helm=helm, values_files=files, show_only=self.TEMPLATE)[0]["data"]
        assert data["RALPH_BACKENDS__LRS__ES__ALLOW_YELLOW_STATUS"] == "true"

    def test_should_let_users_decide_on_yellow(self, helm):
        values = {"lrs": {"backend": {"allowYellowStatus": False}}}
        data = render_chart(helm=helm, values=values, show_only=self.TEMPLATE)[0]["data"]
        assert data["RALPH_BACKENDS__LRS__ES__ALLOW_YELLOW_STATUS"] == "false"


@requires_subcharts("ralph")
class TestRalphSubchartWiring:
    """Our values land in the upstream ralph chart's objects."""

    def deployment(self, helm) -> dict:
        objects = render_chart(helm=helm, subcharts=["ralph"])
        return find(objects, "Deployment", "la-stack-ralph")[0]

    def test_should_load_env_from_our_configmap_and_generated_secret(self, helm):
        container = self.deployment(helm)["spec"]["template"]["spec"]["containers"][0]
        refs = jmespath.search("envFrom[].[configMapRef.name, secretRef.name][]", container)
        assert [r for r in refs if r] == [
            "la-stack-ralph-lrs", "la-stack-ralph-env", "la-stack-ralph-es"]

    def test_should_mount_auth_json_and_the_whole_ca_secret(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert jmespath.search('"lrs-auth".secret.secretName', volumes) == "la-stack-ralph-auth"
        assert jmespath.search('"db-certificates".secret.secretName', volumes) == CA_SECRET
        mount = next(m for m in pod["containers"][0]["volumeMounts"]
                     if m["name"] == "db-certificates")
        assert mount["mountPath"] == "/usr/local/share/ca-certificates/"
        assert "subPath" not in mount

    def test_should_keep_the_logging_config_mounted(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        assert jmespath.search("volumes[?name=='logging-config'].configMap.name",
                               pod) == ["la-stack-ralph-logging"]
        objects = render_chart(helm=helm, subcharts=["ralph"])
        assert find(objects, "ConfigMap", "la-stack-ralph-logging")

    def test_should_run_restricted(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        restricted(pod)


class TestRalphPreflight:
    """Ralph must verify Elasticsearch's certificate: the chart refuses values that would not."""

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"ralph": {"database": {"tls": {"certificatesSecret": "x"}}}},
             "ralph.database.tls"),
            ({"ralph": {"database": {"tls": {"enabled": False}}}}, "ralph.database.tls"),
        ],
        ids=["wrong-ca", "tls-off"],
    )
    def test_should_fail_naming_the_key(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=values, validate=False)
        assert mentions_key(err.value.stderr, key)
