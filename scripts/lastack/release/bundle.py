"""`make bundle`: one archive with everything an air-gapped site needs to install la-stack.

    la-stack-bundle-<version>/
      la-stack-<version>.tgz       the umbrella, subcharts inside (`make package`)
      subcharts/<name>-<v>.tgz     every subchart archive, for a local chart cache
      values/*.yaml                the ready-made profiles
      operators/, moodle/, python/ the operators' chart and manifest, the logstore_xapi archive,
                                   the Superset drivers' wheels (lastack.release.bundle_sources)
      images.txt                   every container image the rendered stack runs, and the
                                   prerequisite operators' (lastack.chart.images)
      PARTIAL.txt                  only in a partial bundle (ALLOW_PARTIAL=1): what it lacks
      SHA256SUMS                   `sha256sum -c` format, for every other file

Entries are sorted, with fixed owners, modes and timestamps, and the chart archive inside is
reproducible too (lastack.release.publish), so the same sources give the same bundle, byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lastack.chart import chart_values, chartdeps
from lastack.chart.images import OPERATOR_IMAGES, chart_images
from lastack.chart.render import HelmFailedError, helm_binary
from lastack.chart.validation import ObjectInvalidError, SchemaMissingError
from lastack.paths import CHART_DIR, VALUES_DIR
from lastack.release import bundle_sources
from lastack.release.chart_archive import PublishError, write_tar_gz
from lastack.release.publish import (
    DIST_DIR,
    chart_identity,
    env_flag,
    package_chart,
    require_subcharts,
)


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
        absent = require_subcharts(chart_dir, allow_partial)
        lacking = [f"{d.archive}: subchart archive absent" for d in absent]
        try:
            fetched = bundle_sources.gather(root, chart_values.effective(values_files, chart_dir),
                                            helm_binary(helm))
        except ValueError as err:
            raise PublishError(f"{err}; nothing was bundled.") from err
        lacking += [f"{f.target}: {f.missing}" for f in fetched if f.missing]
        if lacking and not allow_partial:
            raise PublishError("the bundle would lack " + "; ".join(lacking)
                               + ". Fix that, or set ALLOW_PARTIAL=1 for a partial bundle.")
        if lacking:
            (root / "PARTIAL.txt").write_text("".join(f"{line}\n" for line in lacking))
        package_chart(chart_dir, root, allow_partial=True, helm=helm)
        subcharts = root / "subcharts"
        subcharts.mkdir()
        for dep in chartdeps.dependencies(chart_dir):
            if dep not in absent:
                shutil.copyfile(chartdeps.vendored_dir(chart_dir) / dep.archive,
                                subcharts / dep.archive)
        if not any(subcharts.iterdir()):
            subcharts.rmdir()  # a partial bundle has no empty folder
        profiles = root / "values"
        profiles.mkdir()
        for profile in sorted(VALUES_DIR.glob("*.yaml")):
            shutil.copyfile(profile, profiles / profile.name)
        images = set(chart_images(values_files, helm=helm, chart_dir=chart_dir))
        (root / "images.txt").write_text("".join(
            f"{i}\n" for i in sorted(images | set(OPERATOR_IMAGES))))
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
    with tarfile.open(target) as tar:
        partial = next((m for m in tar.getmembers() if m.name.endswith("/PARTIAL.txt")), None)
        lacks = tar.extractfile(partial).read().decode().splitlines() if partial else []  # type: ignore[union-attr]
    print(f"[bundle] wrote {target}" + (" (partial)" if lacks else ""))
    for line in lacks:
        print(f"[bundle]   lacks {line}")
    return 0
