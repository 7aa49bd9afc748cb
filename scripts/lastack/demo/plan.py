"""The demo's plan: which cluster, which operators, which install commands, in order.

Computed before anything changes, and printed as it is by `make demo --dry-run`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lastack.paths import CHART_DIR, TOOLS_DIR, VALUES_DIR, chart_cache_dir
from lastack.tools.controlplane_build import (
    CNPG_MANIFEST,
    CNPG_VERSION,
    ECK_OPERATOR_REPO,
    ECK_VERSION,
)

CLUSTER_NAME = "la-stack-demo"
NAMESPACE = "la-stack"
RELEASE = "la-stack"
OPERATOR_NAMESPACE = "elastic-system"
OPERATOR_CHART = "eck-operator"
OPERATOR_VERSION = ECK_VERSION  # the operator chart shares its version
OPERATOR_REPO = ECK_OPERATOR_REPO
# CloudNativePG runs Superset's metastore; its release manifest carries CRDs and webhooks.
CNPG_NAMESPACE = "cnpg-system"
# The web server Deployment the Superset operator creates from the chart's resource.
SUPERSET_WEB = "la-stack-dashboards-web-server"
STATE_DIR = TOOLS_DIR / "demo"
DEMO_STATEMENTS = 2000


class DemoError(RuntimeError):
    """A step cannot finish; the message is the one sentence the user reads."""


@dataclass
class Step:
    title: str
    command: list[str] | None = None

    def describe(self) -> str:
        return f"{self.title}\n    $ {' '.join(self.command)}" if self.command else self.title


@dataclass
class Plan:
    cluster: str  # "existing", "kind" or "k3d"
    context: str | None
    steps: list[Step] = field(default_factory=list)


def progress(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def current_context(kubectl: str, env: dict[str, str]) -> str | None:
    """The KUBECONFIG's current context, when one is configured and set."""
    proc = subprocess.run([kubectl, "config", "current-context"], capture_output=True,
                          text=True, env=env, check=False)
    return proc.stdout.strip() or None if proc.returncode == 0 else None


def choose_cluster(kubectl: str, env: dict[str, str],
                   which: Callable[[str], str | None] = shutil.which) -> tuple[str, str | None]:
    """('existing', ctx) when KUBECONFIG names a cluster, else ('kind'|'k3d', None)."""
    if env.get("KUBECONFIG") or Path(env.get("HOME", "~"), ".kube", "config").exists():
        context = current_context(kubectl, env)
        if context:
            return "existing", context
    for tool in ("kind", "k3d"):
        if which(tool):
            return tool, None
    raise DemoError("no cluster to use: KUBECONFIG has no current context and neither kind nor "
                    "k3d is installed (install one: https://kind.sigs.k8s.io or https://k3d.io).")


def create_cluster_command(tool: str) -> list[str]:
    if tool == "kind":
        return ["kind", "create", "cluster", "--name", CLUSTER_NAME, "--wait", "120s"]
    return ["k3d", "cluster", "create", CLUSTER_NAME, "--wait"]


def delete_cluster_command(tool: str) -> list[str]:
    if tool == "kind":
        return ["kind", "delete", "cluster", "--name", CLUSTER_NAME]
    return ["k3d", "cluster", "delete", CLUSTER_NAME]


def operator_chart() -> list[str]:
    """The pinned operator chart: from the local chart cache when it has it (offline)."""
    cached = chart_cache_dir() / f"{OPERATOR_CHART}-{OPERATOR_VERSION}.tgz"
    if cached.exists():
        return [str(cached)]
    return [OPERATOR_CHART, "--repo", OPERATOR_REPO, "--version", OPERATOR_VERSION]


def helm_install_operator(helm: str, install_crds: bool = True) -> list[str]:
    command = [helm, "upgrade", "--install", "elastic-operator", *operator_chart(),
               "--namespace", OPERATOR_NAMESPACE, "--create-namespace", "--wait",
               "--timeout", "5m"]
    return command if install_crds else [*command, "--set", "installCRDs=false"]


def cnpg_manifest() -> str:
    """The pinned CloudNativePG manifest: from the local chart cache when it has it (offline;
    the air-gapped bundle's `operators/` holds it under the same name)."""
    cached = chart_cache_dir() / f"cnpg-{CNPG_VERSION}.yaml"
    return str(cached) if cached.exists() else CNPG_MANIFEST


def install_cnpg_commands(kubectl: str) -> list[list[str]]:
    """Apply the pinned CloudNativePG release (server-side: its CRDs are large), then wait."""
    return [[kubectl, "apply", "--server-side", "--force-conflicts", "-f", cnpg_manifest()],
            [kubectl, "-n", CNPG_NAMESPACE, "rollout", "status",
             "deployment/cnpg-controller-manager", "--timeout=5m"]]


def helm_install_stack(helm: str, chart: Path, values: Path,
                       extra_values: Sequence[Path] = ()) -> list[str]:
    # Helm 4's default wait strategy waits for hooks only; the demo waits itself, naming
    # each component, so a slow image pull reads as progress, not as a hang.
    # A re-run is a Helm 4 server-side upgrade, which the pinned ECK operator's own writes to the
    # Elasticsearch make conflict (elastic/cloud-on-k8s#8975) unless forced.
    command = [helm, "upgrade", "--install", RELEASE, str(chart), "--namespace", NAMESPACE,
               "--create-namespace", "--values", str(values), "--timeout", "20m",
               "--force-conflicts"]
    for extra in extra_values:
        command += ["--values", str(extra)]
    return command


def build_plan(env: dict[str, str], kubectl: str, helm: str,
               which: Callable[[str], str | None] = shutil.which,
               extra_values: Sequence[Path] = ()) -> Plan:
    tool, context = choose_cluster(kubectl, env, which)
    plan = Plan(cluster=tool, context=context)
    if tool == "existing":
        plan.steps.append(Step(f"use the current cluster context {context!r}"))
    else:
        plan.steps.append(Step(f"create (or reuse) the {tool} cluster {CLUSTER_NAME!r}",
                               create_cluster_command(tool)))
    plan.steps.append(Step(f"install the ECK operator {OPERATOR_VERSION} and wait for it",
                           helm_install_operator(helm)))
    apply_cnpg, wait_cnpg = install_cnpg_commands(kubectl)
    plan.steps.append(Step(f"install the CloudNativePG operator {CNPG_VERSION}", apply_cnpg))
    plan.steps.append(Step("wait for the CloudNativePG operator", wait_cnpg))
    plan.steps.append(Step("vendor the subcharts (registries, else the local chart cache)",
                           [sys.executable, "-m", "lastack", "deps"]))
    plan.steps.append(Step("install la-stack with values/demo.yaml",
                           helm_install_stack(helm, CHART_DIR, VALUES_DIR / "demo.yaml",
                                              extra_values)))
    plan.steps.append(Step("wait for Elasticsearch, Ralph, Moodle and Superset, naming each"))
    plan.steps.append(Step(f"load {DEMO_STATEMENTS} generated xAPI statements through Ralph"))
    plan.steps.append(Step("print the URLs and where each credential is",
                           [helm, "get", "notes", RELEASE, "--namespace", NAMESPACE]))
    return plan
