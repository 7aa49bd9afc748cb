"""The secrets hook program against a real API server, with the hook's own identity.

The chart's hook ServiceAccount, Role, RoleBinding and config ConfigMap are rendered and
applied to a fresh namespace; a token for that ServiceAccount comes from the TokenRequest
API; `release_secrets.py` (the copy the ConfigMap carries, as the Job mounts it) runs here with the
env overrides `K8S_API_URL`, `K8S_TOKEN_FILE`, `K8S_CA_FILE`, `K8S_NAMESPACE`. Unlike the
hooks tier's stand-in server, RBAC, admission and Secret validation are the real ones.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import pytest
import yaml
from kubernetes import client

from lastack.chart.render import render_chart
from lastack.cluster import kwait
from lastack.paths import CHART_DIR
from lastack.testing.helm_release import kubectl
from tests.live.cluster import LiveCluster, create_namespace, delete_namespace

RBAC_TEMPLATE = "templates/secrets/secrets-rbac.yaml"
CONFIG_TEMPLATE = "templates/secrets/secrets-configmap.yaml"
PROGRAM = "release_secrets.py"
KEEP = "kept-as-it-is-0123456789"

_missing = [t for t in (RBAC_TEMPLATE, CONFIG_TEMPLATE, f"files/hooks/{PROGRAM}")
            if not (CHART_DIR / t).exists()]
pytestmark = pytest.mark.skipif(
    bool(_missing), reason=f"the secrets hook is not in the chart yet ({', '.join(_missing)})")


@dataclass
class Hook:
    namespace: str
    config: dict
    env: dict[str, str]
    workdir: Path
    token: str
    ca_file: Path
    server: str
    service_account: str
    read_names: list[str]  # what the Role lets it get

    def run(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(self.workdir / PROGRAM)], env=self.env,
                              capture_output=True, text=True, timeout=120, check=False)

    def call(self, method: str, path: str, body: dict | None = None,
             content_type: str = "application/json") -> int:
        """HTTP status of an API call made with the hook's token."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.server}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": content_type})
        context = ssl.create_default_context(cafile=str(self.ca_file))
        try:
            with urllib.request.urlopen(req, context=context, timeout=30) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code


def source_secrets(config: dict) -> list[str]:
    return [e["secret"] for key in ("esUsers", "lrsAccounts", "generic")
            for e in config.get(key, []) if not e.get("existingSecret")]


def expected_secrets(config: dict) -> set[str]:
    names = set(source_secrets(config))
    if config.get("ralph"):
        names |= {config["ralph"]["envSecret"], config["ralph"]["authSecret"]}
    return names


@pytest.fixture(scope="module")
def hook(live_cluster: LiveCluster, core: client.CoreV1Api,
         tool_env: dict[str, str]) -> Iterator[Hook]:
    namespace = create_namespace(core, "la-stack-secrets-hook")
    workdir = Path(tempfile.mkdtemp(prefix="la-stack-secrets-hook-"))
    try:
        objects = render_chart(show_only=[RBAC_TEMPLATE, CONFIG_TEMPLATE], namespace=namespace)
        kubectl(tool_env, "apply", "-n", namespace, "-f", "-",
                stdin=yaml.safe_dump_all(objects))
        config_map = next(o for o in objects if o["kind"] == "ConfigMap")
        for name, text in config_map["data"].items():  # the /hooks volume of the Job
            (workdir / name).write_text(text)
        config = json.loads(config_map["data"]["secrets.json"])
        role = next(o for o in objects if o["kind"] == "Role")
        read_names = next(r["resourceNames"] for r in role["rules"] if r["verbs"] == ["get"])
        sa = next(o for o in objects if o["kind"] == "ServiceAccount")["metadata"]["name"]
        token = core.create_namespaced_service_account_token(
            sa, namespace, client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
        ).status.token
        (workdir / "token").write_text(token)
        # The CA a hook Pod gets (kube-root-ca.crt), so the TLS check is the in-cluster one.
        # The controller-manager publishes it into new namespaces shortly after creation.
        ca = kwait.wait_exists(
            core, lambda: core.read_namespaced_config_map("kube-root-ca.crt", namespace),
            f"ConfigMap {namespace}/kube-root-ca.crt", namespace, timeout=60).data["ca.crt"]
        (workdir / "ca.crt").write_text(ca)
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(workdir),
               "CONFIG_FILE": str(workdir / "secrets.json"), "DEADLINE_SECONDS": "60",
               "K8S_API_URL": live_cluster.server, "K8S_TOKEN_FILE": str(workdir / "token"),
               "K8S_CA_FILE": str(workdir / "ca.crt"), "K8S_NAMESPACE": namespace,
               "PYTHONDONTWRITEBYTECODE": "1"}
        yield Hook(namespace, config, env, workdir, token, workdir / "ca.crt",
                   live_cluster.server, sa, read_names)
    finally:
        delete_namespace(core, namespace)
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()


def secret_versions(core: client.CoreV1Api, namespace: str) -> dict[str, str]:
    return {s.metadata.name: s.metadata.resource_version
            for s in core.list_namespaced_secret(namespace).items}


def test_creates_exactly_the_missing_secrets_and_never_overwrites(
        hook: Hook, core: client.CoreV1Api) -> None:
    """A Secret that already exists (an LRS account's, made by a user) is left exactly as it
    is, and the derived Ralph auth.json is built from its password; every other Secret the
    config names is created, and nothing else."""
    accounts = hook.config.get("lrsAccounts", [])
    if not accounts:
        pytest.skip("the rendered config has no LRS account to pre-create")
    kept = accounts[0]["secret"]
    core.create_namespaced_secret(hook.namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name=kept), type="kubernetes.io/basic-auth",
        string_data={"username": accounts[0]["username"], "password": KEEP}))
    before = secret_versions(core, hook.namespace)

    proc = hook.run()
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    after = secret_versions(core, hook.namespace)
    assert set(after) - set(before) == expected_secrets(hook.config) - {kept}
    assert after[kept] == before[kept], f"the existing Secret {kept} was modified"
    password = base64.b64decode(core.read_namespaced_secret(kept, hook.namespace)
                                .data["password"]).decode()
    assert password == KEEP
    ralph = hook.config.get("ralph")
    if ralph:
        auth = json.loads(base64.b64decode(core.read_namespaced_secret(
            ralph["authSecret"], hook.namespace).data["auth.json"]))
        entry = next(a for a in auth if a["username"] == accounts[0]["username"])
        assert bcrypt.checkpw(KEEP.encode(), entry["hash"].encode())


def test_second_run_changes_nothing(hook: Hook, core: client.CoreV1Api) -> None:
    """Idempotent against the real API: the second run writes nothing (every resourceVersion
    stays), so a re-sync or upgrade rotates no credential and no bcrypt hash."""
    first = hook.run()
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"
    before = secret_versions(core, hook.namespace)
    second = hook.run()
    assert second.returncode == 0, f"{second.stdout}\n{second.stderr}"
    assert secret_versions(core, hook.namespace) == before


def test_rbac_denies_what_the_hook_must_not_do(hook: Hook, core: client.CoreV1Api) -> None:
    """With the hook's token: it can read a Secret it manages (so the denials below are
    RBAC, not a broken token) but cannot list Secrets, delete one, read or overwrite one
    its Role does not name, or touch other kinds. It may update the Secrets it generated
    (to keep their Argo CD metadata current); that it never changes their data is the
    program's rule, checked in the hooks tier, and a user's existingSecret is only ever
    named for get (render tier)."""
    ns = hook.namespace
    base = f"/api/v1/namespaces/{ns}/secrets"
    core.create_namespaced_secret(ns, client.V1Secret(
        metadata=client.V1ObjectMeta(name="not-the-hooks"), string_data={"k": "v"}))
    managed = hook.read_names[0]
    if hook.call("GET", f"{base}/{managed}") == 404:
        assert hook.run().returncode == 0
    assert hook.call("GET", f"{base}/{managed}") == 200
    assert hook.call("GET", base) == 403, "the hook may list Secrets"
    assert hook.call("DELETE", f"{base}/{managed}") == 403, "the hook may delete a Secret"
    assert hook.call("GET", f"{base}/not-the-hooks") == 403, "it may read any Secret"
    other = core.read_namespaced_secret("not-the-hooks", ns).metadata.resource_version
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "not-the-hooks", "resourceVersion": other},
        "data": {"k": base64.b64encode(b"changed").decode()}}
    assert hook.call("PUT", f"{base}/not-the-hooks", body) == 403, "it may overwrite any Secret"
    assert hook.call("GET", f"/api/v1/namespaces/{ns}/pods") == 403
    assert hook.call("GET", f"/api/v1/namespaces/{ns}/configmaps") == 403


def deployment(name: str) -> client.V1Deployment:
    """A Deployment standing for one of the release's (Pod Security `restricted`)."""
    labels = {"app": name}
    container = client.V1Container(
        name="app", image="registry.invalid/app:1", security_context=client.V1SecurityContext(
            allow_privilege_escalation=False, run_as_non_root=True,
            capabilities=client.V1Capabilities(drop=["ALL"]),
            seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault")))
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=0, selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels),
                                              spec=client.V1PodSpec(containers=[container]))))


def pod_templates(apps: client.AppsV1Api, namespace: str) -> dict[str, dict]:
    return {d.metadata.name: client.ApiClient().sanitize_for_serialization(d.spec.template)
            for d in apps.list_namespaced_deployment(namespace).items}


def test_a_changed_account_rolls_only_the_deployments_reading_it(
        hook: Hook, core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    """Ralph's Deployment (named in the config) and another one exist. A run with nothing
    changed patches neither; a run with a changed LRS account rewrites auth.json and patches
    the pod template of Ralph's only, which the hook's Role allows and nothing else."""
    ralph = hook.config.get("ralph") or {}
    if not ralph.get("deployments"):
        pytest.skip("the rendered config names no Deployment reading a derived Secret")
    (reader,) = ralph["deployments"]
    other = "la-stack-not-a-reader"
    for name in (reader, other):
        apps.create_namespaced_deployment(hook.namespace, deployment(name))
    first = hook.run()
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"
    before = pod_templates(apps, hook.namespace)

    unchanged = hook.run()
    assert unchanged.returncode == 0, f"{unchanged.stdout}\n{unchanged.stderr}"
    assert pod_templates(apps, hook.namespace) == before, "a run with nothing changed rolled"

    # A changed account (the Role names every Secret of the rendered config, so the
    # change is to an existing account: its scopes, which auth.json carries).
    config = json.loads(json.dumps(hook.config))
    account = config["lrsAccounts"][0]
    account["scopes"] = [*account["scopes"], "state/read"]
    changed_file = hook.workdir / "secrets-changed.json"
    changed_file.write_text(json.dumps(config))
    rolled = subprocess.run([sys.executable, str(hook.workdir / PROGRAM)],
                            env={**hook.env, "CONFIG_FILE": str(changed_file)},
                            capture_output=True, text=True, timeout=120, check=False)
    assert rolled.returncode == 0, f"{rolled.stdout}\n{rolled.stderr}"
    assert f"Deployment {reader}: rolled" in rolled.stdout
    after = pod_templates(apps, hook.namespace)
    assert after[other] == before[other], "a Deployment that reads no derived Secret rolled"
    assert "la-stack.io/restartedAt" in (after[reader]["metadata"].get("annotations") or {})
    auth = json.loads(base64.b64decode(core.read_namespaced_secret(
        ralph["authSecret"], hook.namespace).data["auth.json"]))
    entry = next(e for e in auth if e["username"] == account["username"])
    assert "state/read" in entry["scopes"]

    patch = {"spec": {"template": {"metadata": {"annotations": {"x": "y"}}}}}
    deployments = f"/apis/apps/v1/namespaces/{hook.namespace}/deployments"
    assert hook.call("PATCH", f"{deployments}/{other}", patch,
                     "application/merge-patch+json") == 403, "it may patch any Deployment"
    assert hook.call("GET", deployments) == 403, "it may list Deployments"
