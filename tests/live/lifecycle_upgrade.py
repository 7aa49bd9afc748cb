"""The second part of the release lifecycle (test_lifecycle.py): upgrades of the installed
release. Collected only through `TestLifecycle`, which inherits these checks so that they
run after the install checks and before rollback and uninstall."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

from lastack import polling
from lastack.chart.chart_values import deep_merge
from lastack.chart.render import missing_subcharts_reason
from lastack.cluster import kwait
from lastack.testing.helm_release import HOOK
from tests.live import eck
from tests.live.lifecycle import (
    NEW_ACCOUNT,
    RESTARTED_AT,
    UPGRADE_CHANGE,
    Release,
    chart_secret_names,
    config_maps_unlike,
    generated_secret_names,
    pod_templates,
    ralph_deployment,
    secrets_config,
)
from tests.live.lifecycle_install import InstallChecks
from tests.live.recorder import Recorder, secrets_snapshot


class UpgradeChecks(InstallChecks):
    """Upgrades rotate nothing, ECK reconciles them, a new account rolls Ralph only."""

    def test_upgrade_rotates_nothing(self, release: Release, api: client.ApiClient,
                                     core: client.CoreV1Api, apps: client.AppsV1Api,
                                     batch: client.BatchV1Api) -> None:
        """An upgrade with changed values reaches the objects, changes no Secret's data (the
        pre-upgrade hook keeps every existing Secret; the chart renders no random value),
        rewrites no generated Secret at all, rolls no Deployment (no pod template changes:
        no Secret a Pod reads changed), runs each hook Job once and leaves none."""
        release.require_installed()
        templates_before = pod_templates(apps, release.namespace)
        before = secrets_snapshot(core, release.namespace)
        versions = {s.metadata.name: s.metadata.resource_version
                    for s in core.list_namespaced_secret(release.namespace).items}
        release.versions_before_upgrade = versions
        es_name = next((o["metadata"]["name"] for o in release.rendered()
                        if o["kind"] == eck.ES_KIND), None)
        if es_name:
            release.es_pods_before_upgrade = {
                p.metadata.name: p.metadata.uid
                for p in eck.elasticsearch_pods(core, release.namespace, es_name)}
        new_values = deep_merge(release.values, UPGRADE_CHANGE)
        with Recorder(api, release.namespace) as recorder:
            release.helm.upgrade(release.namespace, new_values)
        after = secrets_snapshot(core, release.namespace)
        assert set(after) == set(before), "the upgrade added or removed Secrets"
        changed = sorted(n for n in before if after[n] != before[n])
        assert not changed, f"the upgrade changed the data of Secrets {changed}"
        templates_after = pod_templates(apps, release.namespace)
        rolled = sorted(n for n in templates_before
                        if templates_after.get(n) != templates_before[n])
        assert not rolled, f"the upgrade changed the pod templates of {rolled}"
        rendered = release.rendered(new_values)
        for name in generated_secret_names(rendered):
            now = core.read_namespaced_secret(name, release.namespace).metadata.resource_version
            assert now == versions[name], f"generated Secret {name} was rewritten"

        jobs_added: dict[str, int] = {}
        for event in recorder.ordered():
            if event.kind == "Job" and event.type == "ADDED":
                jobs_added[event.name] = jobs_added.get(event.name, 0) + 1
        assert jobs_added and all(n == 1 for n in jobs_added.values()), jobs_added
        left = [j.metadata.name for j in batch.list_namespaced_job(release.namespace).items
                if (j.metadata.annotations or {}).get(HOOK)]
        assert not left, f"hook Jobs left after the upgrade: {left}"

        # the changed value reached the live objects
        assert not config_maps_unlike(core, release.namespace, rendered)

    def test_eck_reconciles_the_upgrade_without_touching_our_secrets(
            self, release: Release, apps: client.AppsV1Api, core: client.CoreV1Api,
            eck_operator: None) -> None:
        """The upgrade's extra node and new version reach the operator's StatefulSet of that
        node set (its new Pod created), and no Secret of the release or of its users was
        written while the operator reconciled the change (its own certificates may be).
        On kwok the operator never sees a healthy Elasticsearch, so it restarts no existing
        node for the new version (it waits, as it would for a red cluster): the Pods from
        before keep running; a real cluster shows the rolling upgrade itself."""
        eck.require_subchart()
        if not release.versions_before_upgrade:
            pytest.fail("the upgrade did not run (see test_upgrade_rotates_nothing)")
        rendered = release.rendered(deep_merge(release.values, UPGRADE_CHANGE))
        es = eck.elasticsearch(rendered)
        node_set = es["spec"]["nodeSets"][0]
        statefulset = eck.node_set_statefulset(apps, release.namespace, es["metadata"]["name"],
                                               node_set["name"])
        polling.poll(f"StatefulSet {statefulset} at {node_set['count']} replicas",
                   lambda: eck.replicas_probe(apps, release.namespace, statefulset,
                                              node_set["count"]), eck.RECONCILE_SECONDS)
        template = apps.read_namespaced_stateful_set(statefulset, release.namespace).spec.template
        images = {c.name: c.image for c in template.spec.containers}
        assert images["elasticsearch"].endswith(f":{es['spec']['version']}"), images
        if release.cluster.local:
            pods = {p.metadata.name: p.metadata.uid
                    for p in eck.elasticsearch_pods(core, release.namespace,
                                                    es["metadata"]["name"])}
            kept = {n: u for n, u in release.es_pods_before_upgrade.items() if pods.get(n) == u}
            assert release.es_pods_before_upgrade and kept == release.es_pods_before_upgrade, \
                f"before {release.es_pods_before_upgrade}, now {pods}"
        ours = chart_secret_names(rendered) | {
            s["secretName"] for key in ("fileRealm", "roles") for s in es["spec"]["auth"][key]}
        now = {s.metadata.name: s.metadata.resource_version
               for s in core.list_namespaced_secret(release.namespace).items}
        rewritten = sorted(n for n in ours
                           if now.get(n) != release.versions_before_upgrade.get(n))
        assert not rewritten, f"Secrets written during the upgrade: {rewritten}"

    def test_upgrade_with_a_new_account_rolls_ralph_and_only_ralph(
            self, release: Release, core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
        """One more LRS account rewrites Ralph's auth.json Secret: the secrets hook then
        patches the pod template of Ralph's Deployment (its controller starts new Pods,
        which read the new accounts), and of no other Deployment."""
        release.require_installed()
        reason = missing_subcharts_reason(["ralph"])
        if reason:
            pytest.skip(f"no Ralph Deployment to roll (it comes from the ralph subchart): {reason}")
        values = deep_merge(deep_merge(release.values, UPGRADE_CHANGE), NEW_ACCOUNT)
        rendered = release.rendered(values)
        auth_secret = secrets_config(rendered)["ralph"]["authSecret"]
        ralph = ralph_deployment(rendered, auth_secret)
        auth_before = secrets_snapshot(core, release.namespace)[auth_secret]
        templates_before = pod_templates(apps, release.namespace)
        generation = apps.read_namespaced_deployment(ralph, release.namespace).metadata.generation
        release.helm.upgrade(release.namespace, values)
        auth = secrets_snapshot(core, release.namespace)[auth_secret]
        assert auth != auth_before, "the new account did not reach auth.json"
        assert "campus" in {e["username"] for e in json.loads(auth["auth.json"])}
        templates = pod_templates(apps, release.namespace)
        changed = sorted(n for n in templates_before if templates.get(n) != templates_before[n])
        assert changed == [ralph], f"pod templates changed: {changed}"
        annotations = templates[ralph]["metadata"].get("annotations") or {}
        assert RESTARTED_AT in annotations, annotations
        deployment = apps.read_namespaced_deployment(ralph, release.namespace)
        assert deployment.metadata.generation > generation
        kwait.wait_deployment_rolled_out(apps, core, ralph, release.namespace, 120)
