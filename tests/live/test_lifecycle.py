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
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import bcrypt
import pytest
import yaml
from kubernetes import client

from lastack.chart.chart_values import deep_merge
from lastack.chart.render import missing_subcharts_reason
from lastack.cluster import kwait
from lastack.paths import CHART_DIR
from lastack.testing.helm_release import (
    API_VERSION_ARGS,
    HOOK,
    RELEASE,
    Helm,
    base_values,
    hook_objects,
)
from lastack.testing.hookrunner import HookRunner
from tests.helpers import HELM_VERSIONS, xfails_with_subchart
from tests.live import eck
from tests.live.cluster import (
    ECK_GROUP,
    LiveCluster,
    create_namespace,
    delete_namespace,
    eck_operator_registered,
    serves_eck,
)
from tests.live.support import Recorder, Seen, secrets_snapshot


def _one_more_node_and_patch() -> dict[str, Any]:
    """The chart's Elasticsearch values with one node more in the first node set and the
    next patch version."""
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["eck-elasticsearch"]
    node_sets = values["nodeSets"]
    major, minor, patch = values["version"].split(".")
    return {"nodeSets": [{**node_sets[0], "count": node_sets[0]["count"] + 1}, *node_sets[1:]],
            "version": f"{major}.{minor}.{int(patch) + 1}"}


# A value whose change reaches a normal object (Ralph's env ConfigMap) on upgrade, and a
# node count and version the ECK operator must reconcile.
UPGRADE_CHANGE = {"lrs": {"backend": {"refreshAfterWrite": True}},
                  "eck-elasticsearch": _one_more_node_and_patch()}
# One more LRS account: Ralph's auth.json Secret changes, so Ralph (only) must roll.
NEW_ACCOUNT = {"lrs": {"sources": {"campus": {"mbox": "mailto:moodle@campus.example.org"}}}}
RESTARTED_AT = "la-stack.io/restartedAt"


@dataclass
class Release:
    helm: Helm
    namespace: str
    values: dict[str, Any]
    cluster: LiveCluster
    runner: HookRunner | None
    install_output: str = ""
    installed: bool = False
    install_events: list[Seen] = field(default_factory=list)
    # resourceVersion of each Secret, and uid of each Elasticsearch Pod, before the upgrade
    versions_before_upgrade: dict[str, str] = field(default_factory=dict)
    es_pods_before_upgrade: dict[str, str] = field(default_factory=dict)

    def diagnostics(self) -> str:
        runner = self.runner.report() if self.runner else "(no hook runner: real kubelets)"
        return f"hook runner:\n{runner}"

    def require_installed(self) -> None:
        if not self.installed:
            pytest.fail(f"the install failed (see test_install):\n{self.install_output}")

    def rendered(self, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        manifest = self.helm.template(self.namespace, values or self.values,
                                      extra=API_VERSION_ARGS)
        return [d for d in yaml.safe_load_all(manifest) if d]


def generated_secret_names(objects: list[dict[str, Any]]) -> set[str]:
    """The Secrets the secrets hook creates, from the config the chart hands it."""
    for obj in objects:
        if obj["kind"] == "ConfigMap" and "secrets.json" in (obj.get("data") or {}):
            config = json.loads(obj["data"]["secrets.json"])
            names = {e["secret"] for key in ("esUsers", "lrsAccounts", "generic")
                     for e in config.get(key, []) if not e.get("existingSecret")}
            if config.get("ralph"):
                names |= {config["ralph"]["envSecret"], config["ralph"]["authSecret"]}
            return names
    return set()


def chart_secret_names(objects: list[dict[str, Any]]) -> set[str]:
    """Secrets the release makes: rendered ones and the ones its hook generates."""
    return generated_secret_names(objects) | {o["metadata"]["name"] for o in objects
                                              if o["kind"] == "Secret"}


def pod_templates(apps: client.AppsV1Api, namespace: str) -> dict[str, dict[str, Any]]:
    """The pod template of each Deployment, as the API server holds it."""
    return {d.metadata.name: client.ApiClient().sanitize_for_serialization(d.spec.template)
            for d in apps.list_namespaced_deployment(namespace).items}


def ralph_deployment(objects: list[dict[str, Any]], auth_secret: str) -> str:
    """The rendered Deployment that mounts Ralph's auth.json Secret."""
    (name,) = [o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"
               and auth_secret in {v.get("secret", {}).get("secretName")
                                   for v in o["spec"]["template"]["spec"].get("volumes", [])}]
    return name


def secrets_config(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(json.loads(o["data"]["secrets.json"]) for o in objects
                if o["kind"] == "ConfigMap" and "secrets.json" in (o.get("data") or {}))


def normal_objects(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(o["kind"], o["metadata"]["name"]) for o in objects
            if not (o["metadata"].get("annotations") or {}).get(HOOK)}


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


class TestLifecycle:
    """One release per Helm major version, taken through its whole life in order."""

    def test_install_runs_hooks_in_weight_order(self, release: Release,
                                                core: client.CoreV1Api) -> None:
        """Pre-install hooks are created in weight order, their Job succeeds before any
        normal object exists, post-install hooks come after every normal object, each hook
        Job succeeds and is then deleted (hook-succeeded), and the Secrets the hook creates
        exist. With kwok, "succeeds" means the Job controller saw a succeeded Pod: the
        secrets program really ran (hook runner); es_bootstrap.py did not (no ES here)."""
        assert release.installed, release.install_output
        if release.runner:
            assert not release.runner.errors, release.runner.report()
            ran = [r for r in release.runner.runs if r.ran]
            assert ran and all(r.exit_code == 0 for r in ran), release.runner.report()
        rendered = release.rendered()
        events = release.install_events
        added = {(e.kind, e.name): e for e in reversed(events) if e.type == "ADDED"}

        def created(obj: dict[str, Any]) -> Seen:
            key = (obj["kind"], obj["metadata"]["name"])
            assert key in added, f"{key} was never created; saw {sorted(added)}"
            return added[key]

        normal = [added[k] for k in normal_objects(rendered) if k in added]
        assert normal, "no normal object of the release was created"
        first_normal = min(e.rv for e in normal)
        last_normal = max(e.rv for e in normal)
        for phase in ("pre-install", "post-install"):
            hooks = [h for h in hook_objects(yaml.safe_dump_all(rendered), phase)
                     if h["kind"] in {"ServiceAccount", "ConfigMap", "Role", "RoleBinding",
                                      "Job", "Secret"}]
            seen = sorted((created(h) for h in hooks), key=lambda e: e.rv)
            weights = [e.weight for e in seen]
            assert weights == sorted(weights), f"{phase} hooks created out of weight order: " \
                f"{[(e.kind, e.name, e.weight) for e in seen]}"
            for job in (e for e in seen if e.kind == "Job"):
                done = next((e for e in events if e.kind == "Job" and e.name == job.name
                             and e.succeeded), None)
                assert done, f"hook Job {job.name} never succeeded; {release.diagnostics()}"
                later = [e for e in seen if e.weight > job.weight]
                assert all(e.rv > done.rv for e in later), \
                    f"{phase} hooks heavier than Job {job.name} started before it succeeded"
                deleted = next((e for e in events if e.kind == "Job" and e.name == job.name
                                and e.type == "DELETED" and e.rv > done.rv), None)
                assert deleted, f"hook Job {job.name} was not deleted after success"
                if phase == "pre-install":
                    assert done.rv < first_normal, \
                        f"a normal object was created before hook Job {job.name} succeeded"
            if phase == "post-install":
                assert all(e.rv > last_normal for e in seen), \
                    "a post-install hook was created before every normal object existed"

        generated = generated_secret_names(rendered)
        present = {s.metadata.name for s in core.list_namespaced_secret(release.namespace).items}
        assert generated <= present, f"hook Secrets missing: {generated - present}"

    def test_workloads_rolled_out(self, release: Release, apps: client.AppsV1Api,
                                  core: client.CoreV1Api) -> None:
        """Every Deployment and StatefulSet is available: their Pods passed Pod Security
        `restricted` admission and were scheduled (PVCs bound). kwok makes them Ready, so
        this says nothing about the containers themselves."""
        release.require_installed()
        for obj in release.rendered():
            name = obj["metadata"]["name"]
            if obj["kind"] == "Deployment":
                kwait.wait_deployment_rolled_out(apps, core, name, release.namespace, 60)
            elif obj["kind"] == "StatefulSet":
                kwait.wait_statefulset_rolled_out(apps, core, name, release.namespace, 60)

    def test_eck_serves_what_the_clients_point_at(self, release: Release,
                                                  core: client.CoreV1Api,
                                                  eck_operator: None) -> None:
        """From our Elasticsearch the operator made the Service each https URL of the chart
        names (with that port), and the Secret each Pod mounts for its CA, with the keys
        the clients read plus `ca.crt`/`tls.crt`; the certificate chains to that CA and names
        the host the clients dial. Not shown on kwok: Elasticsearch answering there."""
        release.require_installed()
        eck.require_subchart()
        rendered = release.rendered()
        ns = release.namespace
        es_name = eck.elasticsearch(rendered)["metadata"]["name"]
        endpoints = eck.service_endpoints(rendered, ns)
        assert endpoints, "the chart configures no client with an in-cluster https URL"
        for endpoint in endpoints:
            service = eck.wait_owned(
                core, lambda e=endpoint: core.read_namespaced_service(e.service, ns),
                f"Service {endpoint.service}", ns, es_name)
            assert endpoint.port in {p.port for p in service.spec.ports}, service.spec.ports
        mounts = eck.foreign_secret_mounts(rendered, chart_secret_names(rendered))
        assert mounts and any(m.keys for m in mounts), \
            "no Pod of the chart mounts a CA Secret it names a file of"
        for mount in mounts:
            secret = eck.wait_owned(
                core, lambda m=mount: core.read_namespaced_secret(m.secret, ns),
                f"Secret {mount.secret} ({mount.workload})", ns, es_name)
            data = eck.decoded(secret)
            assert mount.keys | {"ca.crt", "tls.crt"} <= set(data), (mount, sorted(data))
            eck.verifies_against(data["tls.crt"], data["ca.crt"])
            names = eck.dns_names(data["tls.crt"])
            assert {e.host for e in endpoints} <= names, f"{mount.secret} is for {names}"

    def test_eck_file_realm_holds_our_users_with_their_roles(
            self, release: Release, core: client.CoreV1Api, eck_operator: None) -> None:
        """The file realm the operator assembled holds exactly our users (besides the users
        it makes itself), each with the password of its Secret (bcrypt-checked) and the roles
        that Secret assigns; every role of our roles Secret is there as we wrote it; and it
        raised no warning about any of our Secrets (an unreadable roles file or a
        basic-auth Secret with a missing key is one)."""
        release.require_installed()
        eck.require_subchart()
        rendered = release.rendered()
        ns = release.namespace
        es = eck.elasticsearch(rendered)
        es_name = es["metadata"]["name"]
        sources = [s["secretName"] for s in es["spec"]["auth"]["fileRealm"]]
        ours = {}
        for name in sources:
            data = eck.decoded(core.read_namespaced_secret(name, ns))
            ours[data["username"]] = (data["password"], set(data["roles"].split(",")))
        assert len(ours) == len(sources), f"two realm Secrets share a username: {ours}"

        def assembled() -> kwait.Probe:
            secret = eck.realm_secret(core, ns, es_name)
            realm = eck.parse_file_realm(eck.decoded(secret)) if secret else None
            return kwait.Probe(done=bool(realm) and set(ours) <= set(realm.hashes),
                               state=f"users {sorted(realm.hashes) if realm else None}")

        kwait.poll("the operator's file realm", assembled, eck.RECONCILE_SECONDS)
        realm = eck.parse_file_realm(eck.decoded(eck.realm_secret(core, ns, es_name)))
        own = eck.operator_users(core, ns, es_name)
        assert set(realm.hashes) - own == set(ours), f"the operator's own users: {own}"
        for user, (password, roles) in ours.items():
            assert bcrypt.checkpw(password.encode(), realm.hashes[user].encode()), user
            assert realm.roles.get(user) == roles, (user, realm.roles.get(user))
        role_sources = {s["secretName"] for s in es["spec"]["auth"]["roles"]}
        written = {}
        for obj in rendered:
            if obj["kind"] == "Secret" and obj["metadata"]["name"] in role_sources:
                written.update(yaml.safe_load(obj["stringData"]["roles.yml"]))
        assert written, "the chart renders none of the roles Secrets it references"
        for role, definition in written.items():
            assert realm.role_definitions.get(role) == definition, role
        warnings = [w for w in eck.warnings_about(core, ns, es_name)
                    if any(name in w for name in (*sources, *role_sources))]
        assert not warnings, warnings

    def test_helm_test(self, release: Release) -> None:
        """`helm test` of the umbrella's own test Pods: Helm creates them and they pass Pod
        Security `restricted`; kwok (or the hook runner, which does not run them) marks them
        Succeeded. It proves the test hooks are valid and runnable here, not that the data
        path works: that is the hooks tier (real Ralph and ES) and a real cluster."""
        release.require_installed()
        hooks = release.helm.run("get", "hooks", RELEASE, "-n", release.namespace).stdout
        own = [h["metadata"]["name"] for h in hook_objects(hooks, "test")
               if (h["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of")
               == "la-stack"]
        if not own:
            pytest.skip("the chart has no test hooks of its own yet")
        filters = [arg for name in own for arg in ("--filter", f"name={name}")]
        proc = release.helm.run("test", RELEASE, "-n", release.namespace, "--timeout", "2m",
                                *filters, check=False)
        assert proc.returncode == 0, f"{proc.stdout[-2000:]}\n{proc.stderr}\n" \
            f"{release.diagnostics()}"

    @xfails_with_subchart("ralph", (
        "the ralph 0.5.1 subchart's test-connection Pod (busybox wget) sets no "
        "securityContext, so namespaces enforcing Pod Security `restricted` reject it"))
    def test_subchart_test_pods_pass_pod_security(self, release: Release,
                                                  tool_env: dict[str, str]) -> None:
        """Every test Pod of the release, subcharts' included, is admitted (server dry-run).
        Without subchart archives only the umbrella's own test Pods are there."""
        from lastack.testing.helm_release import kubectl

        release.require_installed()
        hooks = release.helm.run("get", "hooks", RELEASE, "-n", release.namespace).stdout
        pods = [h for h in hook_objects(hooks, "test") if h["kind"] == "Pod"]
        assert pods, "the release has no test Pod at all"
        rejected = []
        for pod in pods:
            proc = kubectl(tool_env, "create", "--dry-run=server", "-n", release.namespace,
                           "-f", "-", stdin=json.dumps(pod), check=False)
            if proc.returncode != 0:
                rejected.append(f"{pod['metadata']['name']}: {proc.stderr.strip()}")
        assert not rejected, "\n".join(rejected)

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

        for obj in rendered:  # the changed value reached the live objects
            if obj["kind"] == "ConfigMap" and (obj["metadata"].get("annotations")
                                               or {}).get(HOOK) is None:
                live = core.read_namespaced_config_map(obj["metadata"]["name"],
                                                       release.namespace)
                assert (live.data or {}) == (obj.get("data") or {}), obj["metadata"]["name"]

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
        kwait.poll(f"StatefulSet {statefulset} at {node_set['count']} replicas",
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
        for obj in release.rendered():
            if obj["kind"] == "ConfigMap" and (obj["metadata"].get("annotations")
                                               or {}).get(HOOK) is None:
                live = core.read_namespaced_config_map(obj["metadata"]["name"],
                                                       release.namespace)
                assert (live.data or {}) == (obj.get("data") or {}), obj["metadata"]["name"]
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
