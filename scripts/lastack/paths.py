"""Well-known locations in the repository and beside it."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "la-stack"
VALUES_DIR = REPO_ROOT / "values"
TOOLS_DIR = REPO_ROOT / ".tools"
TOOLS_BIN = TOOLS_DIR / "bin"


def shared_dir() -> Path:
    """The project's shared reference folder (CRDs, design notes), beside the checkout."""
    return Path(os.environ.get("LA_STACK_SHARED", REPO_ROOT.parent / "shared"))


def crds_dir() -> Path:
    """Where the CRD manifests used for offline validation live."""
    override = os.environ.get("LA_STACK_CRDS_DIR")
    return Path(override) if override else shared_dir() / "crds"


def chart_cache_dir() -> Path:
    """The local chart cache: upstream subchart archives for offline and air-gapped use."""
    override = os.environ.get("LA_STACK_CHART_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "la-stack" / "charts"
