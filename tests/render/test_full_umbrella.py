"""The full umbrella with the real upstream subcharts: every object validates."""

from __future__ import annotations

import pytest

from lastack.chart import chart_values
from lastack.chart.render import (
    missing_subcharts_reason,
    present_subcharts,
    render_chart,
    render_manifest,
)
from lastack.paths import CHART_DIR, VALUES_DIR
from tests.helpers import SUBCHARTS, requires_subcharts
from tests.rendered_images import walked_images

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


DIGEST = "sha256:" + "5e" * 32


def pulled(image: str) -> tuple[str, str | None]:
    """An image reference as the repository and the digest it is pulled by (if any)."""
    ref, _, digest = image.partition("@")
    head, _, last = ref.rpartition("/")
    repository = f"{head}/{last.split(':')[0]}" if head else last.split(":")[0]
    return repository, digest or None


def tag_of(images: set[str], repository: str) -> str:
    (image,) = [i for i in images if i.rsplit(":", 1)[0] == repository]
    return image.rsplit(":", 1)[1]


@requires_subcharts()
class TestEveryImageByDigest:
    """Every image the stack runs can be pinned by digest from the values: la-stack's own
    (`digest`), Bitnami's (`digest`), the rest by `repository:tag@digest` where a chart
    joins repository and tag itself. Only the Ralph chart's `helm test` Pod (`busybox`,
    written in its template) cannot."""

    def test_should_pull_each_image_by_the_digest_given(self, helm):
        default = walked_images(render_chart(helm=helm))
        overrides = {
            "hooks": {"image": {"digest": DIGEST}},
            "superset": {"image": {"digest": DIGEST}, "metastore": {
                "imageName": f"{chart_values.default('superset.metastore.imageName')}@{DIGEST}"}},
            "eck-elasticsearch": {"image": "docker.elastic.co/elasticsearch/elasticsearch:"
                                  f"{chart_values.default('eck-elasticsearch.version')}@{DIGEST}"},
            "ralph": {"image": {"tag": f"{tag_of(default, 'fundocker/ralph')}@{DIGEST}"}},
            "valkey": {"image": {"tag": f"{tag_of(default, 'docker.io/valkey/valkey')}@{DIGEST}"}},
            "superset-operator": {"image": {"tag": tag_of(
                default, "ghcr.io/apache/superset-kubernetes-operator") + f"@{DIGEST}"}},
            "moodle": {"image": {"digest": DIGEST}, "mariadb": {"image": {"digest": DIGEST}}},
        }
        pinned = walked_images(render_chart(helm=helm, values=overrides))
        # Pinned by digest, the tag no longer matters (Bitnami's charts then drop it).
        assert {pulled(i) for i in pinned} == {
            pulled(i) if i == "busybox" else (pulled(i)[0], DIGEST) for i in default}
