"""Chart.lock digests Helm accepts, and `make deps` from the local chart cache."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from lastack.chart import chartdeps
from lastack.tools.toolchain import HELMS
from tests.helpers import HELM_VERSIONS


def write_chart(root: Path, name: str, version: str, deps: list[dict] | None = None) -> Path:
    chart = root / name
    (chart / "templates").mkdir(parents=True)
    meta = {"apiVersion": "v2", "name": name, "version": version}
    if deps:
        meta["dependencies"] = deps
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return chart


def package(chart: Path, dest: Path) -> Path:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    archive = dest / f"{meta['name']}-{meta['version']}.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(chart, arcname=meta["name"])
    return archive


@pytest.fixture
def parent_with_local_dep(tmp_path: Path) -> Path:
    """A parent chart depending on a file:// chart, so `helm dependency build` runs offline."""
    write_chart(tmp_path, "child", "1.2.3")
    dep = {"name": "child", "version": "1.2.3", "repository": "file://../child",
           "condition": "child.enabled"}
    return write_chart(tmp_path, "parent", "0.1.0", [dep])


class TestLockDigest:
    """Our Chart.lock digest is the one Helm computes."""

    @pytest.mark.parametrize("helm", HELM_VERSIONS)
    def test_should_be_accepted_by_helm_dependency_build(self, helm, parent_with_local_dep):
        chartdeps.write_lock(parent_with_local_dep)
        build = [str(HELMS[helm].binary), "dependency", "build", str(parent_with_local_dep)]
        subprocess.run(build, check=True, capture_output=True)
        assert (parent_with_local_dep / "charts" / "child-1.2.3.tgz").exists()

    @pytest.mark.parametrize("helm", HELM_VERSIONS)
    def test_should_be_rejected_by_helm_when_stale(self, helm, parent_with_local_dep):
        chartdeps.write_lock(parent_with_local_dep)
        lock = parent_with_local_dep / "Chart.lock"
        lock.write_text(lock.read_text().replace("sha256:", "sha256:0"))
        build = [str(HELMS[helm].binary), "dependency", "build", str(parent_with_local_dep)]
        assert subprocess.run(build, capture_output=True).returncode != 0

    def test_should_rewrite_only_when_dependencies_change(self, parent_with_local_dep):
        assert chartdeps.write_lock(parent_with_local_dep) is True
        assert chartdeps.write_lock(parent_with_local_dep) is False


class TestVendorFromCache:
    """Offline, archives come from the chart cache; missing ones are named."""

    def test_should_copy_matching_archives(self, tmp_path, monkeypatch, parent_with_local_dep):
        cache = tmp_path / "cache"
        cache.mkdir()
        package(tmp_path / "child", cache)
        monkeypatch.setenv("LA_STACK_CHART_CACHE", str(cache))
        lines = chartdeps.vendor(Path("/nonexistent/helm"), parent_with_local_dep, offline=True)
        assert any(str(cache) in line for line in lines)
        assert not chartdeps.missing(parent_with_local_dep)

    def test_should_name_missing_archives_and_how_to_get_them(
            self, tmp_path, monkeypatch, parent_with_local_dep):
        monkeypatch.setenv("LA_STACK_CHART_CACHE", str(tmp_path / "empty"))
        with pytest.raises(chartdeps.DependencyError) as err:
            chartdeps.vendor(Path("/nonexistent/helm"), parent_with_local_dep, offline=True)
        assert "child-1.2.3.tgz" in str(err.value)
        assert "helm pull" in str(err.value)

    def test_should_refuse_an_archive_of_another_version(
            self, tmp_path, monkeypatch, parent_with_local_dep):
        cache = tmp_path / "cache"
        cache.mkdir()
        impostor = write_chart(tmp_path / "other", "child", "9.9.9")
        package(impostor, cache).rename(cache / "child-1.2.3.tgz")
        monkeypatch.setenv("LA_STACK_CHART_CACHE", str(cache))
        with pytest.raises(chartdeps.DependencyError, match="9.9.9"):
            chartdeps.vendor(Path("/nonexistent/helm"), parent_with_local_dep, offline=True)
