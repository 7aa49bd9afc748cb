"""Ralph's throughput: uvicorn workers, its Elasticsearch write chunk, its autoscaling."""

from __future__ import annotations

import jmespath
import pytest
import yaml

from lastack.chart.render import HelmFailedError, find, render_chart
from lastack.paths import CHART_DIR, VALUES_DIR
from tests.helpers import mentions_key, requires_subcharts

ENV_CM = ["templates/ralph/env-configmap.yaml"]
PRODUCTION = VALUES_DIR / "production.yaml"
DEFAULTS = yaml.safe_load((CHART_DIR / "values.yaml").read_text())


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
