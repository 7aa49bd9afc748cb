"""Chart archives made for the ship tier's tests from a packaged one."""

from __future__ import annotations

import tarfile
from pathlib import Path

import yaml

from lastack.release.publish import chart_identity

NAME, VERSION = chart_identity()


def rebuilt(archive: Path, dest: Path, **changes: str) -> Path:
    """A copy of a chart archive with some Chart.yaml fields changed."""
    work = dest / "work"
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    chart_yaml = work / NAME / "Chart.yaml"
    meta = yaml.safe_load(chart_yaml.read_text())
    meta.update(changes)
    chart_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
    target = dest / f"{NAME}-{meta['version']}.tgz"
    with tarfile.open(target, "w:gz") as tar:
        tar.add(work / NAME, arcname=NAME)
    return target
