"""`lastack version-check`: a chart whose files changed must carry a greater version.

The base is `git merge-base HEAD <remote>/<target-branch>` (both read from ct.yaml,
default origin/main), else the newest tag reachable from HEAD. Changes are those of
the working tree against the base, untracked files included, so the check also works
before committing. Versions compare by SemVer 2.0 precedence (build metadata ignored).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from lastack.paths import CHART_DIR, REPO_ROOT

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")


class VersionError(ValueError):
    """A version string is not SemVer 2.0."""


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def parse(version: str) -> tuple[tuple[int, int, int], tuple[str, ...]]:
    match = _SEMVER.match(version.strip())
    if not match:
        raise VersionError(f"{version!r} is not a SemVer 2.0 version (MAJOR.MINOR.PATCH)")
    core = (int(match[1]), int(match[2]), int(match[3]))
    return core, tuple(match[4].split(".")) if match[4] else ()


def _prerelease_key(ids: tuple[str, ...]) -> tuple:
    # No pre-release ranks above any pre-release; numeric identifiers rank below alphanumeric.
    if not ids:
        return (1,)
    return (0, *[(0, int(i), "") if i.isdigit() else (1, 0, i) for i in ids])


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as `a` precedes, equals or follows `b`."""
    (core_a, pre_a), (core_b, pre_b) = parse(a), parse(b)
    key_a, key_b = (core_a, _prerelease_key(pre_a)), (core_b, _prerelease_key(pre_b))
    return (key_a > key_b) - (key_a < key_b)


def bump_patch(version: str) -> str:
    (major, minor, patch), _ = parse(version)
    return f"{major}.{minor}.{patch + 1}"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)


def _target(repo: Path) -> tuple[str, str]:
    """(remote, target branch) from ct.yaml, so both checks agree on what "base" means."""
    config_file = repo / "ct.yaml"
    config = yaml.safe_load(config_file.read_text()) if config_file.exists() else {}
    config = config or {}
    return str(config.get("remote", "origin")), str(config.get("target-branch", "main"))


def find_base(repo: Path = REPO_ROOT) -> tuple[str, str] | None:
    """(commit, how it was found), or None when there is nothing to compare with."""
    remote, branch = _target(repo)
    merge_base = _git(repo, "merge-base", "HEAD", f"{remote}/{branch}")
    if merge_base.returncode == 0 and merge_base.stdout.strip():
        return merge_base.stdout.strip(), f"merge-base with {remote}/{branch}"
    tag = _git(repo, "describe", "--tags", "--abbrev=0", "HEAD")
    if tag.returncode == 0 and tag.stdout.strip():
        name = tag.stdout.strip()
        commit = _git(repo, "rev-list", "-n", "1", name).stdout.strip()
        return commit, f"tag {name}"
    return None


def changed_files(repo: Path, base: str, chart: str) -> list[str]:
    diff = _git(repo, "diff", "--name-only", base, "--", chart)
    if diff.returncode != 0:
        raise RuntimeError(f"git diff against {base} failed: {diff.stderr.strip()}")
    untracked = _git(repo, "ls-files", "--others", "--exclude-standard", "--", chart)
    return sorted(set(diff.stdout.split()) | set(untracked.stdout.split()))


def version_at(repo: Path, commit: str, chart: str) -> str | None:
    shown = _git(repo, "show", f"{commit}:{chart}/Chart.yaml")
    if shown.returncode != 0:
        return None  # the chart did not exist there: any version is new
    return str(yaml.safe_load(shown.stdout)["version"])


def check(repo: Path = REPO_ROOT, chart_dir: Path = CHART_DIR, base: str | None = None) -> Outcome:
    chart = chart_dir.resolve().relative_to(repo.resolve()).as_posix()
    current = str(yaml.safe_load((chart_dir / "Chart.yaml").read_text())["version"])
    parse(current)
    if base is None:
        found = find_base(repo)
        if found is None:
            return Outcome(True, "no base to compare with (no origin/main, no tag): skipped")
        base, how = found
    else:
        how = "given base"
    previous = version_at(repo, base, chart)
    if previous is None:
        return Outcome(True, f"{chart} is new since {base[:12]} ({how}): version {current}")
    changed = changed_files(repo, base, chart)
    if not changed:
        return Outcome(True, f"{chart} unchanged since {base[:12]} ({how})")
    if compare(current, previous) > 0:
        return Outcome(True, f"{chart} changed and its version went {previous} -> {current}")
    return Outcome(False, (
        f"{chart} changed since {base[:12]} ({how}; e.g. {changed[0]}) but its version "
        f"{current} is not greater than {previous}: bump `version` in {chart}/Chart.yaml "
        f"(e.g. to {bump_patch(previous)})."))


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack version-check")
    parser.add_argument("--base", help="commit to compare with (default: merge-base, else tag)")
    opts = parser.parse_args(args)
    try:
        outcome = check(base=opts.base)
    except (VersionError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"[version-check] {outcome.message}", file=sys.stdout if outcome.ok else sys.stderr)
    return 0 if outcome.ok else 1
