"""The Argo CD app-of-apps parent (argocd/la-stack-apps), its bootstrap and health check,
and how la-stack's Helm hooks map to Argo CD sync phases."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator

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
HEALTH_PATCH = ARGOCD_DIR / "argocd-cm-health.yaml"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
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


def lua_literal(value: object) -> str:
    """A Python value as a Lua table constructor (strings via JSON quoting, which Lua reads
    the same for the plain text used here)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{json.dumps(k)}] = {lua_literal(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(type(value))


def application(health: str | None, sync: str | None = "Synced",
                operation: str | None = None) -> dict:
    status: dict = {}
    if health:
        status["health"] = {"status": health}
    if sync:
        status["sync"] = {"status": sync}
    if operation:
        status["operationState"] = {"phase": operation, "message": "sync failed"}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "status": status}


class TestHealthCheck:
    """The argocd-cm health check that makes waves wait for child Applications."""

    def script(self) -> str:
        return yaml.safe_load(HEALTH_PATCH.read_text())["data"][HEALTH_KEY]

    def test_should_be_documented_as_shipped(self):
        readme = (ARGOCD_DIR / "README.md").read_text()
        indented = "".join(f"    {line}" if line.strip() else line
                           for line in self.script().splitlines(keepends=True))
        assert f"  {HEALTH_KEY}: |\n{indented}" in readme

    @pytest.mark.parametrize(("obj", "expected"), [
        (application(None, None), "Progressing"),
        (application("Healthy"), "Healthy"),
        (application("Healthy", "OutOfSync"), "Progressing"),
        (application("Progressing"), "Progressing"),
        (application("Degraded"), "Degraded"),
        (application("Healthy", "Synced", operation="Failed"), "Degraded"),
        (application("Missing", "OutOfSync"), "Missing"),
    ], ids=["no-status", "healthy-synced", "healthy-outofsync", "progressing", "degraded",
            "sync-failed", "missing"])
    def test_should_gate_on_health_and_sync(self, obj, expected):
        lua = shutil.which("lua5.1") or shutil.which("lua")
        if lua is None:
            pytest.skip("no Lua interpreter: install the Debian package `lua5.1` "
                        "(Argo CD runs health checks with Lua 5.1 semantics)")
        program = (f"local obj = {lua_literal(obj)}\n"
                   f"local function check()\n{self.script()}\nend\n"
                   "local hs = check()\nio.write(hs.status)\n")
        run = subprocess.run([lua, "-"], input=program, capture_output=True, text=True,
                             timeout=30, check=False)
        assert run.returncode == 0, run.stderr
        assert run.stdout == expected


# --- la-stack's Helm hooks under Argo CD ------------------------------------------------

PRE_SYNC = {"pre-install", "pre-upgrade"}
POST_SYNC = {"post-install", "post-upgrade"}


def hook_phases(obj: dict) -> set[str]:
    value = (obj["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    return {p.strip() for p in value.split(",") if p.strip()}


def hook_weight(obj: dict) -> int:
    return int((obj["metadata"].get("annotations") or {}).get("helm.sh/hook-weight", "0"))


def pod_specs(node: object) -> Iterator[dict]:
    """Every pod spec nested anywhere in an object (workloads and custom resources alike)."""
    if isinstance(node, dict):
        if isinstance(node.get("containers"), list):
            yield node
        for child in node.values():
            yield from pod_specs(child)
    elif isinstance(node, list):
        for child in node:
            yield from pod_specs(child)


def references(spec: dict) -> set[tuple[str, str]]:
    """(kind, name) of the ServiceAccount, ConfigMaps, Secrets and claims a pod spec needs;
    optional references are left out, a Pod starts without them."""
    refs: set[tuple[str, str]] = set()
    if spec.get("serviceAccountName"):
        refs.add(("ServiceAccount", spec["serviceAccountName"]))
    for volume in spec.get("volumes") or []:
        if "configMap" in volume and not volume["configMap"].get("optional"):
            refs.add(("ConfigMap", volume["configMap"]["name"]))
        if "secret" in volume and not volume["secret"].get("optional"):
            refs.add(("Secret", volume["secret"]["secretName"]))
        if "persistentVolumeClaim" in volume:
            refs.add(("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                if key in source and not source[key].get("optional"):
                    refs.add((kind, source[key]["name"]))
    for container in (spec.get("initContainers") or []) + spec["containers"]:
        for env in container.get("env") or []:
            value_from = env.get("valueFrom") or {}
            for key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if key in value_from and not value_from[key].get("optional"):
                    refs.add((kind, value_from[key]["name"]))
        for env_from in container.get("envFrom") or []:
            for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                if key in env_from and not env_from[key].get("optional"):
                    refs.add((kind, env_from[key]["name"]))
    return refs


def readiness_text(spec: dict) -> str:
    """What decides whether a Pod starts and becomes Ready: init containers and probes."""
    parts: list[object] = list(spec.get("initContainers") or [])
    for container in spec["containers"]:
        parts += [container.get(p) for p in ("startupProbe", "readinessProbe", "livenessProbe")]
    return json.dumps(parts)


def mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w.-]){re.escape(name)}(?![\w.-])", text) is not None


class TestHooksUnderArgoCD:
    """Argo CD maps pre-* hooks to PreSync and post-* hooks to PostSync, on every sync,
    and starts PostSync only once everything else is Healthy."""

    @pytest.fixture
    def objects(self, helm) -> list[dict]:
        return render_chart(helm=helm)

    def test_should_run_install_hooks_on_upgrade_too(self, objects):
        hooks = [o for o in objects if hook_phases(o)]
        assert hooks, "the chart renders no hooks: this check would prove nothing"
        for obj in hooks:
            phases = hook_phases(obj)
            name = f"{obj['kind']}/{obj['metadata']['name']}"
            if "pre-install" in phases:
                assert "pre-upgrade" in phases, name
            if "post-install" in phases:
                assert "post-upgrade" in phases, name

    def test_should_keep_post_sync_hooks_to_jobs(self, objects):
        for obj in objects:
            if hook_phases(obj) & POST_SYNC:
                assert obj["kind"] == "Job", f"{obj['kind']}/{obj['metadata']['name']}"

    def test_should_not_make_any_workload_wait_on_a_post_sync_hook(self, objects):
        post = [o for o in objects if hook_phases(o) & POST_SYNC]
        post_only = {(o["kind"], o["metadata"]["name"]) for o in post}
        for obj in objects:
            if hook_phases(obj):
                continue  # hooks are not workloads Argo CD waits on for health
            for spec in pod_specs(obj):
                where = f"{obj['kind']}/{obj['metadata']['name']}"
                text = readiness_text(spec)
                for name in (hook["metadata"]["name"] for hook in post):
                    assert not mentions(text, name), (where, name)
                assert not references(spec) & post_only, where

    def test_should_give_pre_sync_jobs_only_pre_sync_objects(self, objects):
        rendered = {(o["kind"], o["metadata"]["name"]): o for o in objects}
        jobs = [o for o in objects if o["kind"] == "Job" and hook_phases(o) & PRE_SYNC]
        for job in jobs:
            spec = job["spec"]["template"]["spec"]
            needed = {ref for ref in references(spec) if ref in rendered}
            account = spec.get("serviceAccountName")
            for binding in (o for o in objects if o["kind"] in {"RoleBinding",
                                                                 "ClusterRoleBinding"}):
                subjects = binding.get("subjects") or []
                if any(s.get("kind") == "ServiceAccount" and s.get("name") == account
                       for s in subjects):
                    needed.add((binding["kind"], binding["metadata"]["name"]))
                    needed.add((binding["roleRef"]["kind"], binding["roleRef"]["name"]))
            for ref in needed & rendered.keys():
                dependency = rendered[ref]
                # In PreSync the chart's normal objects do not exist yet.
                assert hook_phases(dependency) & PRE_SYNC, (job["metadata"]["name"], ref)
                assert hook_weight(dependency) <= hook_weight(job), (job["metadata"]["name"], ref)

