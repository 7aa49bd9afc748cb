"""The render harness itself: validation catches bad objects, Helm errors surface."""

from __future__ import annotations

import pytest

from lastack.chart import render
from lastack.chart.render import HelmFailedError, render_chart
from lastack.chart.validation import ObjectInvalidError, SchemaMissingError, validate_object

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "x"},
    "spec": {
        "selector": {"matchLabels": {"app": "x"}},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "x", "image": "busybox:1.37"}]},
        },
    },
}

ELASTICSEARCH = {
    "apiVersion": "elasticsearch.k8s.elastic.co/v1",
    "kind": "Elasticsearch",
    "metadata": {"name": "es"},
    "spec": {"version": "8.19.7", "nodeSets": [{"name": "default", "count": 1}]},
}


def with_change(obj: dict, path: list, value: object) -> dict:
    """A deep copy of `obj` with the field at `path` set to `value`."""
    import copy

    out = copy.deepcopy(obj)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


class TestBuiltinValidation:
    """Built-in kinds are checked against the pinned Kubernetes schemas."""

    def test_should_accept_a_valid_deployment(self):
        validate_object(DEPLOYMENT)

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (["spec", "replicas"], "three"),
            (["spec", "template", "spec", "containers", 0, "imagePullPolicy"], 7),
            (["spec", "template", "spec", "containers", 0, "imagePulPolicy"], "Always"),
            (["spec", "template", "spec", "containers", 0, "ports"], [{"containerPort": "http"}]),
        ],
        ids=["wrong-type", "wrong-type-nested", "unknown-field", "port-not-integer"],
    )
    def test_should_reject_an_invalid_deployment(self, path, value):
        with pytest.raises(ObjectInvalidError, match="Deployment/x"):
            validate_object(with_change(DEPLOYMENT, path, value))

    def test_should_reject_an_object_without_kind(self):
        with pytest.raises(ObjectInvalidError):
            validate_object({"apiVersion": "v1", "metadata": {"name": "x"}})


class TestCustomResourceValidation:
    """Custom resources are checked against their CRD's openAPIV3Schema."""

    def test_should_accept_a_valid_elasticsearch(self):
        validate_object(ELASTICSEARCH)

    @pytest.mark.parametrize(
        ("path", "value"),
        [
            (["spec", "nodeSets", 0, "count"], "one"),
            (["spec", "nodeSet"], []),
            (["spec", "version"], 8),
        ],
        ids=["wrong-type", "unknown-field", "version-not-string"],
    )
    def test_should_reject_an_invalid_elasticsearch(self, path, value):
        with pytest.raises(ObjectInvalidError, match="Elasticsearch/es"):
            validate_object(with_change(ELASTICSEARCH, path, value))

    def test_should_fail_when_no_schema_is_known(self):
        unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
        with pytest.raises(SchemaMissingError, match="Widget"):
            validate_object(unknown)

    def test_should_know_argo_cd_applications(self):
        app = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "a"},
            "spec": {"project": "default", "destination": {"namespace": "x"}},
        }
        validate_object(app)
        with pytest.raises(ObjectInvalidError):
            validate_object(with_change(app, ["spec", "project"], {"bad": True}))


class TestRenderChart:
    """render_chart runs helm template, raises with Helm's stderr, caches."""

    def test_should_raise_with_helms_stderr(self, helm):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, api_versions=())
        # The preflight message is ours, so matching it does not depend on Helm's wording.
        assert "ECK operator" in err.value.stderr

    def test_should_cache_identical_renders(self):
        render_chart(values={"moodle": {"enabled": True}})
        before = render._render_cached.cache_info()
        render_chart(values={"moodle": {"enabled": True}})
        after = render._render_cached.cache_info()
        assert after.hits == before.hits + 1
        assert after.misses == before.misses

    def test_should_return_copies(self):
        first = render_chart()
        first[0]["metadata"]["name"] = "changed"
        assert render_chart()[0]["metadata"]["name"] != "changed"

    def test_should_render_the_parent_alone_when_subcharts_are_absent(self):
        chart = render.effective_chart_dir()
        from lastack.chart import chartdeps

        listed = {d.name for d in chartdeps.dependencies(chart)}
        assert listed == render.present_subcharts()

    def test_should_hide_every_vendored_archive_when_asked(self, monkeypatch, helm):
        """The empty-chart-cache pass: whatever is vendored, the render is the umbrella's
        own, and the skip reason says why."""
        monkeypatch.setenv(render.WITHOUT_SUBCHARTS_ENV, "1")
        assert render.present_subcharts() == set()
        from lastack.chart import chartdeps

        (ralph,) = [d for d in chartdeps.dependencies() if d.name == "ralph"]
        reason = render.missing_subcharts_reason(["ralph"])
        assert reason and ralph.archive in reason and render.WITHOUT_SUBCHARTS_ENV in reason
        kinds = {o["kind"] for o in render_chart(helm=helm)}
        # Subcharts bring these kinds; the umbrella's own templates do not.
        assert not kinds & {"Deployment", "StatefulSet", "Elasticsearch"}, kinds
