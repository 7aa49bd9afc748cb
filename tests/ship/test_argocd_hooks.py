"""How la-stack's Helm hooks map to Argo CD sync phases: what Argo CD would do with the
rendered chart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from lastack.chart.render import render_chart
from tests.helpers import dicts_in

PRE_SYNC = {"pre-install", "pre-upgrade"}
POST_SYNC = {"post-install", "post-upgrade"}


def hook_phases(obj: dict) -> set[str]:
    value = (obj["metadata"].get("annotations") or {}).get("helm.sh/hook", "")
    return {p.strip() for p in value.split(",") if p.strip()}


def hook_weight(obj: dict) -> int:
    return int((obj["metadata"].get("annotations") or {}).get("helm.sh/hook-weight", "0"))


def pod_specs(node: object) -> Iterator[dict]:
    """Every pod spec nested anywhere in an object (workloads and custom resources alike)."""
    return (d for d in dicts_in(node) if isinstance(d.get("containers"), list))


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
