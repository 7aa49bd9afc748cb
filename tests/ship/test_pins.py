"""Every pin is tracked by Renovate, and each version is written only where Renovate
updates it: renovate.json's custom managers still match, places that pin one dependency
agree, and no other file restates a version it would leave behind."""

from __future__ import annotations

import json
import re
import subprocess
from collections import defaultdict
from dataclasses import dataclass

import pytest
import yaml

from lastack.paths import REPO_ROOT
from lastack.tools import controlplane_build, toolchain

CONFIG = json.loads((REPO_ROOT / "renovate.json").read_text())
# Written by a command from other files, or a record of the past: never edited for a pin.
# (Chart.yaml: its dependencies are the helmv3 manager's, its image list `make annotations`'.)
EXEMPT = re.compile(r"(^|/)go\.sum$|^charts/la-stack/(README\.md|values\.schema\.json|Chart\.lock"
                    r"|Chart\.yaml)$|^CHANGELOG\.md$")
# The words that name a dependency on a line; a line with one of them and the dependency's
# version is a place that pins it.
ALIASES = {
    "github.com/elastic/cloud-on-k8s/v3": ("eck", "elastic-operator"),
    "github.com/cloudnative-pg/cloudnative-pg": ("cnpg", "cloudnative"),
    "apache/superset": ("superset",),
    "fundocker/ralph": ("ralph",),
    "docker.elastic.co/elasticsearch/elasticsearch": ("elasticsearch",),
    "github.com/sigstore/cosign/v2": ("cosign",),
    "psycopg2-binary": ("psycopg2-binary",),
    "elasticsearch-dbapi": ("elasticsearch-dbapi",),
}


@dataclass(frozen=True)
class Pin:
    dep: str
    version: str
    path: str
    line: int

    @property
    def release(self) -> str:
        return self.version.removeprefix("v")


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True).stdout
    return [p for p in out.splitlines() if (REPO_ROOT / p).is_file()]


def text_of(path: str) -> str | None:
    try:
        return (REPO_ROOT / path).read_text()
    except UnicodeDecodeError:
        return None


def file_regex(pattern: str) -> re.Pattern[str]:
    assert pattern.startswith("/") and pattern.endswith("/"), f"{pattern}: use /regex/ form"
    return re.compile(pattern[1:-1])


def py_regex(pattern: str) -> re.Pattern[str]:
    """Renovate writes named groups JavaScript's way."""
    return re.compile(re.sub(r"\(\?<(?![=!])", "(?P<", pattern))


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def custom_pins(manager: dict, files: list[str]) -> dict[str, list[Pin]]:
    """What one custom manager extracts, per match string."""
    patterns = [file_regex(p) for p in manager["managerFilePatterns"]]
    found: dict[str, list[Pin]] = {m: [] for m in manager["matchStrings"]}
    for path in files:
        if not any(p.search(path) for p in patterns) or (text := text_of(path)) is None:
            continue
        for string in manager["matchStrings"]:
            for match in py_regex(string).finditer(text):
                groups = match.groupdict()
                dep = groups.get("depName") or manager.get("depNameTemplate")
                found[string].append(Pin(dep, groups["currentValue"], path,
                                         line_of(text, match.start("currentValue"))))
    return found


def gomod_pins(files: list[str]) -> list[Pin]:
    """The gomod manager's: each `require` of the wrapper modules."""
    pins = []
    for path in files:
        if not path.endswith("go.mod"):
            continue
        text = text_of(path) or ""
        for match in re.finditer(r"^(?:require\s+|\t)([\w./-]+) (v[\w.+-]+)$", text, re.M):
            pins.append(Pin(match.group(1), match.group(2), path, line_of(text, match.start(2))))
    return pins


def values_image_pins(files: list[str]) -> list[Pin]:
    """The helm-values manager's: `repository` + `tag` pairs in values files."""
    patterns = [file_regex(p) for p in CONFIG["helm-values"]["managerFilePatterns"]]
    pins = []

    def walk(node: object, path: str, text: str) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("repository"), str) and node.get("tag"):
                tag = str(node["tag"])
                at = re.search(rf"tag: [\"']?{re.escape(tag)}[\"']?$", text, re.M)
                line = line_of(text, at.start()) if at else 0
                pins.append(Pin(node["repository"], tag, path, line))
            for value in node.values():
                walk(value, path, text)
        elif isinstance(node, list):
            for value in node:
                walk(value, path, text)

    for path in files:
        if any(p.search(path) for p in patterns):
            text = text_of(path) or ""
            walk(yaml.safe_load(text), path, text)
    return pins


def stray_lines(pins: list[Pin], texts: dict[str, str]) -> list[str]:
    """Lines that name a dependency of ALIASES with its version, where no manager reads it."""
    tracked = {(p.path, p.line) for p in pins}
    releases = {p.dep: p.release for p in pins if p.dep in ALIASES}
    strays = []
    for path, text in texts.items():
        quoted = False
        for number, line in enumerate(text.splitlines(), start=1):
            # A ```text block quotes what a run printed: a record, not a pin.
            if line.strip().startswith("```"):
                quoted = line.strip() == "```text"
                continue
            if quoted:
                continue
            lowered = line.lower()
            for dep, release in releases.items():
                if (re.search(rf"(?<![\w.]){re.escape(release)}(?!\w|\.\d)", line)
                        and any(a in lowered for a in ALIASES[dep])
                        and (path, number) not in tracked):
                    strays.append(f"{path}:{number}: {dep} {release}: {line.strip()}")
    return strays


@pytest.fixture(scope="module")
def files() -> list[str]:
    return tracked_files()


@pytest.fixture(scope="module")
def pins(files) -> list[Pin]:
    found = [p for m in CONFIG["customManagers"] for ps in custom_pins(m, files).values()
             for p in ps]
    return found + gomod_pins(files) + values_image_pins(files)


class TestRenovateConfig:
    """renovate.json waits before proposing a release and tracks what no built-in sees."""

    def test_should_wait_a_week_for_a_release_to_settle(self):
        assert CONFIG["minimumReleaseAge"] == "7 days"
        assert "helpers:pinGitHubActionDigestsToSemver" in CONFIG["extends"]

    @pytest.mark.parametrize("manager", CONFIG["customManagers"],
                             ids=lambda m: m["description"][:40])
    def test_should_match_in_the_files_it_names(self, manager, files):
        for pattern in manager["managerFilePatterns"]:
            assert any(file_regex(pattern).search(f) for f in files), pattern
        for string, found in custom_pins(manager, files).items():
            assert found, f"no file matches {string}"

    def test_should_read_the_same_pins_the_tools_are_built_at(self, pins):
        versions = {(p.dep, p.version) for p in pins}
        for tool in (toolchain.HELM4, toolchain.HELM3, toolchain.KUBECONFORM,
                     toolchain.ACTIONLINT):
            module = tool.package.split("/cmd/")[0]
            assert (module, tool.version) in versions, tool.name
        eck = ("github.com/elastic/cloud-on-k8s/v3", f"v{controlplane_build.ECK_VERSION}")
        assert eck in versions
        assert ("k8s.io/kubernetes", f"v{toolchain.KUBERNETES_VERSION}") in versions


class TestEachPinOnce:
    """Places that pin one dependency agree, and no other place restates its version."""

    def test_should_agree_wherever_one_dependency_is_pinned(self, pins):
        releases: dict[str, set[str]] = defaultdict(set)
        for pin in pins:
            if pin.dep in ALIASES:
                releases[pin.dep].add(pin.release)
        assert set(releases) == set(ALIASES)
        assert {d: r for d, r in releases.items() if len(r) != 1} == {}

    def test_should_write_a_version_only_where_renovate_updates_it(self, pins, files):
        texts = {f: t for f in files if not EXEMPT.search(f) and (t := text_of(f)) is not None}
        assert stray_lines(pins, texts) == []

    def test_should_catch_a_restated_version(self, pins):
        release = next(p.release for p in pins if p.dep == "github.com/elastic/cloud-on-k8s/v3")
        texts = {"docs/new.md": f"# New\n\nInstall the ECK operator {release} first.\n"}
        assert stray_lines(pins, texts) == [
            f"docs/new.md:3: github.com/elastic/cloud-on-k8s/v3 {release}: "
            f"Install the ECK operator {release} first."]
