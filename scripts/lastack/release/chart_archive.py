"""The chart archive of a release, reproducible and readable back.

The archive is reproducible. Helm stamps each file with its modification time, so the chart
is packaged from a copy whose files all carry one time, `SOURCE_DATE_EPOCH` when set, else the
time of the last commit that touched the chart; and Helm writes the subcharts in a random
order, so the archive is rewritten with each chart's files grouped in name order of the
charts (each chart's own files keep Helm's order). The same sources give the same bytes.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import yaml

from lastack.chart import chartdeps
from lastack.chart.render import effective_chart_dir

# Set on partial archives; its value lists the absent subcharts.
PARTIAL_ANNOTATION = "la-stack/missing-subcharts"


class PublishError(RuntimeError):
    """Packaging or publishing cannot go on; the message is one sentence for the user."""


def run(cmd: Sequence[str], env: Mapping[str, str] | None = None, stdin: str | None = None,
        timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), input=stdin, env=dict(env or os.environ),
                          capture_output=True, text=True, timeout=timeout, check=False)


def source_date_epoch(chart_dir: Path) -> int:
    """The one file time of a packaged chart (see the module docstring)."""
    if os.environ.get("SOURCE_DATE_EPOCH", "").strip():
        return int(os.environ["SOURCE_DATE_EPOCH"])
    proc = run(["git", "-C", str(chart_dir), "log", "-1", "--format=%ct", "--", "."])
    stamp = proc.stdout.strip() if proc.returncode == 0 else ""
    return int(stamp) if stamp.isdigit() else 0


def packaging_source(chart_dir: Path, absent: list[chartdeps.Dependency], workdir: Path) -> Path:
    """A private copy of the chart to package (the present-subcharts chart, annotated with
    what it lacks, when some are absent), every file stamped with source_date_epoch. The
    render tier shares `effective_chart_dir`'s copy, so that one is left untouched."""
    tmp = workdir / chart_dir.name
    shutil.copytree(effective_chart_dir(chart_dir) if absent else chart_dir, tmp)
    if absent:
        meta = chartdeps.chart_metadata(tmp)
        missing = ",".join(d.name for d in absent)
        meta.setdefault("annotations", {})[PARTIAL_ANNOTATION] = missing
        (tmp / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    stamp = source_date_epoch(chart_dir)
    lock = tmp / "Chart.lock"
    if lock.exists():
        # Helm dates Chart.lock in the archive by its `generated` field, not the file time.
        doc = yaml.safe_load(lock.read_text())
        doc["generated"] = datetime.fromtimestamp(stamp, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.000000000Z")
        lock.write_text(yaml.safe_dump(doc, sort_keys=True, default_flow_style=False))
    for path in (tmp, *tmp.rglob("*")):
        os.utime(path, (stamp, stamp), follow_symlinks=False)
    return tmp


def archive_members(archive: Path) -> list[str]:
    with tarfile.open(archive) as tar:
        return tar.getnames()


def archive_metadata(archive: Path) -> dict:
    """The Chart.yaml at the top of a chart archive."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "Chart.yaml":
                return yaml.safe_load(tar.extractfile(member).read())
    raise PublishError(f"{archive} is not a Helm chart archive (no top-level Chart.yaml).")


def missing_in_archive(archive: Path) -> list[str]:
    value = (archive_metadata(archive).get("annotations") or {}).get(PARTIAL_ANNOTATION, "")
    return [name for name in value.split(",") if name]


def _chart_path(member: str) -> tuple[str, ...]:
    """The chart a member belongs to: () for the umbrella, ("moodle", "mariadb") for a
    subchart of a subchart."""
    parts = member.split("/")[1:]
    chain: list[str] = []
    while len(parts) > 2 and parts[0] == "charts":
        chain.append(parts[1])
        parts = parts[2:]
    return tuple(chain)


def write_tar_gz(target: Path, entries: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    """A .tar.gz of `entries` (header, file data or None), in that order, with no time in
    the gzip header: the same entries give the same bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as out:
        for info, data in entries:
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    with target.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                  mtime=0) as gz:  # fmt: skip
        gz.write(buffer.getvalue())


def normalise_archive(archive: Path) -> None:
    """Rewrite a Helm archive with its charts in a fixed order (see the module docstring)."""
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None)
                   for m in tar.getmembers()]  # fmt: skip
    order = sorted(range(len(members)), key=lambda i: (_chart_path(members[i][0].name), i))
    write_tar_gz(archive, [members[i] for i in order])
