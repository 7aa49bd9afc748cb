"""A real Kubernetes control plane on loopback, for the live tier and `make cluster-up`.

etcd, kube-apiserver, kube-controller-manager and kube-scheduler run as local processes
(built by `controlplane_build`); kwok plays the kubelet of a few fake Nodes, so Pods are
scheduled and become Running/Ready, and Job Pods and `helm test` Pods succeed, without
any container. The ECK operator runs as a local process too (`operators`), so the chart's
Elasticsearch is reconciled by the real thing. Everything else is real: authentication
with per-run certificates, RBAC and Node authorization, admission (Pod Security included),
the Job, ServiceAccount, garbage-collector and namespace controllers, PersistentVolume
binding.

Every process runs under coreutils `timeout` in its own session, so it is bounded even if
nobody calls `down`; `down` stops each process group by the id recorded in state.json
(SIGTERM, then SIGKILL after a bound) and removes the run's temporary directory.
"""


from __future__ import annotations

import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lastack.cluster.bringup import bring_up, kubectl
from lastack.cluster.operators import runnable
from lastack.cluster.pki import client_context, https_ok
from lastack.cluster.processes import is_ours, stop_processes
from lastack.cluster.state import KUBECONFIG, STATE_FILE, ClusterError, ClusterState, log
from lastack.tools import controlplane_build
from lastack.tools.toolchain import KUBECTL, ToolError, require

HOSTPATH_PV_ROOT = Path("/tmp/hostpath_pv")  # fixed by the controller-manager's provisioner
DEFAULT_TTL_SECONDS = 4 * 3600


def up(state_file: Path = STATE_FILE, kubeconfig: Path = KUBECONFIG, nodes: int = 2,
       ttl: int = DEFAULT_TTL_SECONDS, install_crds: bool = True) -> ClusterState:
    """Start the control plane, and the operators when the CRDs are installed; returns its
    state (also saved to `state_file`)."""
    existing = ClusterState.load(state_file)
    if existing is not None:
        if healthy(existing):
            log(f"already running at {existing.server} (kubeconfig {existing.kubeconfig})")
            return existing
        log("a previous run left state behind: cleaning it up first")
        down(state_file)
    if shutil.which("openssl") is None:
        raise ClusterError("`openssl` is not on PATH: it makes the per-run certificates")
    builds = controlplane_build.BUILDS + (tuple(op.build for op in runnable())
                                          if install_crds else ())
    binaries = controlplane_build.ensure(builds)
    require(KUBECTL)

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="la-stack-cluster-"))
    pki = workdir / "pki"
    state = ClusterState(server="", kubeconfig=str(kubeconfig), workdir=str(workdir),
                         started=time.time(), ttl_seconds=ttl,
                         nodes=[f"kwok-node-{i}" for i in range(nodes)])
    try:
        bring_up(state, state_file, binaries, workdir, pki, kubeconfig, install_crds, started)
    except BaseException:
        log("start failed: stopping what was started")
        down(state_file, quiet=True)
        raise
    log(f"control plane up in {time.monotonic() - started:.0f} s: "
        f"KUBECONFIG={kubeconfig} (server {state.server})")
    return state


def healthy(state: ClusterState) -> bool:
    if not state.server or not all(is_ours(p) for p in state.processes):
        return False
    if time.time() > state.started + state.ttl_seconds - 60:
        return False  # about to be stopped by its time bound
    pki = Path(state.workdir) / "pki"
    try:
        return https_ok(f"{state.server}/readyz", client_context(pki, "admin"))
    except (OSError, ssl.SSLError):
        return False


def running(state_file: Path = STATE_FILE) -> ClusterState | None:
    state = ClusterState.load(state_file)
    return state if state is not None and healthy(state) else None


def _remove_hostpath_volumes(state: ClusterState) -> None:
    """Remove the provisioner's directories for this cluster's PVs (they outlive it)."""
    kubeconfig = Path(state.kubeconfig)
    if not kubeconfig.exists():
        return
    try:
        pvs = json.loads(kubectl(kubeconfig, "get", "pv", "-o", "json", timeout=20))
    except (ClusterError, subprocess.TimeoutExpired, ValueError):
        return
    for pv in pvs.get("items", []):
        path = Path(pv["spec"].get("hostPath", {}).get("path", "/"))
        if path.parent == HOSTPATH_PV_ROOT:
            shutil.rmtree(path, ignore_errors=True)


def down(state_file: Path = STATE_FILE, quiet: bool = False) -> bool:
    """Stop the cluster recorded in `state_file`; False when there was none."""
    state = ClusterState.load(state_file)
    if state is None:
        if not quiet:
            log(f"nothing to stop ({state_file} absent)")
        return False
    if state.processes and any(p.name == "kube-apiserver" and is_ours(p)
                               for p in state.processes):
        _remove_hostpath_volumes(state)
    # Clients first (together), then the API server, then etcd: nobody logs a lost server.
    tiers = [[p for p in state.processes if p.name not in ("kube-apiserver", "etcd")],
             [p for p in state.processes if p.name == "kube-apiserver"],
             [p for p in state.processes if p.name == "etcd"]]
    for tier in tiers:
        stop_processes(tier)
        if not quiet and tier:
            log(f"stopped {', '.join(f'{p.name} (pid {p.pid})' for p in tier)}")
    workdir = Path(state.workdir)
    if workdir.name.startswith("la-stack-cluster-"):
        shutil.rmtree(workdir, ignore_errors=True)
    kubeconfig = Path(state.kubeconfig)
    if kubeconfig.parent == state_file.parent:
        kubeconfig.unlink(missing_ok=True)
        shutil.rmtree(kubeconfig.parent / ".kube-cache", ignore_errors=True)
    state_file.unlink(missing_ok=True)
    if not quiet:
        log("control plane stopped, its data removed")
    return True


@contextmanager
def session(ttl: int = 2 * 3600) -> Iterator[ClusterState]:
    """A private control plane for one test session, in its own state directory."""
    state_dir = Path(tempfile.mkdtemp(prefix="la-stack-live-"))
    state_file, kubeconfig = state_dir / "state.json", state_dir / "kubeconfig"
    try:
        yield up(state_file, kubeconfig, ttl=ttl)
    finally:
        down(state_file, quiet=True)
        shutil.rmtree(state_dir, ignore_errors=True)


# --------------------------------------------------------------------------- CLI


def cluster_up(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack cluster-up")
    parser.add_argument("--nodes", type=int, default=2, help="fake kwok Nodes (1-3)")
    parser.add_argument("--ttl", type=int, default=int(os.environ.get(
        "LA_STACK_CLUSTER_TTL", DEFAULT_TTL_SECONDS)), help="seconds before it stops itself")
    opts = parser.parse_args(args)
    try:
        state = up(nodes=max(1, min(opts.nodes, 3)), ttl=opts.ttl)
    except (ClusterError, ToolError) as err:
        print(f"cluster-up: {err}", file=sys.stderr)
        return 1
    print(f"export KUBECONFIG={state.kubeconfig}")
    # The live tier ignores an ambient KUBECONFIG: this names the cluster for it.
    print(f"export LA_STACK_KUBECONFIG={state.kubeconfig}")
    return 0


def cluster_down(args: list[str]) -> int:
    argparse.ArgumentParser(prog="lastack cluster-down").parse_args(args)
    down()
    return 0
