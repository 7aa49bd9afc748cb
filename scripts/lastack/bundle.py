"""`make bundle`: one archive with everything an air-gapped site needs to install la-stack.

    la-stack-bundle-<version>/
      la-stack-<version>.tgz       the umbrella, subcharts inside (`make package`)
      subcharts/<name>-<v>.tgz     every subchart archive, for a local chart cache
      values/*.yaml                the ready-made profiles
      images.txt                   every container image the rendered stack runs
      SHA256SUMS                   `sha256sum -c` format, for every other file

Entries are sorted, with fixed owners, modes and timestamps, and the chart archive inside is
reproducible too (lastack.publish), so the same sources give the same bundle, byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from lastack import chartdeps
from lastack.paths import CHART_DIR, VALUES_DIR
from lastack.publish import (
    DIST_DIR,
    PublishError,
    chart_identity,
    env_flag,
    package_chart,
    write_tar_gz,
)
from lastack.render import HelmFailedError, render_chart
from lastack.validation import ObjectInvalidError, SchemaMissingError

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
# ECK's default registry and repository for an Elasticsearch resource without spec.image
# (the operator's --container-registry flag changes the registry part).
ELASTICSEARCH_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch"
# The Superset operator's default repository when a `Superset` resource names only a tag.
SUPERSET_IMAGE = "apache/superset"


def pod_specs(obj: dict) -> Iterator[dict]:
    """The pod specs an object runs, wherever its kind keeps them."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        yield spec
    elif kind == "CronJob":
        yield ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get(
            "spec") or {}
    elif isinstance((spec.get("template") or {}).get("spec"), dict):
        # Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, ReplicationController.
        yield spec["template"]["spec"]
    if kind == "Elasticsearch":
        for node_set in spec.get("nodeSets") or []:
            yield (node_set.get("podTemplate") or {}).get("spec") or {}


def images_of(obj: dict) -> set[str]:
    images = {container["image"]
              for pod in pod_specs(obj)
              for key in CONTAINER_LISTS
              for container in pod.get(key) or []
              if container.get("image")}
    if obj.get("kind") == "Elasticsearch" and obj.get("apiVersion", "").startswith(
            "elasticsearch.k8s.elastic.co/"):
        # The operator picks the image from spec.version unless spec.image overrides it; the
        # rendered manifest never names it, yet the cluster pulls it.
        spec = obj.get("spec") or {}
        images.add(spec.get("image") or f"{ELASTICSEARCH_IMAGE}:{spec['version']}")
    return images | operated_images(obj)


def operated_images(obj: dict) -> set[str]:
    """Images an operator pulls for a resource whose manifest names no container: the
    `Superset` resource's `spec.image`, a CloudNativePG `Cluster`'s `spec.imageName`."""
    spec = obj.get("spec") or {}
    api = obj.get("apiVersion", "")
    if obj.get("kind") == "Superset" and api.startswith("superset.apache.org/"):
        image = spec.get("image") or {}
        return {f"{image.get('repository', SUPERSET_IMAGE)}:{image['tag']}"}
    if obj.get("kind") == "Cluster" and api.startswith("postgresql.cnpg.io/") and spec.get(
            "imageName"):
        return {spec["imageName"]}
    return set()


def stack_images(objects: Iterable[dict]) -> list[str]:
    return sorted(set().union(*(images_of(o) for o in objects)))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_tar_gz(source: Path, target: Path) -> None:
    """A normalised .tar.gz of `source` (its folder name as the top entry)."""
    entries = []
    for path in [source, *sorted(source.rglob("*"))]:
        info = tarfile.TarInfo(str(path.relative_to(source.parent)))
        info.mtime = 0
        if path.is_file():
            data: bytes | None = path.read_bytes()
            info.size, info.mode = len(data), 0o644
        else:
            data, info.type, info.mode = None, tarfile.DIRTYPE, 0o755
        entries.append((info, data))
    write_tar_gz(target, entries)


def build_bundle(dest: Path = DIST_DIR, *, values_files: Sequence[Path] = (),
                 allow_partial: bool = False, helm: str = "helm4",
                 chart_dir: Path = CHART_DIR) -> Path:
    """Write `<dest>/<name>-bundle-<version>.tar.gz`; return its path."""
    name, version = chart_identity(chart_dir)
    with tempfile.TemporaryDirectory(prefix="la-stack-bundle-") as tmp:
        root = Path(tmp) / f"{name}-bundle-{version}"
        root.mkdir()
        package_chart(chart_dir, root, allow_partial=allow_partial, helm=helm)
        subcharts = root / "subcharts"
        subcharts.mkdir()
        absent = chartdeps.missing(chart_dir)
        for dep in chartdeps.dependencies(chart_dir):
            if dep not in absent:
                shutil.copyfile(chartdeps.vendored_dir(chart_dir) / dep.archive,
                                subcharts / dep.archive)
        profiles = root / "values"
        profiles.mkdir()
        for profile in sorted(VALUES_DIR.glob("*.yaml")):
            shutil.copyfile(profile, profiles / profile.name)
        objects = render_chart(values_files=values_files, helm=helm, chart_dir=chart_dir)
        (root / "images.txt").write_text("".join(f"{i}\n" for i in stack_images(objects)))
        files = sorted(p for p in root.rglob("*") if p.is_file())
        (root / "SHA256SUMS").write_text("".join(
            f"{_sha256(p)}  {p.relative_to(root).as_posix()}\n" for p in files))
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / f"{root.name}.tar.gz"
        _write_tar_gz(root, target)
    return target


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack bundle")
    parser.add_argument("-f", "--values", action="append", type=Path, default=[],
                        help="values file the images are listed for (default: chart defaults, "
                             "every component enabled)")
    parser.add_argument("--allow-partial", action="store_true", default=env_flag("ALLOW_PARTIAL"),
                        help="bundle even when subchart archives are absent (ALLOW_PARTIAL=1)")
    parser.add_argument("--dest", type=Path, default=DIST_DIR, help="output folder")
    opts = parser.parse_args(args)
    try:
        target = build_bundle(opts.dest, values_files=opts.values,
                              allow_partial=opts.allow_partial)
    except (PublishError, ObjectInvalidError, SchemaMissingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except HelmFailedError as err:
        print(f"error: helm template failed: {err.stderr.strip()}", file=sys.stderr)
        return 1
    absent = chartdeps.missing()
    note = f" (partial: without {', '.join(d.name for d in absent)})" if absent else ""
    print(f"[bundle] wrote {target}{note}")
    return 0
