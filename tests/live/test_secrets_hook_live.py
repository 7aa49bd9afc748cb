"""The secrets hook program against a real API server, with the hook's own identity.

The chart's hook ServiceAccount, Role, RoleBinding and config ConfigMap are rendered and
applied to a fresh namespace; a token for that ServiceAccount comes from the TokenRequest
API; `secrets.py` (the copy the ConfigMap carries, as the Job mounts it) runs here with the
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

from lastack import kwait
from lastack.paths import CHART_DIR
from lastack.render import render_chart
from tests.live.conftest import LiveCluster, create_namespace, delete_namespace
from tests.live.support import kubectl

RBAC_TEMPLATE = "templates/hooks/secrets-rbac.yaml"
CONFIG_TEMPLATE = "templates/hooks/secrets-configmap.yaml"
PROGRAM = "secrets.py"
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

    def call(self, method: str, path: str, body: dict | None = None) -> int:
        """HTTP status of an API call made with the hook's token."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.server}{path}", data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
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
    its Role does not name, rewrite a source credential, or touch other kinds."""
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
    source = source_secrets(hook.config)[0]
    current = core.read_namespaced_secret(source, ns)
    body = {"apiVersion": "v1", "kind": "Secret", "type": current.type, "metadata": {
        "name": source, "resourceVersion": current.metadata.resource_version},
        "data": {"password": base64.b64encode(b"rotated").decode()}}
    assert hook.call("PUT", f"{base}/{source}", body) == 403, "it may rewrite a credential"
    assert hook.call("GET", f"/api/v1/namespaces/{ns}/pods") == 403
    assert hook.call("GET", f"/api/v1/namespaces/{ns}/configmaps") == 403
