"""chart-testing: `ct lint` passes on the chart; a changed chart needs a version bump."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from lastack.chart import lint, version_check
from lastack.chart.render import effective_chart_dir


def test_ct_lint_should_pass_on_the_chart():
    # The same call `make lint` makes (the parent-only copy when subcharts are absent).
    assert lint.ct_lint(effective_chart_dir())


class TestSemver:
    """Precedence as SemVer 2.0 defines it."""

    @pytest.mark.parametrize(("older", "newer"), [
        ("0.1.0", "0.1.1"), ("0.1.9", "0.2.0"), ("0.9.0", "1.0.0"), ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0-alpha", "1.0.0-alpha.1"), ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-beta.2", "1.0.0-beta.11"), ("1.0.0-rc.1", "1.0.0-rc.1.1"),
    ])
    def test_should_order_versions(self, older, newer):
        assert version_check.compare(older, newer) == -1
        assert version_check.compare(newer, older) == 1

    def test_should_ignore_build_metadata(self):
        assert version_check.compare("1.0.0+a", "1.0.0+b") == 0

    @pytest.mark.parametrize("bad", ["1.0", "v1.0.0", "01.0.0", "1.0.0-"])
    def test_should_reject_non_semver(self, bad):
        with pytest.raises(version_check.VersionError):
            version_check.parse(bad)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout


def commit(repo: Path, *args: str) -> None:
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid",
        "-c", "commit.gpgsign=false", "commit", "-q", *args)


def set_version(chart: Path, version: str) -> None:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = version
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with a chart, committed, and origin/main pointing at that commit."""
    (tmp_path / "charts" / "demo" / "templates").mkdir(parents=True)
    (tmp_path / "ct.yaml").write_text("remote: origin\ntarget-branch: main\n")
    chart = tmp_path / "charts" / "demo"
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: demo\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text("kind: ConfigMap\n")
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    commit(tmp_path, "-m", "chart 0.1.0")
    git(tmp_path, "update-ref", "refs/remotes/origin/main", "HEAD")
    return tmp_path


def check(repo: Path) -> version_check.Outcome:
    return version_check.check(repo, repo / "charts" / "demo")


class TestVersionBump:
    """Against `git merge-base HEAD origin/main`, else the newest tag."""

    def test_should_pass_when_nothing_changed(self, repo):
        assert check(repo).ok

    def test_should_fail_when_a_template_changed_without_a_bump(self, repo):
        (repo / "charts/demo/templates/cm.yaml").write_text("kind: ConfigMap\ndata: {}\n")
        outcome = check(repo)
        assert not outcome.ok
        assert "Chart.yaml" in outcome.message

    def test_should_pass_once_the_version_is_bumped(self, repo):
        (repo / "charts/demo/templates/cm.yaml").write_text("kind: ConfigMap\ndata: {}\n")
        set_version(repo / "charts/demo", "0.1.1")
        assert check(repo).ok

    def test_should_fail_on_a_lower_or_prerelease_version(self, repo):
        (repo / "charts/demo/templates/cm.yaml").write_text("kind: ConfigMap\ndata: {}\n")
        set_version(repo / "charts/demo", "0.1.0-rc.1")
        assert not check(repo).ok

    def test_should_count_a_new_untracked_file_as_a_change(self, repo):
        (repo / "charts/demo/templates/new.yaml").write_text("kind: Secret\n")
        assert not check(repo).ok

    def test_should_compare_with_committed_changes_too(self, repo):
        (repo / "charts/demo/templates/cm.yaml").write_text("kind: ConfigMap\ndata: {}\n")
        commit(repo, "-am", "change without bump")
        assert not check(repo).ok

    def test_should_fall_back_to_the_newest_tag(self, repo):
        git(repo, "update-ref", "-d", "refs/remotes/origin/main")
        git(repo, "tag", "v0.1.0")
        (repo / "charts/demo/templates/cm.yaml").write_text("kind: ConfigMap\ndata: {}\n")
        outcome = check(repo)
        assert not outcome.ok
        assert "tag v0.1.0" in outcome.message

    def test_should_skip_without_any_base(self, repo):
        git(repo, "update-ref", "-d", "refs/remotes/origin/main")
        (repo / "charts/demo/templates/cm.yaml").write_text("kind: ConfigMap\ndata: {}\n")
        assert check(repo).ok
