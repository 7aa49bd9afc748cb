"""The release lifecycle on a real API: install, helm test, upgrade, rollback, uninstall,
under Helm 3 and Helm 4, each in its own namespace enforcing Pod Security `restricted`.

On the local control plane kwok fakes the containers: Pods are scheduled and turn
Running/Ready, Job Pods and `helm test` Pods "succeed" without running anything. What is
real: the API server's validation and defaulting, admission (Pod Security rejects
non-compliant Pods), RBAC, the Job/ReplicaSet/StatefulSet/garbage-collector/namespace
controllers, PVC binding, and Helm's own behaviour (hook ordering, waits, 3-way merge or
server-side apply, release records), and the ECK operator reconciling our Elasticsearch
(Services, certificates, the file realm, StatefulSets; the cluster's own operator on a
named cluster). The hook runner (hookrunner.py) runs the secrets hook program for real,
with the hook's own ServiceAccount token; the other hook Pods get their volumes mounted
and are completed without running. Only a real cluster (kind/k3d via --kubeconfig) shows
the programs inside the image, image pulls, probes, and Elasticsearch/Ralph/Moodle working.

The checks run in the order of the release's life: those of the install
(lifecycle_install.py), of the upgrades (lifecycle_upgrade.py), then rollback and uninstall
here; `TestLifecycle` inherits them in that order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import pytest
from kubernetes import client

from lastack.testing.helm_release import HOOK, RELEASE, Helm, base_values
from lastack.testing.hookrunner import HookRunner
from tests.helpers import HELM_VERSIONS
from tests.live import eck
from tests.live.cluster import (
    ECK_GROUP,
    LiveCluster,
    create_namespace,
    delete_namespace,
    eck_operator_registered,
    serves_eck,
)
from tests.live.lifecycle import Release, config_maps_unlike, generated_secret_names
from tests.live.lifecycle_upgrade import UpgradeChecks
from tests.live.recorder import Recorder, secrets_snapshot


@pytest.fixture(scope="class", params=HELM_VERSIONS)
def release(request: pytest.FixtureRequest, live_cluster: LiveCluster,
            api: client.ApiClient, core: client.CoreV1Api,
            tool_env: dict[str, str]) -> Iterator[Release]:
    if not serves_eck(api):
        pytest.skip(f"the cluster does not serve {ECK_GROUP}/v1: install the ECK operator first")
    helm = Helm(request.param, tool_env)
    namespace = create_namespace(core, f"la-stack-{helm.name}")
    runner = (HookRunner(api, live_cluster.server, namespace) if live_cluster.local else None)
    rel = Release(helm, namespace, base_values(live_cluster.local), live_cluster, runner)
    try:
        with runner or nullcontext(), Recorder(api, namespace) as recorder:
            proc = helm.install(namespace, rel.values, check=False)
            rel.install_output = f"{proc.stdout[-3000:]}\n{proc.stderr}\n{rel.diagnostics()}"
            rel.installed = proc.returncode == 0
            rel.install_events = recorder.ordered()
            yield rel
    finally:
        delete_namespace(core, namespace)


class TestLifecycle(UpgradeChecks):
    """One release per Helm major version, taken through its whole life in order."""

    def test_rollback(self, release: Release, api: client.ApiClient,
                      core: client.CoreV1Api) -> None:
        """Rollback to revision 1 restores its objects, touches no Secret and runs no
        install/upgrade hook (the chart has no rollback hooks)."""
        release.require_installed()
        before = secrets_snapshot(core, release.namespace)
        revisions = len(self.history(release))
        with Recorder(api, release.namespace) as recorder:
            release.helm.run("rollback", RELEASE, "1", "-n", release.namespace,
                             *release.helm.wait, *release.helm.change, "--timeout", "3m")
        assert secrets_snapshot(core, release.namespace) == before
        hooks = [e for e in recorder.ordered() if e.hook and e.type == "ADDED"]
        assert not hooks, f"hooks ran on rollback: {[(e.kind, e.name) for e in hooks]}"
        assert not config_maps_unlike(core, release.namespace, release.rendered())
        history = self.history(release)  # the rollback is one more revision, deployed
        assert [h["status"] for h in history][-1] == "deployed"
        assert len(history) == revisions + 1

    @staticmethod
    def history(release: Release) -> list[dict[str, Any]]:
        return json.loads(release.helm.run("history", RELEASE, "-n", release.namespace,
                                           "-o", "json").stdout)

    def test_uninstall_leaves_no_hook_objects(self, release: Release, api: client.ApiClient,
                                              core: client.CoreV1Api) -> None:
        """After uninstall nothing of the release's kinds that hooks use remains (Jobs,
        ConfigMaps, Roles, RoleBindings, ServiceAccounts labelled with the release); what the
        design keeps stays: the credential Secrets the hook generated (not Helm's) and the
        StatefulSets' data PVCs, the Elasticsearch ones the operator's StatefulSets claimed
        included (`volumeClaimDeletePolicy: DeleteOnScaledownOnly`)."""
        release.require_installed()
        rendered = release.rendered()
        reconciled = eck_operator_registered(core) and any(o["kind"] == eck.ES_KIND
                                                           for o in rendered)
        es_claims = (eck.data_claims(core, release.namespace, eck.elasticsearch(rendered))
                     if reconciled else set())
        sts_claims = es_claims | {f"{t['metadata']['name']}-{o['metadata']['name']}-{i}"
                      for o in rendered if o["kind"] == "StatefulSet"
                      for t in o["spec"].get("volumeClaimTemplates", [])
                      for i in range(o["spec"].get("replicas", 1))}
        release.helm.run("uninstall", RELEASE, "-n", release.namespace, *release.helm.wait,
                         "--timeout", "3m")
        ns = release.namespace
        selector = f"app.kubernetes.io/instance={RELEASE}"
        rbac = client.RbacAuthorizationV1Api(api)
        leftovers = {
            "Job": client.BatchV1Api(api).list_namespaced_job(ns, label_selector=selector),
            "ConfigMap": core.list_namespaced_config_map(ns, label_selector=selector),
            "Role": rbac.list_namespaced_role(ns, label_selector=selector),
            "RoleBinding": rbac.list_namespaced_role_binding(ns, label_selector=selector),
            "ServiceAccount": core.list_namespaced_service_account(ns, label_selector=selector),
        }
        left = {k: [o.metadata.name for o in v.items] for k, v in leftovers.items() if v.items}
        assert not left, f"left after uninstall: {left}"
        secrets = {s.metadata.name for s in core.list_namespaced_secret(ns).items}
        generated = generated_secret_names(rendered)
        assert generated <= secrets, f"generated Secrets deleted: {generated - secrets}"
        helm_secrets = {o["metadata"]["name"] for o in rendered
                        if o["kind"] == "Secret" and not (o["metadata"].get("annotations")
                                                          or {}).get(HOOK)}
        assert not helm_secrets & secrets, f"Helm's Secrets left: {helm_secrets & secrets}"
        claims = {c.metadata.name for c in core.list_namespaced_persistent_volume_claim(ns).items}
        assert sts_claims <= claims, f"StatefulSet data PVCs deleted: {sts_claims - claims}"
        kept = {o["metadata"]["name"] for o in rendered if o["kind"] == "PersistentVolumeClaim"
                and (o["metadata"].get("annotations") or {}).get("helm.sh/resource-policy")
                == "keep"}
        assert kept <= claims, f"PVCs marked keep were deleted: {kept - claims}"
