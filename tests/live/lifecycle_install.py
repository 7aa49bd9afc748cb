"""The first part of the release lifecycle (test_lifecycle.py): what `helm install` made,
checked before the release is upgraded. Collected only through `TestLifecycle`, which
inherits these checks so that they run first, in this order, on its release."""

from __future__ import annotations

import json
from typing import Any

import bcrypt
import pytest
import yaml
from kubernetes import client

from lastack import polling
from lastack.cluster import kwait
from lastack.testing.helm_release import RELEASE, hook_objects, kubectl
from tests.helpers import xfails_with_subchart
from tests.live import eck
from tests.live.lifecycle import (
    Release,
    chart_secret_names,
    generated_secret_names,
    normal_objects,
)
from tests.live.recorder import Seen


class InstallChecks:
    """After the install: hooks, workloads, what ECK made of our Elasticsearch, test Pods."""

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

        def assembled() -> polling.Probe:
            secret = eck.realm_secret(core, ns, es_name)
            realm = eck.parse_file_realm(eck.decoded(secret)) if secret else None
            return polling.Probe(done=bool(realm) and set(ours) <= set(realm.hashes),
                               state=f"users {sorted(realm.hashes) if realm else None}")

        polling.poll("the operator's file realm", assembled, eck.RECONCILE_SECONDS)
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
