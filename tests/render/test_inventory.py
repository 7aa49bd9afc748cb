"""The exact set of objects (kind, name) each values profile installs, for the umbrella's
own templates and with the vendored subcharts: an object that appears or vanishes fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from lastack.chart.render import render_chart
from lastack.paths import CHART_DIR, VALUES_DIR
from tests.helpers import requires_subcharts

# What the umbrella's own templates render for a release named la-stack, by slice.
SECRETS = {("ServiceAccount", "la-stack-secrets-hook"), ("Role", "la-stack-secrets-hook"),
           ("RoleBinding", "la-stack-secrets-hook"), ("ConfigMap", "la-stack-secrets-hook"),
           ("Job", "la-stack-secrets")}
HOOKS = {("ConfigMap", "la-stack-hook-programs")}
ELASTICSEARCH = {("Secret", "la-stack-es-roles"), ("Job", "la-stack-es-bootstrap")}
RALPH = {("ConfigMap", "la-stack-ralph-env")}
MOODLE = {("ConfigMap", "la-stack-moodle-xapi")}
SUPERSET = {("Superset", "la-stack-dashboards"), ("Cluster", "la-stack-superset-db"),
            ("ConfigMap", "la-stack-superset-wiring"), ("Job", "la-stack-superset-wiring")}
HELM_TEST = {("Pod", "la-stack-test-data-path")}
OWN = SECRETS | HOOKS | ELASTICSEARCH | RALPH | MOODLE | SUPERSET | HELM_TEST

# What each vendored subchart renders from la-stack's default values.
ECK_ELASTICSEARCH_CHART = {("Elasticsearch", "la-stack")}
RALPH_CHART = {("Deployment", "la-stack-ralph"), ("Service", "la-stack-ralph"),
               ("ConfigMap", "la-stack-ralph-logging"), ("ConfigMap", "la-stack-ralph-lrs"),
               ("Pod", "la-stack-ralph-test-connection")}
MOODLE_CHART = {("Deployment", "la-stack-moodle"), ("Service", "la-stack-moodle"),
                ("ServiceAccount", "la-stack-moodle"), ("NetworkPolicy", "la-stack-moodle"),
                ("PersistentVolumeClaim", "la-stack-moodle-moodle"),
                ("PodDisruptionBudget", "la-stack-moodle"),
                ("StatefulSet", "la-stack-mariadb"), ("Service", "la-stack-mariadb"),
                ("Service", "la-stack-mariadb-headless"), ("ConfigMap", "la-stack-mariadb"),
                ("ServiceAccount", "la-stack-mariadb"), ("NetworkPolicy", "la-stack-mariadb"),
                ("PodDisruptionBudget", "la-stack-mariadb")}
SUPERSET_OPERATOR_CHART = {
    ("Deployment", "la-stack-superset-operator"), ("ServiceAccount", "la-stack-superset-operator"),
    ("Role", "la-stack-superset-operator-manager"),
    ("RoleBinding", "la-stack-superset-operator-manager"),
    ("Role", "la-stack-superset-operator-leader-election"),
    ("RoleBinding", "la-stack-superset-operator-leader-election")}
VALKEY_CHART = {("Deployment", "la-stack-valkey"), ("Service", "la-stack-valkey"),
                ("ServiceAccount", "la-stack-valkey"),
                ("ConfigMap", "la-stack-valkey-init-scripts"),
                ("Pod", "la-stack-valkey-test-auth-existing")}
SUBCHARTS = (ECK_ELASTICSEARCH_CHART | RALPH_CHART | MOODLE_CHART | SUPERSET_OPERATOR_CHART
             | VALKEY_CHART)

# production.yaml: an existing Moodle (its setup script instead of the sidecar's settings),
# Ralph behind an Ingress with a budget and, from the ralph chart, an autoscaler.
PRODUCTION_OWN = (OWN - MOODLE) | {("ConfigMap", "la-stack-moodle-setup"),
                                   ("Ingress", "la-stack-lrs"),
                                   ("PodDisruptionBudget", "la-stack-ralph")}
PRODUCTION_SUBCHARTS = (SUBCHARTS - MOODLE_CHART) | {("HorizontalPodAutoscaler", "la-stack-ralph")}
# ci/data-path-values.yaml: only the data path, Elasticsearch and Ralph.
DATA_PATH_OWN = OWN - MOODLE - SUPERSET
DATA_PATH_SUBCHARTS = ECK_ELASTICSEARCH_CHART | RALPH_CHART

CI = CHART_DIR / "ci"
# (values file or None for the defaults, own objects, objects of the subcharts)
PROFILES = {
    "defaults": (None, OWN, SUBCHARTS),
    "demo": (VALUES_DIR / "demo.yaml", OWN, SUBCHARTS),
    "production": (VALUES_DIR / "production.yaml", PRODUCTION_OWN, PRODUCTION_SUBCHARTS),
    "ci-default": (CI / "default-values.yaml", OWN, SUBCHARTS),
    "ci-data-path": (CI / "data-path-values.yaml", DATA_PATH_OWN, DATA_PATH_SUBCHARTS),
}


def inventory(helm: str, values_file: Path | None, **kwargs: object) -> set[tuple[str, str]]:
    objects = render_chart(helm=helm, values_files=[values_file] if values_file else [],
                           validate=False, **kwargs)
    return {(o["kind"], o["metadata"]["name"]) for o in objects}


def test_should_cover_every_ci_values_file():
    assert {p for p, _, _ in PROFILES.values() if p and p.parent == CI} == set(
        CI.glob("*-values.yaml"))


class TestInventory:
    """Per values profile, exactly these objects: none more, none missing."""

    @pytest.mark.parametrize("profile", PROFILES)
    def test_should_render_exactly_the_umbrellas_own_objects(self, helm, profile):
        values_file, own, _ = PROFILES[profile]
        assert inventory(helm, values_file, subcharts=()) == own

    @requires_subcharts()
    @pytest.mark.parametrize("profile", PROFILES)
    def test_should_render_exactly_these_objects_with_every_subchart(self, helm, profile):
        values_file, own, subcharts = PROFILES[profile]
        assert inventory(helm, values_file) == own | subcharts
