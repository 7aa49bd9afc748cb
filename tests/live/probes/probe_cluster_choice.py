"""Run only by `test_cluster_choice.py`, in a child pytest (its name keeps it out of the
normal collection): reports which cluster the live tier chose."""

from __future__ import annotations

import json

from tests.live.conftest import LiveCluster

MARK = "CLUSTER-CHOICE "


def test_report_cluster_choice(live_cluster: LiveCluster) -> None:
    print(MARK + json.dumps({"server": live_cluster.server, "local": live_cluster.local,
                             "kubeconfig": str(live_cluster.kubeconfig)}))
