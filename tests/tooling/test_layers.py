"""The tooling package is layered: each module imports only from layers below its own
(or from its own package), and nothing under scripts/ imports the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from lastack.paths import REPO_ROOT

PACKAGE = REPO_ROOT / "scripts" / "lastack"

# Lowest first. Packages on one rank are peers and must not import each other.
LAYERS: dict[str, int] = {
    "paths": 0, "net": 0, "polling": 0,
    "tools": 1,
    "chart": 2,
    "cluster": 3, "release": 3,
    "testing": 4,
    "demo": 5, "bench": 5,
    "cli": 6, "__main__": 7,
}


def layer_of(module: str) -> str:
    """`lastack.chart.render` -> `chart`; `lastack.paths` -> `paths`."""
    return module.split(".")[1]


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found.append((".".join(p for p in parts if p != "__init__"), path))
    return found


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_every_package_has_a_layer() -> None:
    tops = {layer_of(name) for name, _ in modules() if name != "lastack"}
    assert tops <= set(LAYERS), f"give {sorted(tops - set(LAYERS))} a rank in LAYERS"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_imports_point_down(module: str, path: Path) -> None:
    if module == "lastack":
        return
    own = layer_of(module)
    upward = sorted(
        name for name in imported(path)
        if name.startswith("lastack.") and layer_of(name) in LAYERS
        and layer_of(name) != own and LAYERS[layer_of(name)] >= LAYERS[own])
    assert not upward, f"{module} ({own}, rank {LAYERS[own]}) imports {upward}"


@pytest.mark.parametrize(("module", "path"), modules(), ids=[m for m, _ in modules()])
def test_tooling_never_imports_the_tests(module: str, path: Path) -> None:
    assert not {n for n in imported(path) if n == "tests" or n.startswith("tests.")}, module
