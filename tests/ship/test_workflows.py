"""The GitHub Actions workflows users get when they fork: linted with a pinned actionlint."""

from __future__ import annotations

import shutil

import pytest
import yaml

from lastack import actionlint, toolchain

WORKFLOWS = actionlint.workflow_files()


@pytest.fixture(scope="module")
def actionlint_binary():
    if not actionlint.ACTIONLINT.binary.exists() and shutil.which("go") is None:
        pytest.skip(f"actionlint {actionlint.ACTIONLINT.version} is not built and `go` is not "
                    "on PATH to build it (install Go 1.25 or newer)")
    try:
        return actionlint.ensure()
    except toolchain.ToolError as err:
        pytest.fail(str(err))


class TestWorkflows:
    """ci (lint + tests), install (kind + ct install), release (package + publish on tag)."""

    def test_should_ship_the_three_workflows(self):
        assert {p.stem for p in WORKFLOWS} == {"ci", "install", "release"}

    def test_should_pass_actionlint(self, actionlint_binary):
        result = actionlint.run(WORKFLOWS, actionlint_binary)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_should_catch_a_broken_workflow(self, actionlint_binary, tmp_path):
        broken = tmp_path / "broken.yaml"
        broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                          "      - run: echo ${{ github.no_such_context }}\n")
        assert actionlint.run([broken], actionlint_binary).returncode != 0

    def test_should_publish_only_from_version_tags(self):
        release = yaml.safe_load((actionlint.WORKFLOWS_DIR / "release.yaml").read_text())
        triggers = release[True] if True in release else release["on"]  # YAML 1.1 reads `on`
        assert triggers == {"push": {"tags": ["v*"]}}
        steps = [s.get("run", "") for s in release["jobs"]["publish"]["steps"]]
        assert any(s.startswith("make package") for s in steps)
        assert any("make publish REGISTRY=" in s and "ghcr.io" in s for s in steps)

    def test_should_install_the_eck_operator_before_ct_install(self):
        install = yaml.safe_load((actionlint.WORKFLOWS_DIR / "install.yaml").read_text())
        runs = [s.get("run", "") for s in install["jobs"]["ct-install"]["steps"]]
        operator = next(i for i, r in enumerate(runs) if "eck-operator" in r and "3.5.0" in r)
        ct = next(i for i, r in enumerate(runs) if "ct install" in r)
        deps = next(i for i, r in enumerate(runs) if "make deps" in r)
        assert operator < ct and deps < ct
