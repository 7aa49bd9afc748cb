"""Fixtures of the ship tier: the packaged chart, and a real OCI registry on loopback
(tests/ship/registry.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lastack.release.publish import package_chart
from tests.ship.registry import REGISTRY_PACKAGE, Registry, install_registry, start_registry


@pytest.fixture(scope="session")
def registry_binary() -> str:
    found = shutil.which("docker-registry")
    if found:
        return found
    why = install_registry()
    found = shutil.which("docker-registry")
    if found is None:
        pytest.skip(f"the OCI registry is not installed ({why}): install the Debian package "
                    f"`{REGISTRY_PACKAGE}` (e.g. `apt-get install {REGISTRY_PACKAGE}`)")
    return found


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The umbrella packaged with whatever subcharts `make deps` provided."""
    return package_chart(dest=tmp_path_factory.mktemp("dist"), allow_partial=True)


@pytest.fixture(scope="module")
def registry(registry_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An anonymous registry for the whole module."""
    running = start_registry(registry_binary, tmp_path_factory.mktemp("registry"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def auth_registry(registry_binary: str,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that wants a username and password (htpasswd, bcrypt)."""
    running = start_registry(registry_binary, tmp_path_factory.mktemp("auth-registry"),
                             auth=("publisher", "s3cret-Only-For-This-Test"))
    yield running
    running.stop()
