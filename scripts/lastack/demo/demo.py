"""`make demo` / `make demo-down`: the whole stack on a local cluster, with sample data.

The plan is computed first and printed with `--dry-run`: which cluster (the current
KUBECONFIG context, else a new kind or k3d cluster), the pinned ECK operator, la-stack
with values/demo.yaml, the waits, the statement load, and where everything is. Every
step is idempotent (`helm upgrade --install`, clusters reused), so re-running is safe.

On a cluster whose nodes are simulated (kwok), no container really runs: the demo goes
as far as the API allows and says where only real containers could go further.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from lastack import polling
from lastack.chart import chartdeps
from lastack.chart.render import effective_chart_dir
from lastack.cluster.kwok import NODE_LABEL as KWOK_NODE_LABEL
from lastack.demo.plan import (
    CLUSTER_NAME,
    CNPG_NAMESPACE,
    CNPG_VERSION,
    DEMO_STATEMENTS,
    NAMESPACE,
    OPERATOR_NAMESPACE,
    OPERATOR_VERSION,
    RELEASE,
    STATE_DIR,
    SUPERSET_WEB,
    DemoError,
    Plan,
    build_plan,
    create_cluster_command,
    delete_cluster_command,
    helm_install_operator,
    helm_install_stack,
    install_cnpg_commands,
    progress,
)
from lastack.net import free_port
from lastack.paths import CHART_DIR, VALUES_DIR
from lastack.testing import xapi
from lastack.tools.toolchain import HELM4, KUBECTL


class Cluster:
    """kubectl against the demo's cluster, JSON in and out."""

    def __init__(self, kubectl: str, env: dict[str, str]) -> None:
        self.kubectl, self.env = kubectl, env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.kubectl, *args], capture_output=True, text=True,
                              env=self.env, check=False)
        if check and proc.returncode != 0:
            raise DemoError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc

    def get(self, *args: str) -> dict | None:
        proc = self.run("get", *args, "-o", "json", check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def simulated_nodes(self) -> bool:
        """True when every node is simulated by kwok (no container can really run)."""
        nodes = (self.get("nodes") or {}).get("items", [])

        def simulated(node: dict) -> bool:
            meta = node["metadata"]
            labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
            return (annotations.get("kwok.x-k8s.io/node") == "fake"
                    or labels.get("type") == "kwok" or labels.get(KWOK_NODE_LABEL) == "true")

        return bool(nodes) and all(simulated(n) for n in nodes)

    def foreign_eck_crds(self) -> bool:
        """True when the ECK CRDs exist but belong to no operator release of the demo's
        (installed by hand or by another tool): the operator chart must not create them."""
        crd = self.get("crd", "elasticsearches.elasticsearch.k8s.elastic.co")
        if crd is None:
            return False
        annotations = crd["metadata"].get("annotations") or {}
        return annotations.get("meta.helm.sh/release-name") != "elastic-operator"

    def secret_value(self, name: str, key: str) -> str:
        secret = self.get("secret", name, "-n", NAMESPACE)
        if not secret or key not in secret.get("data", {}):
            raise DemoError(f"Secret {name} has no key {key} yet; the secrets hook has not run.")
        return base64.b64decode(secret["data"][key]).decode()


def wait_until(what: str, check: Callable[[], str | None], timeout: float,
               interval: float = 5.0) -> None:
    """Poll `check` (None = done, else a status line) until done or the deadline."""
    shown: list[str] = [""]

    def probe() -> polling.Probe:
        status = check()
        if status is not None and status != shown[-1]:
            progress(f"{what}: {status}")  # each new status once, as the user waits
            shown.append(status)
        return polling.Probe(done=status is None, state=status or "")

    try:
        polling.poll(what, probe, timeout, interval=interval)
    except polling.WaitTimeout:
        raise DemoError(
            f"{what} was not ready after {timeout:.0f}s (last: {shown[-1]}).") from None
    progress(f"{what}: ready")


def elasticsearch_status(cluster: Cluster) -> str | None:
    es = cluster.get("elasticsearch", "-n", NAMESPACE)
    items = (es or {}).get("items", [])
    if not items:
        return "no Elasticsearch resource yet"
    status = items[0].get("status") or {}
    if status.get("phase") == "Ready" and status.get("health") in {"green", "yellow"}:
        return None
    return f"phase {status.get('phase', 'unknown')}, health {status.get('health', 'unknown')}"


def rollout_status(cluster: Cluster, kind: str, name: str) -> Callable[[], str | None]:
    def check() -> str | None:
        obj = cluster.get(kind, name, "-n", NAMESPACE)
        if obj is None:
            return f"{kind} {name} not created yet"
        want = obj["spec"].get("replicas", 1)
        ready = (obj.get("status") or {}).get("readyReplicas", 0)
        return None if ready >= want else f"{ready}/{want} Pods ready"
    return check


def load_statements(cluster: Cluster, count: int = DEMO_STATEMENTS) -> None:
    """POST generated statements to Ralph through a port-forward, with the admin account."""
    username = cluster.secret_value("la-stack-lrs-admin", "username")
    password = cluster.secret_value("la-stack-lrs-admin", "password")
    port = free_port()
    forward = subprocess.Popen(
        [cluster.kubectl, "port-forward", "-n", NAMESPACE, "svc/la-stack-ralph",
         f"{port}:8080", "--address", "127.0.0.1"],
        env=cluster.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        statements = xapi.generate(count=count, seed=2026)
        for start in range(0, len(statements), 500):
            batch = json.dumps(statements[start:start + 500]).encode()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/xAPI/statements", data=batch, method="POST",
                headers={"Authorization": f"Basic {token}", "Content-Type": "application/json",
                         "X-Experience-API-Version": "1.0.3"})
            for attempt in range(10):
                try:
                    with urllib.request.urlopen(request, timeout=60):
                        break
                except OSError as error:
                    if attempt == 9:
                        raise DemoError(f"Ralph did not accept statements: {error}.") from error
                    time.sleep(2)
            progress(f"loaded {min(start + 500, count)}/{count} statements through Ralph")
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def run_command(command: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(command), env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DemoError(f"`{' '.join(command[:3])} …` failed: {tail[0]}")
    return proc


def cluster_exists(tool: str) -> bool:
    if tool == "kind":
        out = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True,
                             check=False).stdout.split()
    else:
        out = [c.get("name") for c in json.loads(subprocess.run(
            ["k3d", "cluster", "list", "-o", "json"], capture_output=True, text=True,
            check=False).stdout or "[]")]
    return CLUSTER_NAME in out


def up(plan: Plan, env: dict[str, str], kubectl: str, helm: str,
       extra_values: Sequence[Path] = ()) -> int:
    if plan.cluster != "existing":
        if cluster_exists(plan.cluster):
            progress(f"reusing the {plan.cluster} cluster {CLUSTER_NAME}")
        else:
            progress(f"creating the {plan.cluster} cluster {CLUSTER_NAME}")
            run_command(create_cluster_command(plan.cluster), env)
            STATE_DIR.mkdir(parents=True, exist_ok=True)
            (STATE_DIR / "created-cluster").write_text(plan.cluster)
    cluster = Cluster(kubectl, env)
    simulated = cluster.simulated_nodes()
    progress(f"installing the ECK operator {OPERATOR_VERSION} in {OPERATOR_NAMESPACE}")
    foreign = cluster.foreign_eck_crds()
    if foreign:
        progress("the ECK CRDs are already installed by something else: keeping them")
    run_command(helm_install_operator(helm, install_crds=not foreign), env)
    progress(f"installing the CloudNativePG operator {CNPG_VERSION} in {CNPG_NAMESPACE}")
    for command in install_cnpg_commands(kubectl):
        run_command(command, env)
    try:
        for line in chartdeps.vendor(Path(helm), offline=False):
            progress(line)
    except chartdeps.DependencyError as error:
        # Absent subcharts are left out of the install rather than stopping the demo.
        progress(str(error).splitlines()[-2].strip())
    chart = effective_chart_dir()
    if chart != CHART_DIR:
        absent = ", ".join(d.name for d in chartdeps.missing())
        progress(f"installing without the absent subcharts: {absent}")
    progress("installing la-stack with values/demo.yaml")
    run_command(helm_install_stack(helm, chart, VALUES_DIR / "demo.yaml", extra_values), env)
    if simulated:
        progress("the nodes are simulated (kwok): the objects are applied and the hooks ran, "
                 "but only real containers could go further (Elasticsearch, Ralph, Moodle "
                 "and Superset running, statements flowing); stopping here.")
        print(run_command([helm, "get", "notes", RELEASE, "-n", NAMESPACE], env).stdout)
        return 0
    wait_until("elasticsearch (ECK)", lambda: elasticsearch_status(cluster), 900)
    wait_until("ralph", rollout_status(cluster, "deployment", "la-stack-ralph"), 600)
    if cluster.get("deployment", "la-stack-moodle", "-n", NAMESPACE) is not None:
        wait_until("moodle", rollout_status(cluster, "deployment", "la-stack-moodle"), 1200)
    # The Superset operator creates the web server once its lifecycle tasks (migrations,
    # init, drivers) are done: "not created yet" is progress, not an error.
    wait_until("superset", rollout_status(cluster, "deployment", SUPERSET_WEB), 1200)
    load_statements(cluster)
    print(run_command([helm, "get", "notes", RELEASE, "-n", NAMESPACE], env).stdout)
    return 0


def down(env: dict[str, str], helm: str) -> int:
    subprocess.run([helm, "uninstall", RELEASE, "-n", NAMESPACE, "--wait"], env=env,
                   check=False)
    subprocess.run([helm, "uninstall", "elastic-operator", "-n", OPERATOR_NAMESPACE], env=env,
                   check=False)
    marker = STATE_DIR / "created-cluster"
    if marker.exists():
        tool = marker.read_text().strip()
        progress(f"deleting the {tool} cluster {CLUSTER_NAME} the demo created")
        subprocess.run(delete_cluster_command(tool), check=False)
        marker.unlink()
    else:
        progress("the demo did not create this cluster: it is left as it is "
                 f"(data volumes in namespace {NAMESPACE} are kept)")
    return 0


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack demo")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    parser.add_argument("--down", action="store_true", help="remove what the demo installed")
    parser.add_argument("-f", "--values", action="append", default=[], type=Path,
                        help="more values on top of values/demo.yaml (repeatable)")
    opts = parser.parse_args(args)
    env = dict(os.environ)
    kubectl, helm = str(KUBECTL.binary), str(HELM4.binary)
    try:
        if opts.down:
            return down(env, helm)
        plan = build_plan(env, kubectl, helm, extra_values=opts.values)
        if opts.dry_run:
            print(f"cluster: {plan.cluster}" + (f" ({plan.context})" if plan.context else ""))
            for number, step in enumerate(plan.steps, 1):
                print(f"{number}. {step.describe()}")
            return 0
        return up(plan, env, kubectl, helm, opts.values)
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
