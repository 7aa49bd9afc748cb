"""`make package`: one versioned archive of the umbrella with its vendored subcharts,
byte-for-byte reproducible, and never published partial by accident."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from lastack.chart import chartdeps
from lastack.paths import CHART_DIR
from lastack.release.chart_archive import (
    PARTIAL_ANNOTATION,
    PublishError,
    archive_members,
    archive_metadata,
    missing_in_archive,
)
from lastack.release.publish import package_chart, publish_chart
from tests.ship.archives import NAME, VERSION


def rebuilt_partial(tmp_path: Path) -> Path:
    """A tiny chart archive marked as packaged without a subchart."""
    chart = tmp_path / NAME
    chart.mkdir()
    meta = {"apiVersion": "v2", "name": NAME, "version": VERSION,
            "annotations": {PARTIAL_ANNOTATION: "superset-like"}}
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    target = tmp_path / f"{NAME}-{VERSION}.tgz"
    with tarfile.open(target, "w:gz") as tar:
        tar.add(chart, arcname=NAME)
    return target


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def own_file_times(archive: Path) -> set[int]:
    """The file times of la-stack's own files (subcharts keep their archives' times)."""
    with tarfile.open(archive) as tar:
        return {m.mtime for m in tar.getmembers()
                if m.isfile() and not m.name.startswith(f"{NAME}/charts/")}  # fmt: skip


class TestPackage:
    """`make package`: a versioned archive with the vendored subcharts inside."""

    def test_should_name_the_archive_after_the_chart_version(self, packaged):
        assert packaged.name == f"{NAME}-{VERSION}.tgz"
        assert str(archive_metadata(packaged)["version"]) == VERSION

    def test_should_contain_every_vendored_subchart(self, packaged):
        members = set(archive_members(packaged))
        absent = chartdeps.missing()
        for dep in chartdeps.dependencies():
            if dep not in absent:
                assert f"{NAME}/charts/{dep.name}/Chart.yaml" in members, dep.name
        assert missing_in_archive(packaged) == [d.name for d in absent]

    def test_should_give_the_same_bytes_for_the_same_sources(self, tmp_path, monkeypatch):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        first = package_chart(dest=tmp_path / "one", allow_partial=True)
        chart = tmp_path / "la-stack"
        shutil.copytree(CHART_DIR, chart)  # another checkout: other file times
        os.utime(chart / "values.yaml", (1, 1))
        bytecode = chart / "files" / "hooks" / "__pycache__"  # left by the hooks tier's imports
        bytecode.mkdir(exist_ok=True)
        (bytecode / "hooklib.cpython-311.pyc").write_bytes(b"\0")
        again = package_chart(chart, tmp_path / "two", allow_partial=True)
        assert digest(again) == digest(first)  # digests: a failing bytes diff takes ages
        assert own_file_times(first) == {1700000000}

    def test_should_date_the_files_by_the_charts_last_commit(self, packaged, monkeypatch):
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        committed = subprocess.run(
            ["git", "-C", str(CHART_DIR), "log", "-1", "--format=%ct", "--", "."],
            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        assert own_file_times(packaged) == {int(committed)}

    def test_should_refuse_without_every_subchart_unless_partial(self, tmp_path):
        chart = tmp_path / "la-stack"
        shutil.copytree(CHART_DIR, chart)
        vendored = sorted((chart / "charts").glob("*.tgz"))
        if vendored:
            vendored[0].unlink()  # at least one archive is missing, whatever `make deps` did
        missing = chartdeps.missing(chart)
        assert missing
        with pytest.raises(PublishError) as err:
            package_chart(chart, tmp_path / "dist")
        for dep in missing:
            assert dep.archive in str(err.value)
        partial = package_chart(chart, tmp_path / "dist", allow_partial=True)
        assert missing_in_archive(partial) == [d.name for d in missing]


    def test_should_not_publish_a_partial_archive_by_accident(self, tmp_path):
        partial = rebuilt_partial(tmp_path)
        with pytest.raises(PublishError) as err:
            publish_chart(partial, "oci://127.0.0.1:9/charts", plain_http=True)
        assert "superset-like" in str(err.value)
