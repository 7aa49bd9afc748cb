"""The live tier's cluster: which one the session uses, what it serves, and the namespaces
the tests make in it (the fixtures are in conftest.py)."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client, config

from lastack.tools import controlplane_build
from lastack.tools.toolchain import HELMS, KUBECTL

ECK_GROUP = "elasticsearch.k8s.elastic.co"
# The ConfigMap every ECK operator writes into its namespace when it starts.
ECK_OPERATOR_MARK = "elastic-operator-uuid"
# Our own Pods must pass Pod Security `restricted` in every namespace a test makes.
NAMESPACE_LABELS = {
    **{f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")},
    "app.kubernetes.io/part-of": "la-stack-live-tests",
}


@dataclass
class LiveCluster:
    kubeconfig: Path
    local: bool  # our own control plane (kwok nodes): hook runner, CRDs ours to remove
    server: str

    def api_client(self) -> client.ApiClient:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig),
                                client_configuration=configuration)
        # Recorders watch ten kinds at once on one client.
        configuration.connection_pool_maxsize = 32
        return client.ApiClient(configuration)


def local_unavailable() -> str | None:
    """Why the local control plane cannot run here, or None."""
    builds = controlplane_build.BUILDS + controlplane_build.OPERATORS
    built = all(controlplane_build.is_current(b) for b in builds)
    if not built and shutil.which("go") is None:
        return "Go is not installed, so the local control plane cannot be built"
    if shutil.which("openssl") is None:
        return "openssl is not installed (it makes the local control plane's certificates)"
    missing = [t.name for t in (*HELMS.values(), KUBECTL) if not t.binary.exists()]
    if missing:
        return f"{', '.join(missing)} not installed: run `make setup`"
    return None


def serves_eck(api: client.ApiClient) -> bool:
    groups = client.ApisApi(api).get_api_versions().groups
    return any(g.name == ECK_GROUP and any(v.version == "v1" for v in g.versions)
               for g in groups)


def eck_operator_registered(core: client.CoreV1Api) -> bool:
    marks = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.name={ECK_OPERATOR_MARK}").items
    return bool(marks)


def namespace_name(prefix: str = "la-stack-live") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def create_namespace(core: client.CoreV1Api, prefix: str = "la-stack-live",
                     exact: bool = False) -> str:
    """A fresh namespace enforcing Pod Security `restricted`, for a fixture wider than one
    test. Named `prefix` itself when `exact` (an operator watches it by name), else unique."""
    name = prefix if exact else namespace_name(prefix)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels=NAMESPACE_LABELS)))
    return name


def delete_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.delete_namespace(name)
    except client.exceptions.ApiException as err:
        if err.status != 404:
            raise
