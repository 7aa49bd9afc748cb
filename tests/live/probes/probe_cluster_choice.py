"""Run only by `test_cluster_choice.py`, in a child pytest (its name keeps it out of the
normal collection): reports which cluster the live tier chose, and which one
pytest-helm-charts' fixtures were given."""

from __future__ import annotations

import json

from pytest_helm_charts.clusters import Cluster

from tests.live.cluster import LiveCluster

MARK = "CLUSTER-CHOICE "


def test_report_cluster_choice(live_cluster: LiveCluster, kube_cluster: Cluster) -> None:
    print(MARK + json.dumps({"server": live_cluster.server, "local": live_cluster.local,
                             "kubeconfig": str(live_cluster.kubeconfig),
                             "plugin_kubeconfig": kube_cluster.kube_config_path,
                             "plugin_server": kube_cluster.kube_client.url}))
