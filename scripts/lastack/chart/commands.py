"""Small subcommands: tools, deps, lock, render, test-empty-cache. Each prints one clear
line on failure."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

from lastack.chart import chartdeps
from lastack.paths import CHART_DIR, REPO_ROOT
from lastack.tools import toolchain


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def tools(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack tools")
    parser.add_argument("--quiet", action="store_true", help="print nothing when all is ready")
    opts = parser.parse_args(args)
    try:
        toolchain.ensure_all()
    except toolchain.ToolError as err:
        return _fail(str(err))
    if not opts.quiet:
        for tool in toolchain.GO_TOOLS:
            print(f"{tool.name:<12} {tool.version:<10} {tool.binary}")
    return 0


def deps(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack deps")
    parser.add_argument("--offline", action="store_true",
                        help="skip the chart repositories; use only the local chart cache")
    parser.add_argument("--allow-missing", action="store_true",
                        help="report missing archives but exit 0 (their tests are skipped)")
    opts = parser.parse_args(args)
    try:
        helm = toolchain.require(toolchain.HELM4)
        for line in chartdeps.vendor(helm, offline=opts.offline):
            print(f"[deps] {line}")
    except toolchain.ToolError as err:
        return _fail(str(err))
    except chartdeps.DependencyError as err:
        if not opts.allow_missing:
            return _fail(str(err))
        print(f"[deps] {err}\n[deps] continuing: full-umbrella cases will be skipped")
    return 0


def lock(args: list[str]) -> int:
    changed = chartdeps.write_lock(CHART_DIR)
    print("[lock] Chart.lock rewritten" if changed else "[lock] Chart.lock is up to date")
    return 0


def render(args: list[str]) -> int:
    from lastack.chart.render import HelmFailedError, parse_manifest, render_manifest
    from lastack.chart.validation import ObjectInvalidError, SchemaMissingError, validate_objects

    parser = argparse.ArgumentParser(prog="lastack render")
    parser.add_argument("-f", "--values", action="append", default=[], help="values file")
    parser.add_argument("--helm", choices=["helm3", "helm4"], default="helm4")
    opts = parser.parse_args(args)
    try:
        manifest = render_manifest(values_files=opts.values, helm=opts.helm)
        validate_objects(parse_manifest(manifest))
    except HelmFailedError as err:
        return _fail(err.stderr.strip())
    except (ObjectInvalidError, SchemaMissingError) as err:
        return _fail(str(err))
    sys.stdout.write(manifest)
    return 0


# The tiers whose chart comes from the render harness, and so follows the vendored archives.
EMPTY_CACHE_TIERS = ("tests/render", "tests/live")


def test_empty_cache(args: list[str]) -> int:
    """Run the render and live tiers again as a machine with an empty chart cache would:
    a test whose expectation depends on the vendored archives fails one of the passes."""
    from lastack.chart.render import WITHOUT_SUBCHARTS_ENV, present_subcharts

    if not present_subcharts():
        print("[test] no subchart archive is vendored: the main pass already ran as a "
              "machine with an empty chart cache does")
        return 0
    with tempfile.TemporaryDirectory(prefix="la-stack-empty-cache-") as empty:
        env = dict(os.environ, LA_STACK_CHART_CACHE=empty, **{WITHOUT_SUBCHARTS_ENV: "1"})
        print(f"[test] the render and live tiers again with an empty chart cache ({empty}) "
              "and every subchart archive hidden", flush=True)
        return subprocess.call([sys.executable, "-m", "pytest", *EMPTY_CACHE_TIERS, *args],
                               cwd=REPO_ROOT, env=env)
