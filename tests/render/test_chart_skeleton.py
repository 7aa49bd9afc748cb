"""The umbrella chart's skeleton: metadata, Helm 3/4 parity, determinism, image digests."""

from __future__ import annotations

import re

import jmespath
import pytest
import yaml

from lastack.chart import chart_values, chartdeps
from lastack.chart.render import (
    parse_manifest,
    render_chart,
    render_manifest,
)
from lastack.paths import CHART_DIR
from tests.helpers import SUBCHARTS

EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
# A subchart whose values schema forbids an `enabled` key is switched from outside it.
CONDITIONS = {"superset-operator": "supersetOperator.enabled"}


def chart_yaml() -> dict:
    return yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())


class TestChartMetadata:
    """Chart.yaml and Chart.lock describe a v2 chart with pinned, gated subcharts."""

    def test_should_be_a_v2_application_chart_with_a_kube_version_floor(self):
        meta = chart_yaml()
        assert meta["apiVersion"] == "v2"
        assert meta["type"] == "application"
        assert meta["kubeVersion"].startswith(">=")

    def test_should_carry_artifact_hub_annotations(self):
        annotations = chart_yaml()["annotations"]
        assert annotations["artifacthub.io/license"] == "Apache-2.0"
        changes = yaml.safe_load(annotations["artifacthub.io/changes"])
        assert all({"kind", "description"} <= set(c) for c in changes)
        links = yaml.safe_load(annotations["artifacthub.io/links"])
        assert all({"name", "url"} <= set(link) for link in links)

    @pytest.mark.parametrize("name", SUBCHARTS)
    def test_should_pin_each_subchart_behind_its_enabled_condition(self, name):
        dep = next(d for d in chart_yaml()["dependencies"] if d["name"] == name)
        assert EXACT_VERSION.match(str(dep["version"])), "versions are pinned, never ranges"
        assert dep["condition"] == CONDITIONS.get(name, f"{name}.enabled")

    def test_should_have_a_lock_that_helm_accepts(self):
        lock = yaml.safe_load((CHART_DIR / "Chart.lock").read_text())
        assert lock["digest"] == chartdeps.lock_digest(CHART_DIR)
        locked = {(d["name"], d["version"]) for d in lock["dependencies"]}
        assert locked == {(d.name, d.version) for d in chartdeps.dependencies(CHART_DIR)}


class TestRenderParity:
    """The umbrella's own templates: same objects under Helm 3 and 4, deterministic."""

    def test_should_render_the_same_objects_with_helm3_and_helm4(self):
        assert render_chart(helm="helm3", subcharts=()) == render_chart(helm="helm4", subcharts=())

    def test_should_render_objects(self, helm):
        assert render_chart(helm=helm, subcharts=()), "the defaults render at least one object"

    def test_should_render_identically_twice(self, helm):
        first = render_manifest(helm=helm, use_cache=False, subcharts=())
        second = render_manifest(helm=helm, use_cache=False, subcharts=())
        assert first == second
        assert parse_manifest(first)

    def test_should_label_every_own_object(self, helm):
        for obj in render_chart(helm=helm, subcharts=()):
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/part-of"] == "la-stack"
            assert labels["app.kubernetes.io/instance"] == "la-stack"
            assert labels["app.kubernetes.io/managed-by"] == "Helm"


DIGEST = "sha256:" + "ab12" * 16
SUPERSET_CR = ["templates/superset/superset.yaml"]


class TestImageDigests:
    """la-stack's own images can be pulled by digest, so a moved tag cannot change them."""

    def test_should_pull_every_hook_and_test_pod_by_digest(self, helm):
        objects = render_chart(helm=helm, subcharts=(), values={
            "hooks": {"image": {"digest": DIGEST}}, "moodle": {"enabled": False}})
        images = jmespath.search(
            "[?kind=='Job' || kind=='Pod'].spec.[template.spec.containers, containers][][][].image",
            objects)
        assert images, "hook Jobs and test Pods render"
        tag = chart_values.default("hooks.image.tag")
        assert all(image.endswith(f":{tag}@{DIGEST}") for image in images), images

    def test_should_put_supersets_digest_on_the_tag_the_operator_joins(self, helm):
        (cr,) = render_chart(helm=helm, subcharts=(), show_only=SUPERSET_CR,
                             values={"superset": {"image": {"digest": DIGEST}},
                                     "moodle": {"enabled": False}})
        tag = chart_values.default("superset.image.tag")
        assert jmespath.search("spec.image.tag", cr) == f"{tag}@{DIGEST}"

    def test_should_pull_by_tag_without_a_digest(self, helm):
        (cr,) = render_chart(helm=helm, subcharts=(), show_only=SUPERSET_CR,
                             values={"moodle": {"enabled": False}})
        assert "@" not in jmespath.search("spec.image.tag", cr)
