"""`make lint`: helm lint --strict under Helm 3 and 4, ct lint, yamllint, ruff.

Offline, with subchart archives absent, Helm and ct lint the parent-only copy of the
chart (the same one the render tier uses) and say so; nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from lastack.chart import chartdeps
from lastack.chart.render import effective_chart_dir
from lastack.paths import CHART_DIR, REPO_ROOT, TOOLS_BIN, TOOLS_DIR
from lastack.tools.toolchain import ACTIONLINT, CHART_TESTING, HELMS, KUBERNETES_VERSION, require

# `helm lint` has no --api-versions: the ECK preflight is exercised by the render tier instead.
# Helm 3 built from its module assumes Kubernetes 1.20 for `.Capabilities`, below the chart's
# kubeVersion floor, so both Helms are told the version the project targets.
LINT_SET = ("--set", "preflight.requireEckApi=false", "--set", "preflight.requireCnpgApi=false",
            "--kube-version", KUBERNETES_VERSION)
YAML_PATHS = ("ct.yaml", "values", "charts/la-stack/values.yaml", "charts/la-stack/ci",
              "charts/la-stack/Chart.yaml", ".github", "argocd/bootstrap",
              "argocd/argocd-cm-health.yaml", "argocd/la-stack-apps/Chart.yaml",
              "argocd/la-stack-apps/values.yaml", "argocd/la-stack-apps/values-demo.yaml",
              "argocd/la-stack-apps/values-production.yaml")
PYTHON_PATHS = ("scripts", "tests", "charts/la-stack/files")


def lint_values_files(chart_dir: Path = CHART_DIR) -> list[Path]:
    return sorted((chart_dir / "ci").glob("*-values.yaml"))


def run(step: str, cmd: Sequence[str], cwd: Path = REPO_ROOT) -> bool:
    print(f"[lint] {step}", flush=True)
    # ct calls plain `helm`, `yamale` and `yamllint`: the pinned ones come first on PATH.
    venv_bin = Path(sys.executable).parent
    path = os.pathsep.join([str(TOOLS_BIN), str(venv_bin), os.environ.get("PATH", "")])
    env = dict(os.environ, PATH=path)
    proc = subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        print(f"[lint] FAILED: {step}", file=sys.stderr)
        return False
    return True


def helm_lint(chart: Path) -> list[bool]:
    results = []
    cases: list[list[str]] = [[]] + [["--values", str(f)] for f in lint_values_files()]
    for name, tool in HELMS.items():
        for case in cases:
            label = Path(case[1]).name if case else "default values"
            cmd = [str(require(tool)), "lint", "--strict", str(chart), *LINT_SET, *case]
            results.append(run(f"{name} lint --strict ({label})", cmd))
    return results


def ct_lint(chart: Path) -> bool:
    ct = require(CHART_TESTING)
    etc = TOOLS_DIR / "ct" / "etc"
    cmd = [str(ct), "lint", "--config", str(REPO_ROOT / "ct.yaml"), "--charts", str(chart),
           "--skip-helm-dependencies",
           "--chart-yaml-schema", str(etc / "chart_schema.yaml"),
           "--lint-conf", str(etc / "lintconf.yaml")]
    return run("ct lint (chart-testing)", cmd, cwd=chart.parent)


def main(args: list[str]) -> int:
    chart = effective_chart_dir()
    absent = chartdeps.missing()
    if absent:
        names = ", ".join(d.archive for d in absent)
        print(f"[lint] subcharts absent ({names}): linting the umbrella's own templates")
    results = helm_lint(chart)
    results.append(ct_lint(chart))
    existing_yaml = [p for p in YAML_PATHS if (REPO_ROOT / p).exists()]
    results.append(run("yamllint", [sys.executable, "-m", "yamllint", "--strict",
                                    "-c", str(REPO_ROOT / ".yamllint"), *existing_yaml]))
    results.append(run("ruff check", [sys.executable, "-m", "ruff", "check", *PYTHON_PATHS]))
    workflows = sorted((REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
    if workflows:
        # shellcheck/pyflakes off: the verdict must not depend on what else is installed.
        results.append(run("actionlint", [str(require(ACTIONLINT)), "-no-color", "-shellcheck=",
                                          "-pyflakes=", *map(str, workflows)]))
    if not all(results):
        print(f"[lint] {results.count(False)} lint step(s) failed", file=sys.stderr)
        return 1
    print(f"[lint] all {len(results)} lint steps passed")
    return 0
