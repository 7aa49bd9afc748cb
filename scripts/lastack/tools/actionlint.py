"""`lastack actionlint`: lint .github/workflows with a pinned actionlint.

actionlint is one of the pinned tools `make setup` builds into .tools/bin.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lastack.paths import REPO_ROOT, TOOLS_BIN
from lastack.tools import toolchain

ACTIONLINT = toolchain.ACTIONLINT
WORKFLOWS_DIR = REPO_ROOT / ".github" / "workflows"


def ensure() -> Path:
    """The pinned actionlint binary, built first when missing (raises toolchain.ToolError)."""
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    toolchain.ensure(ACTIONLINT)
    return ACTIONLINT.binary


def workflow_files(directory: Path = WORKFLOWS_DIR) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def run(files: list[Path], binary: Path | None = None) -> subprocess.CompletedProcess[str]:
    binary = binary or ensure()
    # actionlint would run shellcheck/pyflakes only when found on PATH; turning both off
    # keeps the verdict the same on every machine.
    cmd = [str(binary), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, files)]
    return subprocess.run(cmd, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def main(args: list[str]) -> int:
    files = [Path(a) for a in args] or workflow_files()
    if not files:
        print(f"error: no workflow files under {WORKFLOWS_DIR}", file=sys.stderr)
        return 1
    try:
        proc = run(files)
    except toolchain.ToolError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(proc.stdout + proc.stderr)
    if proc.returncode == 0:
        print(f"[actionlint] {len(files)} workflow file(s) clean")
    return proc.returncode
