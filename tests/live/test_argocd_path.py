"""The Argo CD path: `helm template`, then server-side apply, as Argo CD syncs, twice.

Argo CD never runs `helm install`: it renders with `helm template` (on every refresh) and
applies the result, running Helm hooks as PreSync/PostSync in weight (sync-wave) order.
What this shows on a real API server: two renders are identical (no random value that
would rotate or keep the app OutOfSync), the manifests are accepted by server-side apply
with Argo's field manager, and a second sync changes nothing (`kubectl diff --server-side`
is empty and no object's generation/resourceVersion moves), the NetworkPolicies are
admitted, and a prune as Argo CD's label tracking decides it deletes no generated Secret, so
the next PreSync changes no credential. Argo CD itself is stood in for: its health checks,
its own prune decision and `SkipDryRunOnMissingResource` are shown only by a real Argo CD.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from itertools import groupby
from typing import Any

import pytest
import yaml
from kubernetes import client

from lastack import polling
from lastack.chart.chart_values import deep_merge
from lastack.cluster import kwait
from lastack.testing.helm_release import (
    API_VERSION_ARGS,
    HOOK,
    HOOK_WEIGHT,
    RELEASE,
    Helm,
    base_values,
    hook_objects,
    kubectl,
)
from lastack.testing.hookrunner import HookRunner
from tests.helpers import HELM_VERSIONS
from tests.live.cluster import LiveCluster, create_namespace, delete_namespace

FIELD_MANAGER = "argocd-controller"
# Argo CD's server-side apply always forces conflicts (gitops-engine sets ForceConflicts with
# ServerSideApply). It matters here: the ECK operator's writes of the Elasticsearch claim
# `.spec.nodeSets` (elastic/cloud-on-k8s#8975), and an unforced apply is refused.
SSA = ("--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}")


# Argo CD's label tracking (the default before 3.0) claims what carries this label = the app.
TRACKING_LABEL = "app.kubernetes.io/instance"
GENERATED = "app.kubernetes.io/managed-by=la-stack-secrets-hook"
NETWORK_POLICIES = {"networkPolicy": {"enabled": True}, "moodle": {
    "networkPolicy": {"enabled": False}, "mariadb": {"networkPolicy": {"enabled": False}}}}


def prune_as_argo_cd(core: client.CoreV1Api, namespace: str,
                     rendered: list[dict[str, Any]]) -> list[str]:
    """Delete what an app named after the release, with prune on, deletes: the Secrets and
    ConfigMaps its label tracking claims that the manifest does not hold, unless they opt
    out with `argocd.argoproj.io/sync-options: Prune=false`. Returns their names."""
    kept = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    selector = f"{TRACKING_LABEL}={RELEASE}"
    claimed = [("Secret", s) for s in core.list_namespaced_secret(
        namespace, label_selector=selector).items]
    claimed += [("ConfigMap", c) for c in core.list_namespaced_config_map(
        namespace, label_selector=selector).items]
    pruned = []
    for kind, obj in claimed:
        options = (obj.metadata.annotations or {}).get("argocd.argoproj.io/sync-options", "")
        if (kind, obj.metadata.name) in kept or "Prune=false" in options:
            continue
        delete = (core.delete_namespaced_secret if kind == "Secret"
                  else core.delete_namespaced_config_map)
        delete(obj.metadata.name, namespace)
        pruned.append(obj.metadata.name)
    return pruned


def delete_hook_jobs(batch: client.BatchV1Api, namespace: str,
                     hooks: list[dict[str, Any]]) -> None:
    """What `before-hook-creation` makes Argo CD do before a hook runs again."""
    for name in (o["metadata"]["name"] for o in hooks if o["kind"] == "Job"):
        batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
        polling.poll(f"Job {name} deleted", lambda name=name: polling.Probe(
            done=not batch.list_namespaced_job(
                namespace, field_selector=f"metadata.name={name}").items), 60)


def generated_secrets(core: client.CoreV1Api, namespace: str) -> dict[str, dict[str, str]]:
    return {s.metadata.name: s.data for s in core.list_namespaced_secret(
        namespace, label_selector=GENERATED).items}


def apply(env: dict[str, str], namespace: str, objects: list[dict[str, Any]]) -> None:
    kubectl(env, "apply", *SSA, "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(objects))


def run_hooks(env: dict[str, str], namespace: str, hooks: list[dict[str, Any]],
              batch: client.BatchV1Api) -> None:
    """Apply hooks wave by wave (hook weight), waiting for each wave's Jobs."""
    def weight(obj: dict[str, Any]) -> int:
        return int(obj["metadata"]["annotations"].get(HOOK_WEIGHT, "0"))

    for _, wave in groupby(sorted(hooks, key=weight), key=weight):
        objects = list(wave)
        apply(env, namespace, objects)
        for job in (o for o in objects if o["kind"] == "Job"):
            kwait.wait_job_succeeded(batch, job["metadata"]["name"], namespace, timeout=120)


def versions(env: dict[str, str], namespace: str, objects: list[dict[str, Any]]) -> dict:
    """{(kind, name): generation, or resourceVersion for kinds without one}."""
    live = json.loads(kubectl(env, "get", "-n", namespace, "-o", "json", "-f", "-",
                              stdin=yaml.safe_dump_all(objects)).stdout)
    items = live.get("items", [live])
    return {(o["kind"], o["metadata"]["name"]):
            o["metadata"].get("generation") or o["metadata"]["resourceVersion"] for o in items}


@pytest.mark.usefixtures("eck_served")
@pytest.mark.parametrize("helm_name", HELM_VERSIONS)
def test_template_and_server_side_apply_twice_changes_nothing(
        helm_name: str, live_cluster: LiveCluster, api: client.ApiClient,
        core: client.CoreV1Api, apps: client.AppsV1Api, batch: client.BatchV1Api,
        tool_env: dict[str, str]) -> None:
    helm = Helm(helm_name, tool_env)
    namespace = create_namespace(core, f"la-stack-argo-{helm_name}")
    values = deep_merge(base_values(live_cluster.local), NETWORK_POLICIES)
    # Argo CD hands Helm the cluster's API versions; test hooks it does not run.
    args = (*API_VERSION_ARGS, "--skip-tests")
    try:
        manifest = helm.template(namespace, values, extra=args)
        assert helm.template(namespace, values, extra=args) == manifest, \
            "two renders differ: Argo CD would show the app OutOfSync on every refresh"
        docs = [d for d in yaml.safe_load_all(manifest) if d]
        normal = [d for d in docs if not (d["metadata"].get("annotations") or {}).get(HOOK)]
        runner = HookRunner(api, live_cluster.server, namespace) if live_cluster.local else None
        with runner or nullcontext():
            run_hooks(tool_env, namespace, hook_objects(manifest, "pre-install"), batch)  # PreSync
            apply(tool_env, namespace, normal)  # Sync
            for obj in normal:  # Healthy, as Argo CD waits for before PostSync
                name = obj["metadata"]["name"]
                if obj["kind"] == "Deployment":
                    kwait.wait_deployment_rolled_out(apps, core, name, namespace, 90)
                elif obj["kind"] == "StatefulSet":
                    kwait.wait_statefulset_rolled_out(apps, core, name, namespace, 90)
            run_hooks(tool_env, namespace, hook_objects(manifest, "post-install"), batch)
        if runner:
            assert not runner.errors, runner.report()

        before = versions(tool_env, namespace, normal)
        diff = kubectl(tool_env, "diff", *SSA, "-n", namespace, "-f", "-",
                       stdin=yaml.safe_dump_all(normal), check=False)
        assert diff.returncode == 0, f"a second sync would change:\n{diff.stdout}{diff.stderr}"
        apply(tool_env, namespace, normal)  # the second sync
        after = versions(tool_env, namespace, normal)
        moved = {k: (before[k], after[k]) for k in before if after.get(k) != before[k]}
        assert not moved, f"the second server-side apply changed {moved}"

        policies = {o["metadata"]["name"] for o in normal if o["kind"] == "NetworkPolicy"}
        admitted = {p.metadata.name for p in client.NetworkingV1Api(api)
                    .list_namespaced_network_policy(namespace).items}
        assert policies and policies <= admitted

        credentials = generated_secrets(core, namespace)
        assert credentials, "the PreSync hook generated no Secret"
        pruned = prune_as_argo_cd(core, namespace, docs)
        assert not set(pruned) & set(credentials), f"a prune would delete {pruned}"
        presync = hook_objects(manifest, "pre-install")
        delete_hook_jobs(batch, namespace, presync)
        again = HookRunner(api, live_cluster.server, namespace) if live_cluster.local else None
        with again or nullcontext():  # the next sync's PreSync
            run_hooks(tool_env, namespace, presync, batch)
        if again:
            assert not again.errors, again.report()
        assert generated_secrets(core, namespace) == credentials
    finally:
        delete_namespace(core, namespace)
