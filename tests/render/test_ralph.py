"""Ralph from outside the cluster (the Ingress the Moodle sites of `lrs.sources` send to),
its disruption budget, its scaling (uvicorn workers, HPA), its write chunk, and what its
probes mean."""

from __future__ import annotations

import json
import re

import jmespath
import pytest
import yaml

from lastack.chart.render import HelmFailedError, find, render_chart
from lastack.paths import CHART_DIR, VALUES_DIR, shared_dir
from tests.helpers import mentions_key, requires_subcharts

INGRESS = ["templates/ralph/ingress.yaml"]
ENV_CM = ["templates/ralph/env-configmap.yaml"]
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
        assert profile["autoscaling"]["enabled"] is True
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


def ralph_env(objects: list[dict]) -> tuple[dict, dict[str, str]]:
    """Ralph's container and the environment its ConfigMaps give it."""
    container = jmespath.search("spec.template.spec.containers[0]",
                                find(objects, "Deployment", "la-stack-ralph")[0])
    env: dict[str, str] = {}
    for name in jmespath.search("envFrom[].configMapRef.name", container):
        env.update(find(objects, "ConfigMap", name)[0]["data"])
    return container, env


class TestRalphWorkers:
    """uvicorn takes its worker count from WEB_CONCURRENCY when its command line has no
    --workers; the ralph chart's command has none, so the env ConfigMap sets it."""

    def test_should_run_one_worker_per_pod_by_default(self, helm):
        cm = render_chart(helm=helm, show_only=ENV_CM, subcharts=())[0]
        assert jmespath.search("data.WEB_CONCURRENCY", cm) == "1"

    @requires_subcharts("ralph")
    def test_should_reach_uvicorn_from_values(self, helm):
        objects = render_chart(helm=helm, values={"lrs": {"workers": 3}},
                               subcharts=["ralph"])
        container, env = ralph_env(objects)
        assert env["WEB_CONCURRENCY"] == "3"
        command = container.get("command") or []
        assert command[:2] == ["uvicorn", "ralph.api:app"]
        assert not any(arg.startswith(("--workers", "-w")) for arg in command)

    def test_should_refuse_zero_workers_naming_the_key(self, helm):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values={"lrs": {"workers": 0}}, validate=False,
                         subcharts=())
        assert mentions_key(err.value.stderr, "lrs.workers")


class TestRalphWriteChunk:
    """One `_bulk` (so one wait for a refresh) per logstore_xapi batch, not two, and
    requests that wait side by side instead of one after another."""

    def test_should_write_a_whole_logstore_batch_in_one_bulk_request(self, helm):
        cm = render_chart(helm=helm, show_only=ENV_CM, subcharts=())[0]
        batch = DEFAULTS["logstoreXapi"]["delivery"]["maxBatchSize"]
        chunk = jmespath.search('data."RALPH_BACKENDS__LRS__ES__WRITE_CHUNK_SIZE"', cm)
        assert int(chunk) >= batch

    def test_should_take_the_chunk_from_values(self, helm):
        cm = render_chart(helm=helm, values={"lrs": {"backend": {"writeChunkSize": 250}}},
                          show_only=ENV_CM, subcharts=())[0]
        assert jmespath.search('data."RALPH_BACKENDS__LRS__ES__WRITE_CHUNK_SIZE"', cm) == "250"

    def test_should_use_the_asyncio_client(self, helm):
        """The blocking `es` client holds the event loop through each refresh wait."""
        cm = render_chart(helm=helm, show_only=ENV_CM, subcharts=())[0]
        assert jmespath.search("data.RALPH_RUNSERVER_BACKEND", cm) == "async_es"

    def test_should_keep_writes_conflict_safe(self, helm):
        cm = render_chart(helm=helm, show_only=ENV_CM, subcharts=())[0]
        assert jmespath.search('data."RALPH_BACKENDS__LRS__ES__REFRESH_AFTER_WRITE"',
                               cm) == "wait_for"


@requires_subcharts("ralph")
class TestRalphAutoscaling:
    """The ralph chart renders the HPA and, with it on, leaves `replicas` out of its
    Deployment, so the HPA and a `helm upgrade` never fight over the count."""

    def objects(self, helm, **kwargs) -> list[dict]:
        return render_chart(helm=helm, subcharts=["ralph"], **kwargs)

    def test_should_be_off_by_default_with_fixed_replicas(self, helm):
        objects = self.objects(helm)
        assert find(objects, "HorizontalPodAutoscaler") == []
        deployment = find(objects, "Deployment", "la-stack-ralph")[0]
        assert jmespath.search("spec.replicas", deployment) == DEFAULTS["ralph"]["replicaCount"]

    def test_should_scale_ralphs_deployment_on_cpu_only_in_production(self, helm):
        objects = self.objects(helm, values_files=[PRODUCTION])
        (hpa,) = find(objects, "HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert jmespath.search("spec.scaleTargetRef", hpa) == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": "la-stack-ralph"}
        hpa_values = DEFAULTS["ralph"]["autoscaling"]
        assert jmespath.search("[spec.minReplicas, spec.maxReplicas]", hpa) == [
            hpa_values["minReplicas"], hpa_values["maxReplicas"]]
        assert jmespath.search("spec.metrics[*].[type, resource.name]", hpa) == [
            ["Resource", "cpu"]]
        assert jmespath.search("spec.metrics[0].resource.target", hpa) == {
            "type": "Utilization",
            "averageUtilization": hpa_values["targetCPUUtilizationPercentage"]}

    def test_should_leave_the_replica_count_to_the_hpa(self, helm):
        objects = self.objects(helm, values_files=[PRODUCTION])
        deployment = find(objects, "Deployment", "la-stack-ralph")[0]
        assert "replicas" not in deployment["spec"]

    def test_should_measure_cpu_against_a_request(self, helm):
        """Utilization is a share of the request: without one the HPA cannot act."""
        objects = self.objects(helm, values_files=[PRODUCTION])
        deployment = find(objects, "Deployment", "la-stack-ralph")[0]
        cpu = jmespath.search("spec.template.spec.containers[0].resources.requests.cpu",
                              deployment)
        assert cpu == yaml.safe_load(PRODUCTION.read_text())["ralph"]["resources"][
            "requests"]["cpu"]

    def test_should_take_min_max_and_target_from_values(self, helm):
        values = {"ralph": {"autoscaling": {"enabled": True, "minReplicas": 3,
                                            "maxReplicas": 9,
                                            "targetCPUUtilizationPercentage": 60}}}
        (hpa,) = find(self.objects(helm, values=values), "HorizontalPodAutoscaler")
        assert jmespath.search("[spec.minReplicas, spec.maxReplicas]", hpa) == [3, 9]
        assert jmespath.search("spec.metrics[0].resource.target.averageUtilization", hpa) == 60

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"minReplicas": 0}, "ralph.autoscaling.minReplicas"),
            ({"targetCPUUtilizationPercentage": 0},
             "ralph.autoscaling.targetCPUUtilizationPercentage"),
            ({"targetMemoryUtilizationPercentage": 80},
             "ralph.autoscaling.targetMemoryUtilizationPercentage"),
        ],
        ids=["min-zero", "target-zero", "memory-target"],
    )
    def test_should_fail_naming_the_key(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values={"ralph": {"autoscaling": values}},
                         validate=False, subcharts=())
        assert mentions_key(err.value.stderr, key)
