"""The chart's default values, read where they are written: a version the chart runs
(an image tag, a pip pin in a bootstrap script) is the one the tests install too."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from lastack.paths import CHART_DIR

PIP_PIN = re.compile(r"\b([A-Za-z0-9][A-Za-z0-9_.-]*)==(\d[\w.]*)")


@cache
def _values() -> dict:
    return yaml.safe_load((CHART_DIR / "values.yaml").read_text())


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, mappings merged key by key, as Helm merges values files."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def effective(values_files: Sequence[Path] = (), chart_dir: Path = CHART_DIR) -> dict:
    """The chart's defaults with `values_files` over them, in order."""
    values = yaml.safe_load((chart_dir / "values.yaml").read_text())
    for path in values_files:
        values = deep_merge(values, yaml.safe_load(Path(path).read_text()) or {})
    return values


def default(path: str) -> Any:
    """The default at a dotted path of values.yaml (`superset.image.tag`)."""
    node: Any = _values()
    for key in path.split("."):
        node = node[key]
    return node


def pins_in(script: str) -> tuple[str, ...]:
    """The `name==version` requirements `script` installs, in order, once each."""
    return tuple(dict.fromkeys(f"{n}=={v}" for n, v in PIP_PIN.findall(script)))


def pip_pins(path: str) -> tuple[str, ...]:
    """The pins of the script at a dotted path of values.yaml (see pins_in)."""
    return pins_in(default(path))
