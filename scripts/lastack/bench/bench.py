"""`make bench`: numbers, side by side, printed — never asserted by a test.

- median wall time of `helm template` of the umbrella under Helm 3 and Helm 4
  (the full umbrella when every subchart is vendored, else what is present);
- wall time of the render test tier;
- the operators' build (warm; cold with LA_STACK_BENCH_COLD=1) and start times;
- install -> test -> upgrade -> uninstall wall time on the local control plane, per Helm.
`make bench` also runs `lastack bench-ingest` (statements/s through Ralph into ES),
`lastack bench-pipeline` (the ingest pipeline's write cost) and `lastack footprint`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from lastack.bench.bench_live import Row, lifecycle_rows, operator_build_rows
from lastack.chart import chartdeps
from lastack.chart.render import render_manifest
from lastack.paths import REPO_ROOT

# Benchmarks on the local control plane, each returning rows of (name, value, unit).
EXTRA_BENCHMARKS: tuple[Callable[[], list[Row]], ...] = (operator_build_rows, lifecycle_rows)


def time_render(helm: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        render_manifest(helm=helm, use_cache=False)
        samples.append(time.perf_counter() - start)
    return samples


def time_render_tier() -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly",
                           "tests/render"], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=False)
    return time.perf_counter() - start, proc.returncode


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack bench")
    parser.add_argument("--runs", type=int, default=7, help="helm template runs per Helm")
    parser.add_argument("--skip-tier", action="store_true", help="skip timing the render tier")
    opts = parser.parse_args(args)

    absent = [d.name for d in chartdeps.missing()]
    scope = "full umbrella" if not absent else f"umbrella without {', '.join(absent)}"
    rows: list[tuple[str, str]] = []
    for helm in ("helm3", "helm4"):
        samples = time_render(helm, opts.runs)
        rows.append((f"helm template median, {helm} ({scope}, n={opts.runs})",
                     f"{statistics.median(samples) * 1000:.0f} ms"))
    if not opts.skip_tier:
        seconds, code = time_render_tier()
        status = "passed" if code == 0 else f"pytest exit {code}"
        rows.append((f"render test tier wall time ({status})", f"{seconds:.1f} s"))
    for benchmark in EXTRA_BENCHMARKS:
        for name, value, unit in benchmark():
            rows.append((name, f"{value} {unit}"))

    width = max(len(name) for name, _ in rows)
    print(f"{'benchmark':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0
