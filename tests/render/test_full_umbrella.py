"""The full umbrella with the real upstream subcharts: every object validates."""

from __future__ import annotations

import pytest

from lastack.paths import CHART_DIR, VALUES_DIR
from lastack.render import (
    missing_subcharts_reason,
    present_subcharts,
    render_chart,
    render_manifest,
)
from tests.conftest import SUBCHARTS, requires_subcharts

PROFILES = sorted(VALUES_DIR.glob("*.yaml")) + sorted((CHART_DIR / "ci").glob("*-values.yaml"))


ANY_SUBCHART = pytest.mark.skipif(
    not present_subcharts(), reason=missing_subcharts_reason(SUBCHARTS) or "")


@ANY_SUBCHART
class TestUmbrellaWithVendoredSubcharts:
    """Every values profile renders with the vendored subcharts; every object validates."""

    @pytest.mark.parametrize("profile", PROFILES, ids=[p.name for p in PROFILES])
    def test_should_render_and_validate_every_object(self, helm, profile):
        objects = render_chart(helm=helm, values_files=[profile])
        assert objects

    def test_should_render_the_same_objects_with_helm3_and_helm4(self):
        assert render_chart(helm="helm3") == render_chart(helm="helm4")

    def test_should_render_identically_twice(self, helm):
        """No subchart draws random values at render time (Argo CD re-renders on every sync)."""
        first = render_manifest(helm=helm, use_cache=False)
        assert first == render_manifest(helm=helm, use_cache=False)


@requires_subcharts()
class TestFullUmbrella:
    """All four subcharts vendored: the whole stack renders and validates."""

    def test_should_render_every_component(self, helm):
        names = " ".join(o["metadata"]["name"] for o in render_chart(helm=helm))
        for component in ("ralph", "superset", "valkey", "moodle", "mariadb"):
            assert component in names


@requires_subcharts("eck-elasticsearch")
class TestEckElasticsearchSubchart:
    """The upstream eck-elasticsearch chart renders an Elasticsearch resource."""

    def test_should_render_an_elasticsearch_resource(self, helm):
        kinds = {o["kind"] for o in render_chart(helm=helm)}
        assert "Elasticsearch" in kinds

    def test_should_render_nothing_of_it_when_disabled(self, helm):
        objects = render_chart(helm=helm, values={"eck-elasticsearch": {"enabled": False}})
        assert "Elasticsearch" not in {o["kind"] for o in objects}


@requires_subcharts("ralph")
class TestRalphSubchart:
    """The upstream ralph chart renders its Deployment."""

    def test_should_render_the_ralph_deployment(self, helm):
        objects = render_chart(helm=helm)
        names = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
        assert any("ralph" in n for n in names)


@requires_subcharts("moodle")
class TestMoodleSubchart:
    """The Bitnami moodle chart renders Moodle and its MariaDB."""

    def test_should_render_moodle_and_mariadb(self, helm):
        objects = render_chart(helm=helm)
        workloads = {o["metadata"]["name"] for o in objects
                     if o["kind"] in {"Deployment", "StatefulSet"}}
        assert any("moodle" in n for n in workloads)
        assert any("mariadb" in n for n in workloads)


@requires_subcharts("superset-operator", "valkey")
class TestSupersetSubcharts:
    """The Superset operator and Valkey run beside the Superset resource la-stack renders."""

    def test_should_render_the_operator_and_valkey(self, helm):
        objects = render_chart(helm=helm)
        names = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
        assert {"la-stack-superset-operator", "la-stack-valkey"} <= names
        assert {"Superset", "Cluster"} <= {o["kind"] for o in objects}
