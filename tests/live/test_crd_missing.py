"""Installing on a cluster without the ECK operator fails early, with our message, and
leaves nothing behind.

The check is real: Helm asks the API server's discovery whether it serves
`elasticsearch.k8s.elastic.co/v1`, and the chart's preflight fails when it does not. On
the local control plane this test deletes the Elasticsearch CRD (the only kind in that
group), so discovery truly stops serving the group, then puts the CRDs back. On a cluster
given by KUBECONFIG, CRDs are never deleted: the test runs there only when the cluster
already lacks the API.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client

from lastack import polling
from lastack.cluster.bringup import install_crds_of
from lastack.cluster.operators import ECK_OPERATOR
from lastack.testing.helm_release import RELEASE, Helm, base_values
from tests.helpers import HELM_VERSIONS
from tests.live.cluster import ECK_GROUP as GROUP
from tests.live.cluster import LiveCluster, serves_eck

CRD = f"elasticsearches.{GROUP}"


@pytest.fixture(scope="module")
def without_eck(live_cluster: LiveCluster, api: client.ApiClient) -> Iterator[None]:
    if not serves_eck(api):
        yield
        return
    if not live_cluster.local:
        pytest.skip(f"this cluster serves {GROUP}/v1 and is not ours: its CRDs stay")
    ext = client.ApiextensionsV1Api(api)
    ext.delete_custom_resource_definition(CRD)

    def gone() -> polling.Probe:
        # A CRD stuck terminating (instances with finalizers) would never leave.
        crd = None
        try:
            crd = ext.read_custom_resource_definition(CRD)
        except client.exceptions.ApiException as err:
            if err.status != 404:
                raise
        stuck = crd and any(c.type == "Terminating" and c.status == "True"
                            and c.reason == "InstanceDeletionFailed"
                            for c in (crd.status.conditions or []))
        if stuck:
            return polling.Probe(failure=f"CRD {CRD} cannot be deleted: {crd.status.conditions}")
        return polling.Probe(done=crd is None and not serves_eck(api),
                           state="CRD still there" if crd else "group still discovered")

    polling.poll(f"removal of {GROUP}/v1", gone, timeout=60)
    try:
        yield
    finally:
        install_crds_of(live_cluster.kubeconfig, [ECK_OPERATOR.crds])
        polling.poll(f"{GROUP}/v1 served again",
                   lambda: polling.Probe(done=serves_eck(api), state="not discovered yet"), 60)


@pytest.mark.parametrize("helm_name", HELM_VERSIONS)
def test_install_without_eck_fails_early(helm_name: str, without_eck: None, namespace: str,
                                         live_cluster: LiveCluster, core: client.CoreV1Api,
                                         tool_env: dict[str, str]) -> None:
    """Non-zero exit, the chart's own sentence about the missing API (not Helm's wording),
    no release recorded, and no object created: the preflight fails while rendering, before
    any hook runs."""
    helm = Helm(helm_name, tool_env)
    proc = helm.install(namespace, base_values(live_cluster.local), check=False)
    assert proc.returncode != 0, proc.stdout
    assert f"{GROUP}/v1" in proc.stderr and "ECK operator" in proc.stderr, proc.stderr
    status = helm.run("status", RELEASE, "-n", namespace, check=False)
    assert status.returncode != 0, "a release was recorded"
    secrets = [s.metadata.name for s in core.list_namespaced_secret(namespace).items]
    config_maps = [c.metadata.name for c in core.list_namespaced_config_map(namespace).items
                   if c.metadata.name != "kube-root-ca.crt"]
    jobs = client.BatchV1Api(core.api_client).list_namespaced_job(namespace).items
    assert not secrets and not config_maps and not jobs, (secrets, config_maps, jobs)
