"""`make bench`: wall times of the operator builds and of the release lifecycle on the
local control plane.

- each operator's `go build`, warm (the Go build cache as it is) and, with
  `LA_STACK_BENCH_COLD=1`, cold (a private, empty build cache; minutes);
- the control plane's start and each operator's (spawn until its controllers run);
- for each Helm (3 and 4): install (with --wait and the hooks) → helm test (the umbrella's
  own test Pods) → upgrade with a changed value → uninstall, in a fresh namespace enforcing
  Pod Security `restricted`, with the ECK operator reconciling the release's
  Elasticsearch. kwok fakes containers, so these times are Helm's, the API server's, the
  controllers' and the operator's work, not the applications starting.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import yaml
from kubernetes import client, config

from lastack.cluster import controlplane as cluster
from lastack.paths import REPO_ROOT
from lastack.tools import controlplane_build
from lastack.tools.helm_env import isolated_helm_env
from lastack.tools.toolchain import ToolError, go_env

COLD_ENV = "LA_STACK_BENCH_COLD"

Row = tuple[str, float | str, str]


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return round(time.perf_counter() - start, 1)


def operator_build_rows() -> list[Row]:
    """Rows of (name, seconds, "s"): each operator built into a scratch directory."""
    rows: list[Row] = []
    cold = os.environ.get(COLD_ENV) == "1"
    for build in controlplane_build.OPERATORS:
        name = build.binaries[0]
        if not cold:
            rows.append((f"build {name}: cold", f"skipped (set {COLD_ENV}=1)", ""))
        for label in ("warm", "cold") if cold else ("warm",):
            with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as gocache:
                env = go_env()
                if label == "cold":
                    env["GOCACHE"] = gocache  # empty: every package is compiled
                try:
                    seconds = controlplane_build.run_build(build, Path(out), env)
                except ToolError as err:
                    rows.append((f"build {name}: {label} FAILED",
                                 str(err).splitlines()[0][:120], ""))
                    continue
            rows.append((f"build {name} {build.version}: {label}", round(seconds, 1), "s"))
    return rows


def lifecycle_rows() -> list[Row]:
    """Rows of (name, seconds, "s"); a failed step ends that Helm's rows with its error."""
    # The hook runner and Helm helpers live with the live tier; the bench reuses them.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from lastack.chart.chart_values import deep_merge
    from lastack.testing.helm_release import RELEASE, Helm, base_values, hook_objects
    from lastack.testing.hookrunner import HookRunner

    rows: list[Row] = []
    started = time.perf_counter()
    with cluster.session() as state, tempfile.TemporaryDirectory() as home:
        rows.append(("live: local control plane start, operators included",
                     round(time.perf_counter() - started, 1), "s"))
        for name, seconds in state.ready_seconds.items():
            rows.append((f"live: {name} start (until its controllers run)", seconds, "s"))
        env = isolated_helm_env(Path(home), state.kubeconfig)
        api = config.new_client_from_config(config_file=state.kubeconfig)
        core = client.CoreV1Api(api)
        for name in ("helm3", "helm4"):
            helm = Helm(name, env)
            namespace = f"la-stack-bench-{name}-{uuid.uuid4().hex[:6]}"
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
                name=namespace, labels={"pod-security.kubernetes.io/enforce": "restricted"})))
            values = base_values(local=True)

            def helm_test(helm: Helm = helm, namespace: str = namespace) -> None:
                hooks = helm.run("get", "hooks", RELEASE, "-n", namespace).stdout
                own = [h["metadata"]["name"] for h in hook_objects(hooks, "test")
                       if (h["metadata"].get("labels") or {}).get("app.kubernetes.io/part-of")
                       == "la-stack"]
                filters = [a for n in own for a in ("--filter", f"name={n}")]
                if own:
                    helm.run("test", RELEASE, "-n", namespace, "--timeout", "2m", *filters)

            steps: list[tuple[str, Callable[[], object]]] = [
                ("install", lambda h=helm, n=namespace, v=values: h.install(n, v)),
                ("helm test", helm_test),
                ("upgrade", lambda h=helm, n=namespace, v=values: h.upgrade(
                    n, deep_merge(v, {"lrs": {"backend": {"refreshAfterWrite": True}}}))),
                ("uninstall", lambda h=helm, n=namespace: h.run(
                    "uninstall", RELEASE, "-n", n, *h.wait, "--timeout", "3m")),
            ]
            total = 0.0
            with HookRunner(api, state.server, namespace):
                for step, action in steps:
                    try:
                        seconds = _timed(action)
                    except AssertionError as err:
                        first = str(err).strip().splitlines()[0][:120]
                        rows.append((f"live {name}: {step} FAILED", first, ""))
                        break
                    total += seconds
                    rows.append((f"live {name}: {step}", seconds, "s"))
                else:
                    rows.append((f"live {name}: install → test → upgrade → uninstall",
                                 round(total, 1), "s"))
            core.delete_namespace(namespace)
    return rows


def main(args: list[str]) -> int:
    """Print the rows (for running this benchmark on its own)."""
    del args
    print(yaml.safe_dump([list(r) for r in lifecycle_rows()], allow_unicode=True), end="")
    return 0


if __name__ == "__main__":  # python -m lastack.bench.bench_live
    sys.exit(main(sys.argv[1:]))

