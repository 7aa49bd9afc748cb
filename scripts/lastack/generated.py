"""Files the tooling generates and commits: write them, or check the committed copy."""

from __future__ import annotations

import sys
from pathlib import Path

from lastack.paths import REPO_ROOT


def write_or_check(target: Path, text: str, check: bool, make_target: str,
                   root: Path = REPO_ROOT) -> int:
    """Write `text` to `target` when it changed; with `check`, exit 1 if it is stale.
    Messages name the file relative to `root`."""
    shown = target.relative_to(root)
    current = target.read_text() if target.exists() else None
    if check:
        if current != text:
            print(f"error: {shown} is stale; run `make {make_target}`", file=sys.stderr)
            return 1
        return 0
    if current != text:
        target.write_text(text)
        print(f"wrote {shown}")
    return 0
