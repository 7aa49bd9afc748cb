"""Helm and kubectl against a live cluster, as the live tier and `make bench` run them."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lastack.chart.render import DEFAULT_API_VERSIONS, effective_chart_dir
from lastack.testing.hookrunner import hold_values
from lastack.tools.toolchain import HELMS, KUBECTL, KUBERNETES_VERSION, require

RELEASE = "la-stack"
HELM_TIMEOUT = "4m"
# Helm 3's --wait and Helm 4's kstatus watcher (Helm 4's bare --wait means watcher too;
# spelled out so the strategy under test is explicit).
WAIT_FLAGS = {"helm3": ("--wait",), "helm4": ("--wait=watcher",)}
# Helm 4 applies server-side, and the pinned ECK operator's full-object writes of the
# Elasticsearch claim `.spec.nodeSets` for `elastic-operator` (elastic/cloud-on-k8s#8975):
# without forcing, every
# Helm 4 upgrade after the operator's first reconcile is refused with a conflict. The chart
# README tells users the same.
CHANGE_FLAGS = {"helm3": (), "helm4": ("--force-conflicts",)}
HOOK = "helm.sh/hook"
HOOK_WEIGHT = "helm.sh/hook-weight"


# What `helm template` is told the cluster serves, as discovery tells `helm install`: the
# operator prerequisites (ECK, CloudNativePG).
API_VERSION_ARGS = tuple(a for api in DEFAULT_API_VERSIONS for a in ("--api-versions", api))


def chart_dir() -> Path:
    """The chart Helm installs: charts/la-stack with only the subcharts that are present."""
    return effective_chart_dir()


def base_values(local: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        # kwok has no load balancer, so Helm's wait would never see an address; a user's
        # kind/k3d would not give one either without an LB implementation.
        "moodle": {"service": {"type": "ClusterIP"}},
    }
    if local:
        values.update(hold_values())
    return values


@dataclass
class Helm:
    """One Helm binary (helm3/helm4) against the live cluster."""

    name: str
    env: dict[str, str]

    def run(self, *args: str, values: dict[str, Any] | None = None, timeout: float = 360,
            check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(require(HELMS[self.name])), *args]
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="la-stack-values-") as f:
            if values is not None:
                yaml.safe_dump(values, f)
                f.flush()
                cmd += ["--values", f.name]
            proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env,
                                  timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    @property
    def wait(self) -> tuple[str, ...]:
        return WAIT_FLAGS[self.name]

    @property
    def change(self) -> tuple[str, ...]:
        """Flags of the commands that change a release's objects (upgrade, rollback)."""
        return CHANGE_FLAGS[self.name]

    def install(self, namespace: str, values: dict[str, Any],
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("install", RELEASE, str(chart_dir()), "-n", namespace, *self.wait,
                        "--timeout", HELM_TIMEOUT, values=values, check=check)

    def upgrade(self, namespace: str, values: dict[str, Any]) -> None:
        self.run("upgrade", RELEASE, str(chart_dir()), "-n", namespace, *self.wait,
                 *self.change, "--timeout", HELM_TIMEOUT, values=values)

    def template(self, namespace: str, values: dict[str, Any],
                 extra: Sequence[str] = ()) -> str:
        return self.run("template", RELEASE, str(chart_dir()), "-n", namespace,
                        "--kube-version", KUBERNETES_VERSION, *extra, values=values).stdout


def kubectl(env: dict[str, str], *args: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [str(require(KUBECTL)), *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, env=env,
                          timeout=180, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def hook_objects(manifest: str, phase: str) -> list[dict[str, Any]]:
    """Objects of `helm get hooks` / `helm template` output that run in `phase`."""
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    return [d for d in docs
            if phase in ((d["metadata"].get("annotations") or {}).get(HOOK, "")).split(",")]
