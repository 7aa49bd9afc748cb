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
import base64
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from lastack.cluster.operators import (
    OPERATORS,
    SCHEMA_ONLY_CRDS,
    Operator,
    log_shows_ready,
    operator_namespace,
    operator_rbac,
    runnable,
)
from lastack.net import free_port
from lastack.paths import TOOLS_DIR, crds_dir
from lastack.tools import controlplane_build
from lastack.tools.toolchain import KUBECTL, KUBERNETES_VERSION, ToolError, require

CLUSTER_DIR = TOOLS_DIR / "cluster"
STATE_FILE = CLUSTER_DIR / "state.json"
KUBECONFIG = CLUSTER_DIR / "kubeconfig"

NODE_LABEL = "la-stack.io/kwok-node"
# Pods that select this node label are held Running for a test-side hook runner instead of
# being completed by kwok (see tests/live); every fake Node carries it.
HOOK_RUNNER_LABEL = "la-stack.io/hook-runner"
SERVICE_CIDR = "10.96.0.0/16"
POD_CIDR = "10.244.0.0/16"
STORAGE_CLASS = "standard"
HOSTPATH_PV_ROOT = Path("/tmp/hostpath_pv")  # fixed by the controller-manager's provisioner

DEFAULT_TTL_SECONDS = 4 * 3600
STOP_GRACE_SECONDS = 15.0


class ClusterError(RuntimeError):
    """The local control plane could not start, or is not running."""


def log(message: str) -> None:
    print(f"[cluster] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- state


@dataclass
class Process:
    name: str
    pid: int  # also its process-group id: each runs in its own session
    binary: str
    log: str


@dataclass
class ClusterState:
    server: str
    kubeconfig: str
    workdir: str  # temporary: PKI, etcd data, logs; removed by `down`
    started: float
    ttl_seconds: int
    nodes: list[str]
    processes: list[Process] = field(default_factory=list)
    # Seconds from spawn to ready, per operator (for `make bench`).
    ready_seconds: dict[str, float] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> ClusterState | None:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        raw["processes"] = [Process(**p) for p in raw.get("processes", [])]
        return cls(**raw)


# --------------------------------------------------------------------------- PKI (openssl CLI)


def _openssl(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def _ec_key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(path), cwd=path.parent)


def _signed_cert(pki: Path, name: str, subject: str, usage: str, sans: str = "") -> None:
    """A P-256 key and a certificate signed by the run's CA (valid 2 days: runs are short)."""
    _ec_key(pki / f"{name}.key")
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr",
             cwd=pki)
    ext = ["basicConstraints=critical,CA:FALSE",
           "keyUsage=critical,digitalSignature,keyEncipherment",
           f"extendedKeyUsage={usage}"]
    if sans:
        ext.append(f"subjectAltName={sans}")
    (pki / f"{name}.ext").write_text("\n".join(ext) + "\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
             "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=pki)


LOOPBACK_SANS = "IP:127.0.0.1,DNS:localhost"
APISERVER_SANS = (LOOPBACK_SANS + ",IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,"
                  "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")
# name -> (subject, extendedKeyUsage, SANs). O=system:masters only for admin and kwok:
# kwok writes every fake kubelet's Node and Pod status, which no narrower role allows.
CERTS: dict[str, tuple[str, str, str]] = {
    "etcd-server": ("/CN=etcd", "serverAuth,clientAuth", LOOPBACK_SANS),
    "apiserver-etcd-client": ("/CN=kube-apiserver-etcd-client", "clientAuth", ""),
    "apiserver": ("/CN=kube-apiserver", "serverAuth", APISERVER_SANS),
    "admin": ("/O=system:masters/CN=la-stack-admin", "clientAuth", ""),
    "controller-manager": ("/CN=system:kube-controller-manager", "clientAuth", ""),
    "scheduler": ("/CN=system:kube-scheduler", "clientAuth", ""),
    "kwok": ("/O=system:masters/CN=kwok", "clientAuth", ""),
    **{op.name: (f"/CN={op.user}", "clientAuth", "") for op in OPERATORS},
    **{f"{op.name}-serving": (f"/CN={op.name}", "serverAuth", LOOPBACK_SANS)
       for op in OPERATORS if op.serving_files},
}


def generate_pki(pki: Path) -> None:
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    _ec_key(pki / "ca.key")
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=la-stack-local-ca",
             "-days", "2", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt", cwd=pki)
    for name, (subject, usage, sans) in CERTS.items():
        _signed_cert(pki, name, subject, usage, sans)
    # ServiceAccount token signing key pair (ES256 tokens).
    _ec_key(pki / "sa.key")
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)


def write_kubeconfig(path: Path, server: str, pki: Path, user: str) -> None:
    def b64(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()

    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "la-stack-local",
        "clusters": [{"name": "la-stack-local", "cluster": {
            "server": server, "certificate-authority-data": b64("ca.crt")}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(f"{user}.crt"),
            "client-key-data": b64(f"{user}.key")}}],
        "contexts": [{"name": "la-stack-local", "context": {
            "cluster": "la-stack-local", "user": user}}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


# --------------------------------------------------------------------------- kwok stages

# Our kwok Stage set. kwok applies `next.statusTemplate` to objects matching `selector`.
KWOK_STAGES = r"""
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: la-stack-node-ready
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      conditions:
      {{ range NodeConditions }}
      - type: {{ .type | Quote }}
        status: {{ .status | Quote }}
        reason: {{ .reason | Quote }}
        message: {{ .message | Quote }}
        lastHeartbeatTime: {{ $now | Quote }}
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      addresses:
      - {type: InternalIP, address: {{ NodeIP | Quote }}}
      - {type: Hostname, address: {{ NodeName | Quote }}}
      capacity: {cpu: "32", memory: 128Gi, pods: "250", ephemeral-storage: 200Gi}
      allocatable: {cpu: "32", memory: 128Gi, pods: "250", ephemeral-storage: 200Gi}
      nodeInfo:
        architecture: amd64
        operatingSystem: linux
        kubeletVersion: "__KUBE_VERSION__"
        kubeProxyVersion: "__KUBE_VERSION__"
        containerRuntimeVersion: "kwok://{{ Version }}"
        kernelVersion: "kwok"
        osImage: "kwok fake node"
        machineID: ""
        bootID: ""
        systemUUID: ""
      phase: Running
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: la-stack-pod-running
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
    - {key: '.status.phase', operator: In, values: [Pending]}
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $ips := PodIPsWith .spec.nodeName (or .spec.hostNetwork false)
           (or .metadata.uid "") (or .metadata.name "") (or .metadata.namespace "") }}
      phase: Running
      startTime: {{ $now | Quote }}
      hostIP: {{ NodeIP | Quote }}
      hostIPs:
      - ip: {{ NodeIP | Quote }}
      {{ with $ips }}
      podIP: {{ index . 0 | Quote }}
      podIPs:
      {{ range . }}
      - ip: {{ . | Quote }}
      {{ end }}
      {{ end }}
      conditions:
      - {type: PodReadyToStartContainers, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
      - {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
      {{ range .spec.readinessGates }}
      - {type: {{ .conditionType | Quote }}, status: "True", lastTransitionTime: {{ $now | Quote }}}
      {{ end }}
      initContainerStatuses:
      {{ range .spec.initContainers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        restartCount: 0
        {{ if eq ( or .restartPolicy "" ) "Always" }}
        ready: true
        started: true
        state: {running: {startedAt: {{ $now | Quote }}}}
        {{ else }}
        ready: true
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
        {{ end }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: true
        started: true
        restartCount: 0
        state: {running: {startedAt: {{ $now | Quote }}}}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: la-stack-job-pod-succeeded
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
    - {key: '.status.phase', operator: In, values: [Running]}
    - {key: '.metadata.ownerReferences.[].kind', operator: In, values: [Job]}
    - {key: '.spec.nodeSelector["__HOOK_RUNNER_LABEL__"]', operator: DoesNotExist}
  next:
    statusTemplate: |
      {{ $now := Now }}
      phase: Succeeded
      conditions:
      {{ range list "Ready" "ContainersReady" }}
      - type: {{ . }}
        status: "False"
        reason: PodCompleted
        lastTransitionTime: {{ $now | Quote }}
      {{ end }}
      containerStatuses:
      {{ range .spec.containers }}
      - name: {{ .name | Quote }}
        image: {{ .image | Quote }}
        ready: false
        started: false
        restartCount: 0
        state:
          terminated:
            exitCode: 0
            reason: Completed
            startedAt: {{ $now | Quote }}
            finishedAt: {{ $now | Quote }}
      {{ end }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: la-stack-helm-test-pod-succeeded
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: DoesNotExist}
    - {key: '.status.phase', operator: In, values: [Running]}
    - {key: '.metadata.annotations["helm.sh/hook"]', operator: In, values: [test, test-success]}
    - {key: '.spec.nodeSelector["__HOOK_RUNNER_LABEL__"]', operator: DoesNotExist}
  next:
    statusTemplate: __SAME_AS_JOB_POD__
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: la-stack-pod-delete
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchExpressions:
    - {key: '.metadata.deletionTimestamp', operator: Exists}
  next:
    delete: true
"""


def kwok_stages() -> str:
    docs = list(yaml.safe_load_all(
        KWOK_STAGES.replace("__KUBE_VERSION__", f"v{KUBERNETES_VERSION}")
        .replace("__HOOK_RUNNER_LABEL__", HOOK_RUNNER_LABEL)))
    by_name = {d["metadata"]["name"]: d for d in docs}
    # `helm test` Pods end exactly like Job Pods.
    by_name["la-stack-helm-test-pod-succeeded"]["spec"]["next"]["statusTemplate"] = (
        by_name["la-stack-job-pod-succeeded"]["spec"]["next"]["statusTemplate"])
    return yaml.safe_dump_all(docs, sort_keys=False)


# --------------------------------------------------------------------------- processes




def _spawn(name: str, argv: Sequence[str], workdir: Path, ttl: int,
           env: dict[str, str] | None = None, cwd: Path | None = None) -> Process:
    log_path = workdir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    timeout = shutil.which("timeout")
    # `timeout` bounds each server's life even if nobody runs `down`.
    cmd = ([timeout, "--kill-after=10", str(ttl)] if timeout else []) + list(argv)
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                cwd=cwd or workdir, env=env, start_new_session=True)
    _CHILDREN[proc.pid] = proc
    return Process(name=name, pid=proc.pid, binary=str(argv[0]), log=str(log_path))


# Processes this interpreter started: their Popen answers "alive?" exactly (and reaps).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _is_ours(process: Process) -> bool:
    """The pid is alive and still runs our binary (pids are reused)."""
    child = _CHILDREN.get(process.pid)
    if child is not None:
        # /proc/<pid>/cmdline can be empty for an instant right after exec: trust Popen.
        return child.poll() is None
    try:
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{process.pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return process.binary.encode() in cmdline


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _reap(pid: int) -> None:
    with suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _signal_group(process: Process, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _wait_gone(processes: list[Process], seconds: float) -> list[Process]:
    """Wait until the groups are gone; returns those still alive after `seconds`."""
    deadline = time.monotonic() + seconds
    alive = list(processes)
    while alive:
        for process in alive:
            child = _CHILDREN.get(process.pid)
            if child is not None:
                child.poll()  # reaps our own child
            else:
                _reap(process.pid)
        alive = [p for p in alive if _group_alive(p.pid)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return alive


def stop_processes(processes: list[Process], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM the process groups we started (by their recorded ids), SIGKILL the ones
    still there after `grace` seconds."""
    ours = [p for p in processes if _is_ours(p)]
    for process in ours:
        _signal_group(process, signal.SIGTERM)
    stubborn = _wait_gone(ours, grace)
    for process in stubborn:
        log(f"{process.name} (pid {process.pid}) ignored SIGTERM for {grace:.0f} s: SIGKILL")
        _signal_group(process, signal.SIGKILL)
    _wait_gone(stubborn, 5)


def stop_process(process: Process, grace: float = STOP_GRACE_SECONDS) -> None:
    stop_processes([process], grace)


def _tail(path: str, lines: int = 25) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- health


def _https_ok(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def _client_context(pki: Path, cert: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    return context


def _self_signed_context() -> ssl.SSLContext:
    # Controller-manager and scheduler serve /healthz with a certificate they make up at
    # start; the probe only asks "are you up" on loopback, so it does not verify it.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def wait_until(what: str, check: Callable[[], bool], process: Process | None,
               timeout: float, started: float) -> None:
    """Poll `check` until true; fail at the deadline or as soon as `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            log(f"{what} ready ({time.monotonic() - started:.1f} s)")
            return
        if process is not None and not _is_ours(process):
            raise ClusterError(f"{process.name} exited while waiting for {what}; "
                               f"last log lines ({process.log}):\n{_tail(process.log)}")
        time.sleep(0.3)
    tail = f"; last log lines ({process.log}):\n{_tail(process.log)}" if process else ""
    raise ClusterError(f"{what} not ready after {timeout:.0f} s{tail}")


# --------------------------------------------------------------------------- bring-up


def _kubectl(kubeconfig: Path, *args: str, stdin: str | None = None,
             timeout: float = 120) -> str:
    # Discovery cache beside the kubeconfig: not in the user's ~/.kube, gone with `down`.
    env = dict(os.environ, KUBECONFIG=str(kubeconfig),
               KUBECACHEDIR=str(kubeconfig.parent / ".kube-cache"))
    proc = subprocess.run([str(require(KUBECTL)), *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def _node_manifest(name: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {
            "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/worker": "",
            NODE_LABEL: "true", HOOK_RUNNER_LABEL: "local"}},
        "spec": {},
    }


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
        _bring_up(state, state_file, binaries, workdir, pki, kubeconfig, install_crds, started)
    except BaseException:
        log("start failed: stopping what was started")
        down(state_file, quiet=True)
        raise
    log(f"control plane up in {time.monotonic() - started:.0f} s: "
        f"KUBECONFIG={kubeconfig} (server {state.server})")
    return state


def _bring_up(state: ClusterState, state_file: Path, binaries: dict[str, Path],
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
            process = _spawn(name, argv(ports_now), workdir, state.ttl_seconds, env, cwd)
            state.processes.append(process)
            state.save(state_file)  # saved after every start: `down` must see every pid
            try:
                wait_until(name, ready(ports_now), process, timeout, started)
                return process, ports_now
            except ClusterError:
                if attempt == 2 or "address already in use" not in _tail(process.log, 50):
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

    etcd_ctx = _client_context(pki, "apiserver-etcd-client")

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
        lambda p: lambda: _https_ok(f"https://127.0.0.1:{p['client']}/health", etcd_ctx), 60)
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

    admin_ctx = _client_context(pki, "admin")
    _, api_ports = start(
        "kube-apiserver", ("port",), apiserver_argv,
        lambda p: lambda: _https_ok(f"https://127.0.0.1:{p['port']}/readyz", admin_ctx), 120)
    state.server = f"https://127.0.0.1:{api_ports['port']}"
    for user in ("admin", "controller-manager", "scheduler", "kwok"):
        write_kubeconfig(cfg / f"{user}.kubeconfig", state.server, pki, user)
    write_kubeconfig(kubeconfig, state.server, pki, "admin")
    state.save(state_file)

    insecure = _self_signed_context()

    def healthz(p: dict[str, int]) -> Callable[[], bool]:
        return lambda: _https_ok(f"https://127.0.0.1:{p['port']}/healthz", insecure)

    def kcm_argv(p: dict[str, int]) -> list[str]:
        kc = cfg / "controller-manager.kubeconfig"
        return [
            str(binaries["kube-controller-manager"]), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={p['port']}",
            f"--cert-dir={workdir / 'controller-manager'}",
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki / 'sa.key'}",
            f"--root-ca-file={pki / 'ca.crt'}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--enable-hostpath-provisioner=true", "--profiling=false", "--v=0",
        ]

    def scheduler_argv(p: dict[str, int]) -> list[str]:
        kc = cfg / "scheduler.kubeconfig"
        return [
            str(binaries["kube-scheduler"]), f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}", f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1", f"--secure-port={p['port']}",
            f"--cert-dir={workdir / 'scheduler'}", "--leader-elect=false",
            "--profiling=false", "--v=0",
        ]

    kcm, _ = start("kube-controller-manager", ("port",), kcm_argv, healthz, 90)
    start("kube-scheduler", ("port",), scheduler_argv, healthz, 90)

    nodes_yaml = yaml.safe_dump_all([_node_manifest(n) for n in state.nodes])
    _kubectl(kubeconfig, "apply", "-f", "-", stdin=nodes_yaml)
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

    _kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump(_storage_class()))
    wait_until("ServiceAccount and root-CA controllers",
               lambda: _default_namespace_ready(kubeconfig), kcm, 60, started)
    if install_crds:
        install_crds_of(kubeconfig, [op.crds for op in OPERATORS] + list(SCHEMA_ONLY_CRDS))
        log(f"CRDs installed ({time.monotonic() - started:.1f} s)")
        _kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(
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
        out = json.loads(_kubectl(kubeconfig, "get", "nodes", "-o", "json"))
    except ClusterError:
        return False
    ready = {n["metadata"]["name"] for n in out["items"]
             if any(c["type"] == "Ready" and c["status"] == "True"
                    for c in n.get("status", {}).get("conditions", []))}
    return set(names) <= ready


def _default_namespace_ready(kubeconfig: Path) -> bool:
    try:
        _kubectl(kubeconfig, "get", "serviceaccount/default", "configmap/kube-root-ca.crt",
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
        _kubectl(kubeconfig, "apply", "--server-side", "--force-conflicts",
                 "--field-manager=la-stack-cluster", "-f", str(path))
        names = [f"crd/{doc['metadata']['name']}" for doc in yaml.safe_load_all(path.read_text())
                 if doc and doc.get("kind") == "CustomResourceDefinition"]
        _kubectl(kubeconfig, "wait", "--for=condition=Established", "--timeout=60s", *names)


# --------------------------------------------------------------------------- status / down


def healthy(state: ClusterState) -> bool:
    if not state.server or not all(_is_ours(p) for p in state.processes):
        return False
    if time.time() > state.started + state.ttl_seconds - 60:
        return False  # about to be stopped by its time bound
    pki = Path(state.workdir) / "pki"
    try:
        return _https_ok(f"{state.server}/readyz", _client_context(pki, "admin"))
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
        pvs = json.loads(_kubectl(kubeconfig, "get", "pv", "-o", "json", timeout=20))
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
    if state.processes and any(p.name == "kube-apiserver" and _is_ours(p)
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
