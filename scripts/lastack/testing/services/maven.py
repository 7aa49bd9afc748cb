"""Fetch artifacts from Maven Central with the machine's Maven (`mvn`)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from lastack.testing.services.processes import ServiceError

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


def _mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServiceError("Maven is not installed: apt-get install maven (it fetches from "
                           "Maven Central)")
    return mvn


def _run(argv: list[str], cwd: Path, what: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        raise ServiceError(f"mvn could not fetch {what}:\n{result.stdout[-2000:]}")


def copy(artifact: str, into: Path) -> None:
    """One artifact (`group:name:version[:type]`) into `into`, without its dependencies."""
    into.mkdir(parents=True, exist_ok=True)
    _run([_mvn(), "-B", "-q", f"{DEPENDENCY_PLUGIN}:copy", f"-Dartifact={artifact}",
          f"-DoutputDirectory={into}"], into, artifact)  # fmt: skip


def copy_with_dependencies(artifact: str, into: Path) -> None:
    """A jar (`group:name:version`) and the jars it depends on (compile and runtime scope)
    into `into`."""
    group, name, version = artifact.split(":")
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        pom = Path(work) / "pom.xml"
        pom.write_text(
            "<project><modelVersion>4.0.0</modelVersion><groupId>la-stack</groupId>"
            "<artifactId>fetch</artifactId><version>0</version><dependencies><dependency>"
            f"<groupId>{group}</groupId><artifactId>{name}</artifactId>"
            f"<version>{version}</version></dependency></dependencies></project>\n")
        _run([_mvn(), "-B", "-q", "-f", str(pom), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
              "-DincludeScope=runtime", f"-DoutputDirectory={into}"], Path(work), artifact)
