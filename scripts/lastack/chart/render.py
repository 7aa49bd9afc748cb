"""`render_chart`: run `helm template`, parse, validate, cache.

When some subchart archives are absent (an offline machine without a chart cache),
the chart is rendered from a temporary copy whose Chart.yaml lists only the
subcharts that are present, so the umbrella's own templates are always tested.
`LA_STACK_WITHOUT_SUBCHARTS=1` makes every archive of the chart count as absent: `make
test` uses it to run the render and live tiers as a machine with an empty chart cache
would, so no test's verdict can depend on what happens to be vendored.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

import yaml

from lastack.chart import chartdeps
from lastack.chart.validation import validate_objects
from lastack.paths import CHART_DIR
from lastack.tools.toolchain import HELMS, KUBERNETES_VERSION, require

WITHOUT_SUBCHARTS_ENV = "LA_STACK_WITHOUT_SUBCHARTS"
RELEASE_NAME = "la-stack"
NAMESPACE = "la-stack"
ECK_API = "elasticsearch.k8s.elastic.co/v1"
CNPG_API = "postgresql.cnpg.io/v1"
SUPERSET_API = "superset.apache.org/v1alpha1"
# The operator prerequisites a cluster serves before la-stack is installed.
DEFAULT_API_VERSIONS: tuple[str, ...] = (ECK_API, CNPG_API)


class HelmFailedError(subprocess.CalledProcessError):
    """`helm` exited non-zero; `stderr` carries Helm's message."""

    def __str__(self) -> str:
        return f"{' '.join(map(str, self.cmd))} failed:\n{self.stderr}"


def helm_binary(helm: str = "helm4") -> Path:
    return require(HELMS[helm])


def subcharts_hidden(chart_dir: Path = CHART_DIR) -> bool:
    """Whether this run treats the chart's vendored archives as absent."""
    return os.environ.get(WITHOUT_SUBCHARTS_ENV) == "1" and chart_dir == CHART_DIR


def absent_subcharts(chart_dir: Path = CHART_DIR) -> list[chartdeps.Dependency]:
    """Dependencies the render cannot use: not vendored, or hidden for this run."""
    if subcharts_hidden(chart_dir):
        return chartdeps.dependencies(chart_dir)
    return chartdeps.missing(chart_dir)


def present_subcharts(chart_dir: Path = CHART_DIR) -> set[str]:
    present = {d.name for d in chartdeps.dependencies(chart_dir)}
    return present - {d.name for d in absent_subcharts(chart_dir)}


def missing_subcharts_reason(names: Iterable[str], chart_dir: Path = CHART_DIR) -> str | None:
    """Why a case needing these subcharts cannot run, or None when they are all present."""
    absent = [d for d in absent_subcharts(chart_dir) if d.name in set(names)]
    if not absent:
        return None
    archives = ", ".join(d.archive for d in absent)
    if subcharts_hidden(chart_dir):
        return (f"subchart archives hidden by {WITHOUT_SUBCHARTS_ENV}=1 ({archives}): this "
                "pass runs as a machine with an empty chart cache would")
    return (f"subchart archives absent ({archives}): run `make deps` online, or put them in "
            "$LA_STACK_CHART_CACHE and run `make deps`")


@cache
def _parent_only_copy(chart_dir: Path, keep: frozenset[str]) -> Path:
    """A temporary copy of the chart listing only the subcharts in `keep`."""
    tmp = Path(tempfile.mkdtemp(prefix="la-stack-render-")) / chart_dir.name
    # Only the chart's own charts/ (vendored subcharts) is left out: files/ may hold a
    # folder of the same name.
    shutil.copytree(chart_dir, tmp, ignore=lambda d, _: ["charts"] if Path(d) == chart_dir else [])
    meta = chartdeps.chart_metadata(tmp)
    meta["dependencies"] = [d for d in meta.get("dependencies", []) if d["name"] in keep]
    if not meta["dependencies"]:
        meta.pop("dependencies")
    (tmp / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (tmp / "Chart.lock").unlink(missing_ok=True)
    if keep:
        (tmp / "charts").mkdir()
        for dep in chartdeps.dependencies(chart_dir):
            if dep.name in keep:
                shutil.copyfile(chart_dir / "charts" / dep.archive, tmp / "charts" / dep.archive)
    return tmp


def effective_chart_dir(
    chart_dir: Path = CHART_DIR, subcharts: Iterable[str] | None = None,
) -> Path:
    """The chart to render: itself when every subchart is present and wanted, else a copy
    listing only the wanted subcharts that are present (`subcharts=()`: the parent alone)."""
    present = present_subcharts(chart_dir)
    keep = present if subcharts is None else present & set(subcharts)
    if not absent_subcharts(chart_dir) and keep == present:
        return chart_dir
    return _parent_only_copy(chart_dir, frozenset(keep))


def _template_command(
    helm: str, chart: Path, values_files: Sequence[Path], name: str, namespace: str,
    show_only: Sequence[str], api_versions: Sequence[str], kube_version: str,
    extra_args: Sequence[str],
) -> list[str]:
    cmd = [str(helm_binary(helm)), "template", name, str(chart), "--namespace", namespace,
           "--kube-version", kube_version]
    for values_file in values_files:
        cmd += ["--values", str(values_file)]
    for api in api_versions:
        cmd += ["--api-versions", api]
    for template in show_only:
        cmd += ["--show-only", template]
    return cmd + list(extra_args)


@cache
def _render_cached(key: str) -> tuple[str, ...]:
    spec = json.loads(key)
    with tempfile.TemporaryDirectory(prefix="la-stack-values-") as tmp:
        files = [Path(p) for p in spec["values_files"]]
        if spec["values"] is not None:
            inline = Path(tmp) / "values.yaml"
            inline.write_text(yaml.safe_dump(spec["values"]))
            files.append(inline)
        cmd = _template_command(
            spec["helm"], Path(spec["chart"]), files, spec["name"], spec["namespace"],
            spec["show_only"], spec["api_versions"], spec["kube_version"], spec["extra_args"])
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HelmFailedError(proc.returncode, cmd, proc.stdout, proc.stderr)
    return (proc.stdout,)


def render_manifest(
    values: dict | None = None, *, show_only: Sequence[str] = (), values_files: Sequence[Path] = (),
    api_versions: Sequence[str] = DEFAULT_API_VERSIONS, kube_version: str = KUBERNETES_VERSION,
    helm: str = "helm4", name: str = RELEASE_NAME, namespace: str = NAMESPACE,
    chart_dir: Path = CHART_DIR, extra_args: Sequence[str] = (), use_cache: bool = True,
    subcharts: Iterable[str] | None = None,
) -> str:
    """The raw YAML stream `helm template` prints (cached per identical input).

    `subcharts` limits the render to those subcharts (`()`: the umbrella's own templates).
    """
    chart = effective_chart_dir(chart_dir, subcharts)
    key = json.dumps({
        "values": values, "show_only": list(show_only),
        "values_files": [str(Path(p).resolve()) for p in values_files],
        "values_digest": [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in values_files],
        "api_versions": list(api_versions), "kube_version": kube_version, "helm": helm,
        "name": name, "namespace": namespace, "chart": str(chart),
        "extra_args": list(extra_args),
    }, sort_keys=True)
    render = _render_cached if use_cache else _render_cached.__wrapped__
    return render(key)[0]


def parse_manifest(manifest: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def render_chart(
    values: dict | None = None, *, show_only: Sequence[str] = (), values_files: Sequence[Path] = (),
    api_versions: Sequence[str] = DEFAULT_API_VERSIONS, kube_version: str = KUBERNETES_VERSION,
    helm: str = "helm4", name: str = RELEASE_NAME, namespace: str = NAMESPACE,
    chart_dir: Path = CHART_DIR, validate: bool = True, extra_args: Sequence[str] = (),
    subcharts: Iterable[str] | None = None,
) -> list[dict]:
    """Render the chart and return its objects, each validated against its schema.

    Raises HelmFailedError (with Helm's stderr) when Helm fails, and
    ObjectInvalidError / SchemaMissingError when an object does not validate.
    The returned objects are copies: tests may change them freely.
    """
    manifest = render_manifest(
        values, show_only=show_only, values_files=values_files, api_versions=api_versions,
        kube_version=kube_version, helm=helm, name=name, namespace=namespace,
        chart_dir=chart_dir, extra_args=extra_args, subcharts=subcharts)
    objects = parse_manifest(manifest)
    if validate:
        validate_objects(objects, kube_version)
    return copy.deepcopy(objects)


def lookup(objects: Iterable[dict]) -> dict[tuple[str, str], dict]:
    """{(kind, name): object}, for assertions on a whole release."""
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def find(objects: Iterable[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects
            if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
