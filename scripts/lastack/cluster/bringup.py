"""Bringing the control plane up, process by process, each waited for until it is ready:
etcd, kube-apiserver, controller-manager, scheduler, kwok, then the CRDs and operators."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from lastack.cluster.kwok import NODE_LABEL, kwok_stages, node_manifest
from lastack.cluster.operators import (
    OPERATORS,
    SCHEMA_ONLY_CRDS,
    Operator,
    log_shows_ready,
    operator_namespace,
    operator_rbac,
    runnable,
)
from lastack.cluster.pki import (
    client_context,
    generate_pki,
    https_ok,
    self_signed_context,
    write_kubeconfig,
)
from lastack.cluster.processes import spawn, stop_process, tail, wait_until
from lastack.cluster.state import ClusterError, ClusterState, Process, log
from lastack.net import free_port
from lastack.paths import crds_dir
from lastack.tools.toolchain import KUBECTL, require

SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
STORAGE_CLASS = "standard"


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None,
            timeout: float = 120) -> str:
    # Discovery cache beside the kubeconfig: not in the user's ~/.kube, gone with `down`.
    env = dict(os.environ, KUBECONFIG=str(kubeconfig),
               KUBECACHEDIR=str(kubeconfig.parent / ".kube-cache"))
    proc = subprocess.run([str(require(KUBECTL)), *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout



def _storage_class() -> dict:
    # The controller-manager's test-only host-path provisioner binds PVCs (directories
    # under /tmp/hostpath_pv), so StatefulSets and PVC-backed Deployments schedule.
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": STORAGE_CLASS, "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
    }


def bring_up(state: ClusterState, state_file: Path, binaries: dict[str, Path],
             workdir: Path, pki: Path, kubeconfig: Path, install_crds: bool,
             started: float) -> None:
    def start(name: str, ports: tuple[str, ...], argv: Callable[[dict[str, int]], list[str]],
              ready: Callable[[dict[str, int]], Callable[[], bool]], timeout: float,
              env: dict[str, str] | None = None,
              cwd: Path | None = None) -> tuple[Process, dict[str, int]]:
        # A port found free can be taken (e.g. as an ephemeral client port) before the
        # server binds it: then start again on fresh ports.
        for attempt in range(3):
            ports_now = {k: free_port() for k in ports}
            process = spawn(name, argv(ports_now), workdir, state.ttl_seconds, env, cwd)
            state.processes.append(process)
            state.save(state_file)  # saved after every start: `down` must see every pid
            try:
                wait_until(name, ready(ports_now), process, timeout, started)
                return process, ports_now
            except ClusterError:
                if attempt == 2 or "address already in use" not in tail(process.log, 50):
                    raise
                stop_process(process)
                state.processes.remove(process)
                state.save(state_file)
                log(f"{name}: a port was taken meanwhile, starting again on others")
        raise AssertionError("unreachable")

    state.save(state_file)
    generate_pki(pki)
    log(f"certificates generated ({time.monotonic() - started:.1f} s)")
    cfg = workdir / "config"
    cfg.mkdir()

    etcd_ctx = client_context(pki, "apiserver-etcd-client")

    def etcd_argv(p: dict[str, int]) -> list[str]:
        shutil.rmtree(workdir / "etcd", ignore_errors=True)  # no half-made member left over
        client_url, peer_url = f"https://127.0.0.1:{p['client']}", f"http://127.0.0.1:{p['peer']}"
        return [
            str(binaries["etcd"]), "--name=la-stack", f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=la-stack={peer_url}", "--initial-cluster-state=new",
            f"--cert-file={pki / 'etcd-server.crt'}", f"--key-file={pki / 'etcd-server.key'}",
            f"--trusted-ca-file={pki / 'ca.crt'}", "--client-cert-auth",
            # Throwaway data: skipping fsync makes a test cluster several times faster.
            "--unsafe-no-fsync", "--log-level=warn",
        ]

    _, etcd_ports = start(
        "etcd", ("client", "peer"), etcd_argv,
        lambda p: lambda: https_ok(f"https://127.0.0.1:{p['client']}/health", etcd_ctx), 60)
    etcd_url = f"https://127.0.0.1:{etcd_ports['client']}"

    def apiserver_argv(p: dict[str, int]) -> list[str]:
        return [
            str(binaries["kube-apiserver"]),
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={p['port']}", f"--cert-dir={workdir / 'apiserver'}",
            f"--etcd-servers={etcd_url}", f"--etcd-cafile={pki / 'ca.crt'}",
            f"--etcd-certfile={pki / 'apiserver-etcd-client.crt'}",
            f"--etcd-keyfile={pki / 'apiserver-etcd-client.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # RBAC enforced: the hook RBAC tests would prove nothing under AlwaysAllow.
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",  # plus the default set (PodSecurity…)
            # The `kubernetes` Endpoints may not hold a loopback address: skip that reconciler.
            "--endpoint-reconciler-type=none",
            "--profiling=false", "--v=0",
        ]

    admin_ctx = client_context(pki, "admin")
    _, api_ports = start(
        "kube-apiserver", ("port",), apiserver_argv,
        lambda p: lambda: https_ok(f"https://127.0.0.1:{p['port']}/readyz", admin_ctx), 120)
    state.server = f"https://127.0.0.1:{api_ports['port']}"
    for user in ("admin", "controller-manager", "scheduler", "kwok"):
        write_kubeconfig(cfg / f"{user}.kubeconfig", state.server, pki, user)
    write_kubeconfig(kubeconfig, state.server, pki, "admin")
    state.save(state_file)

    insecure = self_signed_context()

    def healthz(p: dict[str, int]) -> Callable[[], bool]:
        return lambda: https_ok(f"https://127.0.0.1:{p['port']}/healthz", insecure)

    def component_argv(name: str, p: dict[str, int]) -> list[str]:
        # What controller-manager and scheduler share: their kubeconfig for everything,
        # /healthz on a loopback port, one instance (no leader election).
        kc = cfg / f"{name}.kubeconfig"
        return [
            str(binaries[f"kube-{name}"]), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={p['port']}",
            f"--cert-dir={workdir / name}", "--leader-elect=false",
            "--profiling=false", "--v=0",
        ]

    def kcm_argv(p: dict[str, int]) -> list[str]:
        return [
            *component_argv("controller-manager", p), "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--enable-hostpath-provisioner=true",
        ]

    kcm, _ = start("kube-controller-manager", ("port",), kcm_argv, healthz, 90)
    start("kube-scheduler", ("port",), lambda p: component_argv("scheduler", p), healthz, 90)

    nodes_yaml = yaml.safe_dump_all([node_manifest(n) for n in state.nodes])
    kubectl(kubeconfig, "apply", "-f", "-", stdin=nodes_yaml)
    stages = cfg / "kwok.yaml"
    stages.write_text(kwok_stages())
    kwok_home = workdir / "kwok-home"  # kwok also reads ~/.kwok/kwok.yaml: not the user's
    kwok_home.mkdir()
    start("kwok", (), lambda p: [
        str(binaries["kwok"]), f"--kubeconfig={cfg / 'kwok.kubeconfig'}",
        f"--config={stages}", f"--manage-nodes-with-label-selector={NODE_LABEL}=true",
        "--node-ip=10.255.0.1", f"--cidr={POD_CIDR}", "--node-lease-duration-seconds=40",
    ], lambda p: lambda: _nodes_ready(kubeconfig, state.nodes), 60,
        env=dict(os.environ, HOME=str(kwok_home)))

    kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(_storage_class()))
    wait_until("ServiceAccount and root-CA controllers",
               lambda: _default_namespace_ready(kubeconfig), kcm, 60, started)
    if install_crds:
        install_crds_of(kubeconfig, [op.crds for op in OPERATORS] + list(SCHEMA_ONLY_CRDS))
        log(f"CRDs installed ({time.monotonic() - started:.1f} s)")
        kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(
            [operator_namespace(), *(operator_rbac(op) for op in runnable())]))
        for op in OPERATORS:
            if (reason := op.unavailable()) is not None:
                log(f"{op.name} not started: {reason}")
                continue
            write_kubeconfig(cfg / f"{op.name}.kubeconfig", state.server, pki, op.name)
            own = workdir / op.name
            own.mkdir(mode=0o700)
            if op.serving_files:
                for suffix, name in zip(("crt", "key"), op.serving_files, strict=True):
                    shutil.copyfile(pki / f"{op.name}-serving.{suffix}", own / name)
            op.prepare(binaries[op.binary], own)
            spawned = time.monotonic()
            start(op.name, (), lambda p, op=op: op.argv(binaries[op.binary], state.server),
                  lambda p, op=op: lambda: _operator_ready(workdir, op), 120,
                  env=dict(os.environ, KUBECONFIG=str(cfg / f"{op.name}.kubeconfig"),
                           **op.env(own)), cwd=own)
            state.ready_seconds[op.name] = round(time.monotonic() - spawned, 1)
    state.save(state_file)


def _operator_ready(workdir: Path, operator: Operator) -> bool:
    try:
        text = (workdir / "logs" / f"{operator.name}.log").read_text(errors="replace")
    except OSError:
        return False
    return log_shows_ready(text, operator)


def _nodes_ready(kubeconfig: Path, names: list[str]) -> bool:
    try:
        out = json.loads(kubectl(kubeconfig, "get", "nodes", "-o", "json"))
    except ClusterError:
        return False
    ready = {n["metadata"]["name"] for n in out["items"]
             if any(c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions", []))}
    return set(names) <= ready


def _default_namespace_ready(kubeconfig: Path) -> bool:
    try:
        kubectl(kubeconfig, "get", "serviceaccount/default", "configmap/kube-root-ca.crt",
                 "-n", "default", "-o", "name")
    except ClusterError:
        return False
    return True


def crd_files(pattern: str) -> list[Path]:
    files = sorted(crds_dir().glob(pattern))
    if not files:
        raise ClusterError(f"no CRD manifest matching {pattern} in {crds_dir()}")
    return files


def install_crds_of(kubeconfig: Path, patterns: Sequence[str]) -> None:
    """Apply CRD manifests (server-side: they exceed the last-applied annotation limit)."""
    for path in (p for pattern in patterns for p in crd_files(pattern)):
        kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts",
                 "--field-manager=la-stack-cluster", "-f", str(path))
        names = [f"crd/{doc['metadata']['name']}" for doc in yaml.safe_load_all(path.read_text())
                 if doc and doc.get("kind") == "CustomResourceDefinition"]
        kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", *names)
