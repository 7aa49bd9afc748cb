"""The pinned tools: each installed binary reports its pinned version; errors name the tool."""

from __future__ import annotations

import dataclasses

import pytest

from lastack.paths import TOOLS_BIN
from lastack.tools import toolchain
from lastack.tools.toolchain import GO_TOOLS, ToolError


class TestPinnedTools:
    """`make setup` installed exactly the pinned versions."""

    @pytest.mark.parametrize("tool", GO_TOOLS, ids=[t.name for t in GO_TOOLS])
    def test_should_report_the_pinned_version(self, tool):
        reported = toolchain.installed_version(tool)
        assert reported is not None, f"{tool.name} is not installed"
        assert tool.version in reported

    def test_should_pin_helm3_at_or_after_3_18_5_and_helm4_at_4_2(self):
        major, minor, patch = (int(x) for x in toolchain.HELM3.version.lstrip("v").split("."))
        assert (major, minor, patch) >= (3, 18, 5) and major == 3
        assert toolchain.HELM4.version.startswith("v4.2.")

    def test_should_ship_ct_configs(self):
        assert toolchain.extras_present(toolchain.CHART_TESTING)

    def test_should_make_helm4_the_default_helm(self):
        link = TOOLS_BIN / "helm"
        assert link.resolve() == toolchain.HELM4.binary.resolve()


class TestToolErrors:
    """A wrong or missing tool is a clear error naming it."""

    def test_should_name_a_missing_tool(self, tmp_path, monkeypatch):
        monkeypatch.setattr(toolchain, "TOOLS_BIN", tmp_path)
        ghost = dataclasses.replace(toolchain.HELM4, name="ghost-helm")
        assert toolchain.installed_version(ghost) is None
        with pytest.raises(ToolError, match="ghost-helm"):
            toolchain.require(ghost)

    def test_should_detect_a_wrong_version(self):
        wrong = dataclasses.replace(toolchain.HELM4, version="v4.0.0")
        assert not toolchain.is_current(wrong)

    def test_should_name_the_tool_when_go_is_missing(self, monkeypatch):
        monkeypatch.setattr(toolchain.shutil, "which", lambda _: None)
        with pytest.raises(ToolError, match="^kubeconform: .*`go` is not on PATH"):
            toolchain.build(toolchain.KUBECONFORM)
