"""The operators the chart needs, as local processes against the local control plane.

The chart's Elasticsearch is a custom resource that only the ECK operator turns into
Services, certificates, file-realm users, StatefulSets and a PodDisruptionBudget. The
live tier runs the real operator, built from its pinned module (`controlplane_build`), so
the tests observe what it makes of the rendered chart instead of assuming it.

How it runs, and why:
- all namespaces (no `--namespaces`): the tests create a namespace per release, and the
  eck-operator chart users install watches all namespaces by default too;
- its own client certificate (`CN=la-stack-eck-operator`) bound to `cluster-admin`: the
  operator's chart grants a ClusterRole of its own, which this project does not ship;
- no webhook server, no leader election, no telemetry; the metrics server on loopback
  (`--metrics-port=0` alone still binds a random port on every interface in 3.5.0);
- it cannot reach Elasticsearch (no container runs on kwok, and the Service names do not
  resolve outside a cluster): what needs a live Elasticsearch stays undone, the rest is
  reconciled as in a cluster.

CloudNativePG's manager (the pinned release, `controller`) runs too, for the chart's metastore
`Cluster`. It always serves its admission webhooks on every interface (`--webhook-port`
sets the port only), which no process of the live tier may do: it runs in a network
namespace of its own (`private_net`), where every interface is a private loopback, with
the kube-apiserver's port relayed in. `WEBHOOK_CERT_DIR` points at a self-signed pair
made per run, which makes it skip managing webhook configurations and their PKI (the
live tier registers no CNPG webhook: admission is the apiserver's CRD schema). That needs
root; elsewhere CloudNativePG is not started and the tests that need it say so.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lastack.cluster import private_net
from lastack.tools.controlplane_build import CNPG, ECK, Build

# The operators' own namespace (their ConfigMaps, events); not one the tests create.
OPERATOR_NAMESPACE = "la-stack-operators"


@dataclass(frozen=True)
class Operator:
    name: str  # the process name in the cluster state
    build: Build
    user: str  # the CN of its client certificate
    argv: Callable[[Path, str], list[str]]  # from its binary and the apiserver's URL
    # Fragments that appear together on one log line once its controllers run.
    ready_line: tuple[str, ...]
    crds: str  # glob of its CRD manifests in the shared CRD folder
    # Environment beside KUBECONFIG, from a directory of its own for this run.
    env: Callable[[Path], dict[str, str]] = field(default=lambda _workdir: {})
    # Files it expects in its working directory (its own directory), from its binary.
    prepare: Callable[[Path, Path], None] = field(default=lambda _binary, _own: None)
    # The certificate and key file names it serves with, from its own directory.
    serving_files: tuple[str, str] | None = None
    # None when it can run on this machine, else why not.
    unavailable: Callable[[], str | None] = field(default=lambda: None)

    @property
    def binary(self) -> str:
        return self.build.binaries[0]


def _eck_argv(binary: Path, _server: str) -> list[str]:
    return [
        str(binary), "manager", f"--operator-namespace={OPERATOR_NAMESPACE}",
        "--enable-leader-election=false", "--enable-webhook=false",
        "--manage-webhook-certs=false", "--metrics-port=0", "--metrics-host=127.0.0.1",
        "--disable-telemetry",
    ]


ECK_OPERATOR = Operator(
    name="elastic-operator",
    build=ECK,
    user="la-stack-eck-operator",
    argv=_eck_argv,
    ready_line=("Starting workers", "elasticsearch-controller"),
    crds="eck-operator-*crds*.yaml",
)


def _cnpg_argv(binary: Path, server: str) -> list[str]:
    port = urlsplit(server).port
    return [
        sys.executable, "-m", "lastack.cluster.private_net", f"--forward={port}", "--",
        str(binary), "controller", "--leader-elect=false", "--metrics-bind-address=0",
    ]


# On kwok no instance answers the operator, so its Clusters never become Ready, and Helm 4's
# `--wait` (kstatus) would wait for them until its timeout: CloudNativePG reconciles only
# these namespaces, which the tests of what it makes use; every other release's Cluster is
# left unreconciled, as before an operator ran.
CNPG_NAMESPACES = tuple(f"la-stack-cnpg-{i}" for i in range(1, 5))


def _cnpg_env(own: Path) -> dict[str, str]:
    return {"OPERATOR_NAMESPACE": OPERATOR_NAMESPACE, "WEBHOOK_CERT_DIR": str(own),
            "WATCH_NAMESPACE": ",".join(CNPG_NAMESPACES)}


def _cnpg_prepare(binary: Path, own: Path) -> None:
    # The manager copies itself into each instance Pod and looks for its per-architecture
    # binaries at ./operator/manager_<goarch>; without one it refuses to reconcile a Cluster.
    goarch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    (own / "operator").mkdir(exist_ok=True)
    link = own / "operator" / f"manager_{goarch}"
    if not link.exists():
        link.symlink_to(binary)


CNPG_OPERATOR = Operator(
    name="cnpg-manager",
    build=CNPG,
    user="la-stack-cnpg-operator",
    argv=_cnpg_argv,
    ready_line=("Starting workers", '"controller":"cluster"'),
    crds="cloudnative-pg-*crds*.yaml",
    env=_cnpg_env,
    prepare=_cnpg_prepare,
    serving_files=("apiserver.crt", "apiserver.key"),  # the names WEBHOOK_CERT_DIR implies
    unavailable=private_net.available,
)
OPERATORS: tuple[Operator, ...] = (ECK_OPERATOR, CNPG_OPERATOR)
# CRDs the chart's resources need though no operator of theirs runs here (the Superset
# operator's module is not served by the Go proxy): the apiserver still enforces them. The
# Superset CRD also ships in the operator subchart's crds/; installed here, a render without
# that subchart (an empty chart cache) still has its resource admitted. Helm leaves an
# existing CRD alone.
SCHEMA_ONLY_CRDS: tuple[str, ...] = ("superset-operator-*crds*.yaml",)


def runnable() -> tuple[Operator, ...]:
    return tuple(op for op in OPERATORS if op.unavailable() is None)


def operator_rbac(operator: Operator) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{operator.user}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "cluster-admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                      "name": operator.user}],
    }


def operator_namespace() -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OPERATOR_NAMESPACE}}


def log_shows_ready(log_text: str, operator: Operator) -> bool:
    return any(all(f in line for f in operator.ready_line) for line in log_text.splitlines())
