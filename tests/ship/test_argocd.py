"""The Argo CD app-of-apps parent (argocd/la-stack-apps) and its bootstrap Applications.
The health check is tested in test_argocd_health.py, hooks under Argo CD in
test_argocd_hooks.py."""

from __future__ import annotations

import subprocess

import jmespath
import pytest
import yaml

from lastack.chart.render import HelmFailedError, render_chart, render_manifest
from lastack.chart.validation import validate_object
from lastack.paths import CHART_DIR, REPO_ROOT, VALUES_DIR
from lastack.tools.controlplane_build import CNPG_VERSION, ECK_VERSION
from lastack.tools.toolchain import HELMS

ARGOCD_DIR = REPO_ROOT / "argocd"
APPS_CHART = ARGOCD_DIR / "la-stack-apps"
ENVIRONMENTS = sorted(p.stem.removeprefix("values-") for p in APPS_CHART.glob("values-*.yaml"))
BOOTSTRAPS = sorted((ARGOCD_DIR / "bootstrap").glob("*.yaml"))
CHART_VERSION = str(yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["version"])
FINALIZER = "resources-finalizer.argocd.argoproj.io"


def render_apps(helm: str, environment: str | None, values: dict | None = None,
                use_cache: bool = True) -> str:
    files = [APPS_CHART / f"values-{environment}.yaml"] if environment else []
    return render_manifest(values, helm=helm, chart_dir=APPS_CHART, values_files=files,
                           name="la-stack-apps", namespace="argocd", api_versions=(),
                           use_cache=use_cache)


def apps(helm: str, environment: str) -> dict[str, dict]:
    objects = render_chart(helm=helm, chart_dir=APPS_CHART, name="la-stack-apps",
                           namespace="argocd", api_versions=(),
                           values_files=[APPS_CHART / f"values-{environment}.yaml"])
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


def wave(obj: dict) -> int:
    return int(obj["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))


@pytest.fixture(params=ENVIRONMENTS)
def environment(request: pytest.FixtureRequest) -> str:
    return request.param


class TestParentChart:
    """One Application per component, per environment, valid against Argo CD's CRDs."""

    def test_should_have_environments_backed_by_values_profiles(self):
        assert {"demo", "production"} <= set(ENVIRONMENTS)
        for env in ENVIRONMENTS:
            assert (VALUES_DIR / f"{env}.yaml").is_file(), env

    def test_should_render_one_valid_application_per_component(self, helm, environment):
        rendered = apps(helm, environment)
        applications = {k for k, o in rendered.items() if o["kind"] == "Application"}
        assert applications == {"Application/eck-operator", "Application/cnpg-operator",
                                "Application/la-stack"}
        for obj in rendered.values():
            validate_object(obj)
            assert obj["metadata"]["namespace"] == "argocd"

    def test_should_sync_the_operator_before_the_stack(self, helm, environment):
        rendered = apps(helm, environment)
        stack = rendered["Application/la-stack"]
        assert wave(rendered["Application/eck-operator"]) < wave(stack)
        assert wave(rendered["Application/cnpg-operator"]) < wave(stack)
        assert wave(rendered["Secret/la-stack-oci-repository"]) < wave(stack)

    def test_should_install_the_pinned_eck_operator(self, helm, environment):
        operator = apps(helm, environment)["Application/eck-operator"]
        source = operator["spec"]["source"]
        assert (source["repoURL"], source["chart"], source["targetRevision"]) == (
            "https://helm.elastic.co", "eck-operator", ECK_VERSION)
        options = operator["spec"]["syncPolicy"]["syncOptions"]
        assert {"ServerSideApply=true", "CreateNamespace=true"} <= set(options)
        assert FINALIZER in operator["metadata"]["finalizers"]
        (ignored,) = [d for d in operator["spec"]["ignoreDifferences"]
                      if d["kind"] == "ValidatingWebhookConfiguration"]
        assert ignored["group"] == "admissionregistration.k8s.io"
        paths = ignored.get("jqPathExpressions", []) + ignored.get("jsonPointers", [])
        assert any("caBundle" in p and "webhooks" in p for p in paths)

    def test_should_install_the_pinned_cnpg_operator(self, helm, environment):
        operator = apps(helm, environment)["Application/cnpg-operator"]
        source = operator["spec"]["source"]
        assert (source["repoURL"], source["targetRevision"], source["path"]) == (
            "https://github.com/cloudnative-pg/cloudnative-pg.git", f"v{CNPG_VERSION}", "releases")
        assert source["directory"]["include"] == f"cnpg-{CNPG_VERSION}.yaml"
        assert "ServerSideApply=true" in operator["spec"]["syncPolicy"]["syncOptions"]
        kinds = {d["kind"] for d in operator["spec"]["ignoreDifferences"]}
        assert kinds == {"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}

    @pytest.mark.parametrize(("path", "expected"), [
        ("podSecurityContext.runAsNonRoot", True),
        ("podSecurityContext.seccompProfile.type", "RuntimeDefault"),
        ("securityContext.runAsNonRoot", True),
        ("securityContext.allowPrivilegeEscalation", False),
        ("securityContext.capabilities.drop", ["ALL"]),
        ("securityContext.seccompProfile.type", "RuntimeDefault"),
    ])
    def test_should_run_the_operator_under_pod_security_restricted(
            self, helm, environment, path, expected):
        """eck-operator puts `podSecurityContext` on its Pod and `securityContext` on its
        manager container; its defaults lack the seccompProfile `restricted` requires."""
        operator = apps(helm, environment)["Application/eck-operator"]
        assert jmespath.search(f"spec.source.helm.valuesObject.{path}", operator) == expected

    def test_should_pull_la_stack_from_oci_at_the_chart_version(self, helm, environment):
        rendered = apps(helm, environment)
        stack = rendered["Application/la-stack"]
        chart_source, values_source = stack["spec"]["sources"]
        assert chart_source["chart"] == "la-stack"
        assert chart_source["targetRevision"] == CHART_VERSION
        # Argo CD's Helm-on-OCI convention: host/path, no scheme.
        assert "://" not in chart_source["repoURL"]
        repository = rendered["Secret/la-stack-oci-repository"]
        assert repository["metadata"]["labels"]["argocd.argoproj.io/secret-type"] == "repository"
        assert repository["stringData"] == {"name": "la-stack", "type": "helm",
                                            "url": chart_source["repoURL"], "enableOCI": "true"}
        assert chart_source["helm"]["valueFiles"] == [f"$values/values/{environment}.yaml"]
        assert values_source["ref"] == "values"
        assert values_source["targetRevision"] == f"v{CHART_VERSION}"
        assert "SkipDryRunOnMissingResource=true" in stack["spec"]["syncPolicy"]["syncOptions"]
        assert FINALIZER in stack["metadata"]["finalizers"]

    def test_should_render_identically_twice(self, helm, environment):
        first = render_apps(helm, environment, use_cache=False)
        assert render_apps(helm, environment, use_cache=False) == first

    def test_should_refuse_to_render_without_an_environment(self, helm):
        with pytest.raises(HelmFailedError):
            render_apps(helm, None)

    def test_should_refuse_an_oci_scheme_in_the_registry(self, helm):
        with pytest.raises(HelmFailedError):
            render_apps(helm, "demo", values={"laStack": {"registry": "oci://ghcr.io/x/charts"}})

    def test_should_pass_helm_lint_strict(self, helm, environment):
        lint = subprocess.run(
            [str(HELMS[helm].binary), "lint", "--strict", str(APPS_CHART),
             "--values", str(APPS_CHART / f"values-{environment}.yaml")],
            capture_output=True, text=True, check=False)
        assert lint.returncode == 0, lint.stdout + lint.stderr


class TestBootstrap:
    """The root Applications that point Argo CD at the parent chart."""

    def test_should_have_a_root_application_per_environment(self):
        assert sorted(p.stem for p in BOOTSTRAPS) == ENVIRONMENTS

    @pytest.mark.parametrize("path", BOOTSTRAPS, ids=[p.name for p in BOOTSTRAPS])
    def test_should_be_a_valid_application_of_the_parent_chart(self, path):
        root = yaml.safe_load(path.read_text())
        validate_object(root)
        source = root["spec"]["source"]
        assert (REPO_ROOT / source["path"]).resolve() == APPS_CHART
        assert source["helm"]["valueFiles"] == [f"values-{path.stem}.yaml"]
        assert FINALIZER in root["metadata"]["finalizers"]

    def test_should_pin_production_to_the_release_tag(self):
        root = yaml.safe_load((ARGOCD_DIR / "bootstrap" / "production.yaml").read_text())
        assert jmespath.search("spec.source.targetRevision", root) == f"v{CHART_VERSION}"
