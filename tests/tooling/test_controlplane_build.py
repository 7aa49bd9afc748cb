"""The local control plane's and the operators' builds: pins agree with the wrapper
modules, and a build that cannot run names what is missing."""

from __future__ import annotations

import dataclasses
import re

import pytest

from lastack.paths import REPO_ROOT
from lastack.tools import controlplane_build
from lastack.tools.controlplane_build import BUILDS, OPERATORS, Build
from lastack.tools.toolchain import ToolError

ALL = BUILDS + OPERATORS


class TestPins:
    @pytest.mark.parametrize("build", ALL, ids=[b.binaries[0] for b in ALL])
    def test_should_require_the_pinned_module_in_its_wrapper(self, build: Build) -> None:
        controlplane_build.check_pins(build)  # raises naming the go.mod otherwise
        go_sum = (REPO_ROOT / build.module_dir / "go.sum").read_text()
        module, version = build.requirement.split()
        assert re.search(rf"^{re.escape(module)} {re.escape(version)} h1:", go_sum, re.M), \
            f"{build.module_dir}/go.sum does not pin {build.requirement}"

    def test_should_refuse_a_wrapper_that_requires_another_version(self) -> None:
        other = dataclasses.replace(controlplane_build.ECK,
                                    requirement="github.com/elastic/cloud-on-k8s/v3 v3.4.0")
        with pytest.raises(ToolError, match="scripts/go/eck/go.mod"):
            controlplane_build.check_pins(other)


class TestErrors:
    def test_should_name_the_operator_when_go_is_missing(self, monkeypatch, tmp_path) -> None:
        monkeypatch.setattr(controlplane_build.shutil, "which", lambda _: None)
        with pytest.raises(ToolError, match="^elastic-operator: .*`go` is not on PATH"):
            controlplane_build.run_build(controlplane_build.ECK, tmp_path)

    def test_should_not_take_a_binary_of_another_version(self, monkeypatch, tmp_path) -> None:
        monkeypatch.setattr(controlplane_build, "CONTROLPLANE_BIN", tmp_path)
        fake = tmp_path / "elastic-operator"
        fake.write_text("#!/bin/sh\necho 'elastic-operator version 3.4.0+00000000'\n")
        fake.chmod(0o755)
        assert not controlplane_build.is_current(controlplane_build.ECK)
