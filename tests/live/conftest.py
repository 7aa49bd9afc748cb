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
- pytest-helm-charts' fixtures (`kube_cluster`, its namespace factories) work on that same
  cluster: `kube_cluster` is answered here (the plugin's own falls back to `KUBECONFIG`).
- `LA_STACK_LIVE=0` skips the tier; so does a machine that can neither build nor run the
  local control plane (no Go, no openssl), with a reason saying how to get a cluster.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from pytest_helm_charts.clusters import ExistingCluster
from pytest_helm_charts.fixtures import ENV_VAR_KUBE_CONFIG, get_cmd_line_option_name_from_env_var
from pytest_helm_charts.k8s.fixtures import NamespaceFactoryFunc

from lastack.cluster import cluster_target, operators
from lastack.cluster import controlplane as cluster
from lastack.cluster.kwok import NODE_LABEL
from lastack.cluster.state import ClusterError
from lastack.tools.helm_env import isolated_helm_env
from lastack.tools.toolchain import ToolError
from tests.live.cluster import (
    ECK_GROUP,
    ECK_OPERATOR_MARK,
    NAMESPACE_LABELS,
    LiveCluster,
    eck_operator_registered,
    local_unavailable,
    namespace_name,
    serves_eck,
)

LIVE_DIR = Path(__file__).parent
# pytest-helm-charts' option naming the cluster (`--kubeconfig`), as the plugin spells it.
KUBECONFIG_OPTION = get_cmd_line_option_name_from_env_var(ENV_VAR_KUBE_CONFIG)
HOW_TO_GET_ONE = (f"name a cluster with --kubeconfig or {cluster_target.ENV_VAR} (kind, k3d), "
                  "or install Go >= 1.25 and openssl so the local control plane can be built "
                  "(make cluster-up)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if LIVE_DIR in Path(item.fspath).parents:
            item.add_marker(pytest.mark.live)


@pytest.fixture(scope="session")
def live_cluster(pytestconfig: pytest.Config) -> Iterator[LiveCluster]:
    if os.environ.get("LA_STACK_LIVE") == "0":
        pytest.skip("live tier disabled by LA_STACK_LIVE=0")
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    external = cluster_target.explicit_kubeconfig(
        pytestconfig.getoption(KUBECONFIG_OPTION, None), os.environ)
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
                label_selector=f"{NODE_LABEL}=true").items)
        except client.exceptions.ApiException:
            ours = False  # may not list Nodes: not our cluster anyway
        yield LiveCluster(external, local=ours, server=api.configuration.host)
        return
    reason = local_unavailable()
    if reason:
        pytest.skip(f"no cluster: {reason}; {HOW_TO_GET_ONE}")
    try:
        # Progress lines (a first build takes minutes) go to the terminal, not the capture.
        with capture.global_and_fixture_disabled():
            session = cluster.session()
            state = session.__enter__()
    except (ClusterError, ToolError) as err:
        pytest.fail(f"the local control plane did not start: {err}")
    try:
        yield LiveCluster(Path(state.kubeconfig), local=True, server=state.server)
    finally:
        session.__exit__(None, None, None)


@pytest.fixture(scope="session")
def kube_cluster(live_cluster: LiveCluster) -> Iterator[ExistingCluster]:
    """pytest-helm-charts' cluster (its namespace factories use it) on the cluster chosen
    above; the plugin's own takes `--kubeconfig`, else an ambient `KUBECONFIG`."""
    kube = ExistingCluster(str(live_cluster.kubeconfig))
    kube.create()
    yield kube
    kube.destroy()


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
    yield isolated_helm_env(home, live_cluster.kubeconfig)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def eck_operator(api: client.ApiClient, core: client.CoreV1Api) -> None:
    """Tests of what ECK makes of our Elasticsearch need an operator that reconciles it: the
    local control plane runs one; a named cluster must have one installed."""
    if not serves_eck(api) or not eck_operator_registered(core):
        pytest.skip(f"no ECK operator runs in this cluster (no {ECK_OPERATOR_MARK} ConfigMap): "
                    "install it (helm install elastic-operator eck-operator --repo "
                    "https://helm.elastic.co -n elastic-system --create-namespace) or run on "
                    "the local control plane, which starts one")


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


@pytest.fixture
def namespace(namespace_factory_function_scope: NamespaceFactoryFunc) -> str:
    """A fresh namespace enforcing Pod Security `restricted`; pytest-helm-charts deletes it
    after the test and waits until it is gone."""
    made = namespace_factory_function_scope(namespace_name(),
                                            extra_metadata={"labels": NAMESPACE_LABELS})
    return made.name
