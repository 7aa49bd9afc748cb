"""kwok, the kubelet of the fake Nodes: its Stage set (kwok-stages.yaml) and the Nodes."""

from __future__ import annotations

from importlib import resources

import yaml

from lastack.tools.toolchain import KUBERNETES_VERSION

NODE_LABEL = "la-stack.io/kwok-node"
# Pods that select this node label are held Running for a test-side hook runner instead of
# being completed by kwok (see tests/live); every fake Node carries it.
HOOK_RUNNER_LABEL = "la-stack.io/hook-runner"


def kwok_stages() -> str:
    text = resources.files(__package__).joinpath("kwok-stages.yaml").read_text()
    docs = list(yaml.safe_load_all(
        text.replace("__KUBE_VERSION__", f"v{KUBERNETES_VERSION}")
        .replace("__HOOK_RUNNER_LABEL__", HOOK_RUNNER_LABEL)))
    by_name = {d["metadata"]["name"]: d for d in docs}
    # `helm test` Pods end exactly like Job Pods.
    by_name["la-stack-helm-test-pod-succeeded"]["spec"]["next"]["statusTemplate"] = (
        by_name["la-stack-job-pod-succeeded"]["spec"]["next"]["statusTemplate"])
    return yaml.safe_dump_all(docs, sort_keys=False)


def node_manifest(name: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/worker": "",
            NODE_LABEL: "true", HOOK_RUNNER_LABEL: "local"}},
        "spec": {},
    }
