"""Versions pinned in the wrapper modules' go.mod files, read where they are written.

A tool or operator built from a wrapper module under `scripts/go/` has its version in that
go.mod (with go.sum beside it, and Renovate's gomod manager updating both); the Python
side reads it from there instead of restating it.
"""

from __future__ import annotations

import re
from functools import cache

from lastack.paths import REPO_ROOT


class GoModError(LookupError):
    """A wrapper module does not require the module asked for."""


@cache
def required(module_dir: str, module: str) -> str:
    """The version `<module_dir>/go.mod` requires of `module` (with its `v`)."""
    text = (REPO_ROOT / module_dir / "go.mod").read_text()
    found = re.search(rf"^(?:require\s+|\s+){re.escape(module)}\s+(v\S+)", text, re.M)
    if found is None:
        raise GoModError(f"{module_dir}/go.mod does not require {module}")
    return found.group(1)


def release(module_dir: str, module: str) -> str:
    """The required version without its `v` (as the project's releases are named)."""
    return required(module_dir, module).removeprefix("v")
