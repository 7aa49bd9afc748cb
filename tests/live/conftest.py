"""The live tier: the chart on a real Kubernetes API.

Which cluster:
- `--kubeconfig PATH` (pytest-helm-charts' option) or `LA_STACK_KUBECONFIG`: that
  cluster, e.g. kind/k3d in a user's CI. Its server URL is printed first, and a server
  that is not on loopback is refused unless `--allow-remote-cluster` is given. Tests only
  touch namespaces they create (`la-stack-live-*`). An ambient `KUBECONFIG` is never used.
- otherwise the local control plane (`lastack.cluster`), started for the session and
  stopped at its end, with the real ECK operator running against it (`lastack.cluster.operators`);
  its binaries are built on first use (minutes, then cached). A cluster named with
  `--kubeconfig` gets no operator from the tests: it runs the one its owner installed.
- `LA_STACK_LIVE=0` skips the tier; so does a machine that can neither build nor run the
  local control plane (no Go, no openssl), with a reason saying how to get a cluster.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from lastack.cluster import cluster_target, operators
from lastack.cluster import controlplane as cluster
from lastack.tools import controlplane_build
from lastack.tools.toolchain import HELMS, KUBECTL, ToolError

LIVE_DIR = Path(__file__).parent
HOW_TO_GET_ONE = (f"name a cluster with --kubeconfig or {cluster_target.ENV_VAR} (kind, k3d), "
                  "or install Go >= 1.25 and openssl so the local control plane can be built "
                  "(make cluster-up)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if LIVE_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.live)


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


def _local_unavailable() -> str | None:
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


@pytest.fixture(scope="session")
def live_cluster(pytestconfig: pytest.Config) -> Iterator[LiveCluster]:
    if os.environ.get("LA_STACK_LIVE") == "0":
        pytest.skip("live tier disabled by LA_STACK_LIVE=0")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    external = cluster_target.explicit_kubeconfig(pytestconfig.getoption("kubeconfig", None),
                                                  os.environ)
    if external:
        try:
            server = cluster_target.checked_server(
                external, pytestconfig.getoption("allow_remote_cluster", False))
        except cluster_target.ClusterTargetError as err:
            pytest.fail(str(err), pytrace=False)
        with capture.global_and_fixture_disabled():
            print(f"\n[live] installing test releases into {server} (kubeconfig {external})",
                  flush=True)
        api = config.new_client_from_config(config_file=str(external))
        # `make cluster-up`'s cluster, named explicitly, is still ours (kwok nodes).
        try:
            ours = bool(client.CoreV1Api(api).list_node(
                label_selector=f"{cluster.NODE_LABEL}=true").items)
        except client.exceptions.ApiException:
            ours = False  # may not list Nodes: not our cluster anyway
        yield LiveCluster(external, local=ours, server=api.configuration.host)
        return
    reason = _local_unavailable()
    if reason:
        pytest.skip(f"no cluster: {reason}; {HOW_TO_GET_ONE}")
    try:
        # Progress lines (a first build takes minutes) go to the terminal, not the capture.
        with capture.global_and_fixture_disabled():
            session = cluster.session()
            state = session.__enter__()
    except (cluster.ClusterError, ToolError) as err:
        pytest.fail(f"the local control plane did not start: {err}")
    try:
        yield LiveCluster(Path(state.kubeconfig), local=True, server=state.server)
    finally:
        session.__exit__(None, None, None)


@pytest.fixture(scope="session")
def kube_config(live_cluster: LiveCluster) -> str:
    """pytest-helm-charts' kubeconfig fixture, answered by our cluster choice (its own
    falls back to an ambient KUBECONFIG)."""
    return str(live_cluster.kubeconfig)


@pytest.fixture(scope="session")
def api(live_cluster: LiveCluster) -> client.ApiClient:
    return live_cluster.api_client()


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def apps(api: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api)


@pytest.fixture(scope="session")
def batch(api: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api)


@pytest.fixture(scope="session")
def tool_env(live_cluster: LiveCluster) -> Iterator[dict[str, str]]:
    """Environment for helm/kubectl: the chosen cluster, and private caches and config so
    neither the user's Helm repositories nor their discovery cache take part."""
    home = Path(tempfile.mkdtemp(prefix="la-stack-live-home-"))
    env = dict(os.environ, KUBECONFIG=str(live_cluster.kubeconfig),
               KUBECACHEDIR=str(home / "kube-cache"), HELM_CACHE_HOME=str(home / "helm-cache"),
               HELM_CONFIG_HOME=str(home / "helm-config"), HELM_DATA_HOME=str(home / "helm-data"))
    yield env
    shutil.rmtree(home, ignore_errors=True)


ECK_GROUP = "elasticsearch.k8s.elastic.co"


def serves_eck(api: client.ApiClient) -> bool:
    groups = client.ApisApi(api).get_api_versions().groups
    return any(g.name == ECK_GROUP and any(v.version == "v1" for v in g.versions)
               for g in groups)


# The ConfigMap every ECK operator writes into its namespace when it starts.
ECK_OPERATOR_MARK = "elastic-operator-uuid"


def eck_operator_registered(core: client.CoreV1Api) -> bool:
    marks = core.list_config_map_for_all_namespaces(
        field_selector=f"metadata.name={ECK_OPERATOR_MARK}").items
    return bool(marks)


@pytest.fixture(scope="session")
def eck_operator(api: client.ApiClient, core: client.CoreV1Api) -> None:
    """Tests of what ECK makes of our Elasticsearch need an operator that reconciles it: the
    local control plane runs one; a named cluster must have one installed."""
    if not serves_eck(api) or not eck_operator_registered(core):
        pytest.skip(f"no ECK operator runs in this cluster (no {ECK_OPERATOR_MARK} ConfigMap): "
                    "install it (helm install elastic-operator eck-operator --repo "
                    "https://helm.elastic.co -n elastic-system --create-namespace) or run on "
                    "the local control plane, which starts one")


CNPG_GROUP = "postgresql.cnpg.io"


@pytest.fixture(scope="session")
def cnpg_operator(live_cluster: LiveCluster, api: client.ApiClient) -> None:
    """Tests of what CloudNativePG makes of our `Cluster` need its operator: the local
    control plane starts one where it can; a named cluster must have one installed."""
    if live_cluster.local:
        reason = operators.CNPG_OPERATOR.unavailable()
        if reason:
            pytest.skip(f"the local control plane cannot start CloudNativePG here: {reason}")
        return
    deployments = client.AppsV1Api(api).list_deployment_for_all_namespaces(
        label_selector="app.kubernetes.io/name=cloudnative-pg").items
    if not deployments:
        pytest.skip("no CloudNativePG operator runs in this cluster: install it (helm install "
                    "cnpg cnpg/cloudnative-pg -n cnpg-system --create-namespace) or run on "
                    "the local control plane, which starts one")


@pytest.fixture
def eck_served(live_cluster: LiveCluster, api: client.ApiClient) -> None:
    """The stack's Elasticsearch needs the ECK operator (a prerequisite, not a dependency)."""
    if not serves_eck(api):
        pytest.skip(f"the cluster does not serve {ECK_GROUP}/v1: install the ECK operator "
                    "first (helm install elastic-operator eck-operator --repo "
                    "https://helm.elastic.co -n elastic-system --create-namespace)")


def create_namespace(core: client.CoreV1Api, prefix: str = "la-stack-live",
                     exact: bool = False) -> str:
    """A fresh namespace enforcing Pod Security `restricted`: our own Pods must pass it.
    Named `prefix` itself when `exact` (an operator watches it by name), else made unique."""
    name = prefix if exact else f"{prefix}-{uuid.uuid4().hex[:6]}"
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted"
              for mode in ("enforce", "warn", "audit")}
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={**labels, "app.kubernetes.io/part-of": "la-stack-live-tests"})))
    return name


def delete_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.delete_namespace(name)
    except client.exceptions.ApiException as err:
        if err.status != 404:
            raise


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    name = create_namespace(core)
    yield name
    delete_namespace(core, name)
