"""`lastack` — the project's small CLI; each subcommand lives in its own module.

Usage: python -m lastack <command> [args...]   (or `lastack <command>` in the venv)
"""

from __future__ import annotations

import importlib
import sys

# name: (module:function under lastack, one-line help). Modules are imported only when
# their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "tools": ("chart.commands:tools", "build and verify the pinned tools into .tools/"),
    "deps": ("chart.commands:deps", "vendor subchart archives (registry, else chart cache)"),
    "lock": ("chart.commands:lock", "rewrite Chart.lock when Chart.yaml's dependencies changed"),
    "render": ("chart.commands:render", "print the validated full render (helm template)"),
    "test-empty-cache": ("chart.commands:test_empty_cache",
                         "render and live tiers again as with an empty chart cache"),
    "lint": ("chart.lint:main", "helm lint --strict (Helm 3 and 4), ct lint, yamllint, ruff"),
    "bench": ("bench.bench:main", "print render timings for Helm 3 and Helm 4"),
    "footprint": ("chart.footprint:main", "CPU/memory/storage per component and profile"),
    "demo": ("demo.demo:main", "the stack on a local cluster with sample data (--dry-run)"),
    "xapi": ("testing.xapi:main", "print synthetic Moodle-like xAPI statements (--count, --seed)"),
    "services": ("testing.services:main", "install Elasticsearch and Ralph for the hooks tier"),
    "bench-ingest": ("bench.bench_ingest:main", "Ralph vs direct _bulk, 22k and 220k"),
    "bench-pipeline": ("bench.bench_pipeline:main", "_bulk with and without the ingest pipeline"),
    "schema": ("chart.schema:main", "write values.schema.json from values.yaml (--check)"),
    "docs": ("chart.docs:main", "write the chart README from its template (--check)"),
    "annotations": ("chart.chart_annotations:main",
                    "write Chart.yaml's Artifact Hub images and changes (--check)"),
    "package": ("release.publish:package", "write dist/la-stack-<version>.tgz + subcharts"),
    "publish": ("release.publish:publish", "helm push to an OCI registry (never overwrites)"),
    "bundle": ("release.bundle:main", "write the air-gapped bundle (charts, images.txt, sums)"),
    "version-check": ("chart.version_check:main", "fail when the chart changed without a bump"),
    "actionlint": ("tools.actionlint:main", "build the pinned actionlint and lint .github/"),
    "screenshots": ("demo.screenshots:main", "photograph the starter Superset dashboards"),
    "cluster-up": ("cluster.controlplane:cluster_up", "start the local control plane (kwok nodes)"),
    "cluster-down": ("cluster.controlplane:cluster_down",
                     "stop the local control plane, drop its data"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [__doc__.strip(), "", "Commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, args = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"lastack: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[name][0].split(":")
    func = getattr(importlib.import_module("lastack." + module_name), func_name)
    return int(func(args) or 0)
