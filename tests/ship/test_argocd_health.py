"""The argocd-cm health check for Applications (argocd/argocd-cm-health.yaml), run by a
Lua interpreter as Argo CD runs it, and the copy of it the Argo CD README shows."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from lastack.paths import REPO_ROOT

HEALTH_PATCH = REPO_ROOT / "argocd" / "argocd-cm-health.yaml"
HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"


def lua_literal(value: object) -> str:
    """A Python value as a Lua table constructor (strings via JSON quoting, which Lua reads
    the same for the plain text used here)."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{json.dumps(k)}] = {lua_literal(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(type(value))


def application(health: str | None, sync: str | None = "Synced",
                operation: str | None = None) -> dict:
    status: dict = {}
    if health:
        status["health"] = {"status": health}
    if sync:
        status["sync"] = {"status": sync}
    if operation:
        status["operationState"] = {"phase": operation, "message": "sync failed"}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "status": status}


class TestHealthCheck:
    """The argocd-cm health check that makes waves wait for child Applications."""

    def script(self) -> str:
        return yaml.safe_load(HEALTH_PATCH.read_text())["data"][HEALTH_KEY]

    def test_should_be_documented_as_shipped(self):
        readme = (HEALTH_PATCH.parent / "README.md").read_text()
        indented = "".join(f"    {line}" if line.strip() else line
                           for line in self.script().splitlines(keepends=True))
        assert f"  {HEALTH_KEY}: |\n{indented}" in readme

    @pytest.mark.parametrize(("obj", "expected"), [
        (application(None, None), "Progressing"),
        (application("Healthy"), "Healthy"),
        (application("Healthy", "OutOfSync"), "Progressing"),
        (application("Progressing"), "Progressing"),
        (application("Degraded"), "Degraded"),
        (application("Healthy", "Synced", operation="Failed"), "Degraded"),
        (application("Missing", "OutOfSync"), "Missing"),
    ], ids=["no-status", "healthy-synced", "healthy-outofsync", "progressing", "degraded",
            "sync-failed", "missing"])
    def test_should_gate_on_health_and_sync(self, obj, expected):
        lua = shutil.which("lua5.1") or shutil.which("lua")
        if lua is None:
            pytest.skip("no Lua interpreter: install the Debian package `lua5.1` "
                        "(Argo CD runs health checks with Lua 5.1 semantics)")
        program = (f"local obj = {lua_literal(obj)}\n"
                   f"local function check()\n{self.script()}\nend\n"
                   "local hs = check()\nio.write(hs.status)\n")
        run = subprocess.run([lua, "-"], input=program, capture_output=True, text=True,
                             timeout=30, check=False)
        assert run.returncode == 0, run.stderr
        assert run.stdout == expected
