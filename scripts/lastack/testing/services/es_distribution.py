"""An Elasticsearch integ-test-zip distribution from Maven Central, made runnable here: a
JDK to run it with, unpacked keeping its modes, readable and run by `nobody` when we are
root. Shared by the hooks tier's Elasticsearch 8 and its older ingest node."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lastack.testing.services import maven
from lastack.testing.services.processes import ServiceError

MIN_JAVA, MAX_JAVA = 17, 25
NOBODY = 65534  # Elasticsearch refuses to run as root; as root we drop to nobody
STAMP_FILE = ".la-stack-installed"  # in an installed home: what it was installed with


def java_major(java_home: Path) -> int | None:
    try:
        result = subprocess.run(
            [str(java_home / "bin" / "java"), "-version"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)', result.stderr)
    return int(match.group(1)) if match else None


def find_java() -> tuple[Path, int]:
    """The JDK to run Elasticsearch with: $LA_STACK_ES_JAVA_HOME, else the `java` on PATH,
    else any JDK under /usr/lib/jvm or /opt; it must have javac and be Java 17 to 25."""
    candidates: list[Path] = []
    if os.environ.get("LA_STACK_ES_JAVA_HOME"):
        candidates.append(Path(os.environ["LA_STACK_ES_JAVA_HOME"]))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent.parent)
    for root in (Path("/usr/lib/jvm"), Path("/opt")):
        if root.is_dir():
            candidates += sorted(p for p in root.iterdir() if (p / "bin" / "javac").exists())
    for home in candidates:
        if not (home / "bin" / "javac").exists():
            continue
        major = java_major(home)
        if major is not None and MIN_JAVA <= major <= MAX_JAVA:
            return home, major
    raise ServiceError(
        f"no JDK {MIN_JAVA}-{MAX_JAVA} with javac found (looked at $LA_STACK_ES_JAVA_HOME, "
        "java on PATH, /usr/lib/jvm, /opt); install one: apt-get install openjdk-17-jdk-headless"
    )


def stamped(home: Path, stamp: str) -> bool:
    """Whether `home` was installed with exactly `stamp`."""
    marker = home / STAMP_FILE
    return marker.exists() and marker.read_text() == stamp


def install_distribution(artifact: str, home: Path, stamp: str, extend: Callable[[], None],
                         log: Any) -> Path:
    """Unpack `artifact` at `home` and `extend` it (modules, plugins), then stamp it; nothing
    to do when `home` already carries `stamp`."""
    if stamped(home, stamp):
        return home
    unpack_distribution(artifact, home, log)
    extend()
    (home / STAMP_FILE).write_text(stamp)
    return home


def unpack_distribution(artifact: str, home: Path, log: Any) -> None:
    """Fetch a distribution zip (once) into home's parent and unpack it afresh at `home`."""
    home.parent.mkdir(parents=True, exist_ok=True)
    archive = home.parent / f"{home.name}.zip"
    if not archive.exists():
        log(f"[services] fetching {artifact} from Maven Central")
        maven.copy(artifact, home.parent)
    if home.exists():
        shutil.rmtree(home)
    unzip(archive, home.parent)


def unprivileged(work: Path, argv: list[str]) -> list[str]:
    """Elasticsearch refuses to run as root: as root, hand `work` to nobody and drop to it."""
    if os.geteuid() != 0:
        return argv
    for path in [work, *work.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def unzip(archive: Path, target: Path) -> None:
    """Extract keeping the Unix modes (zipfile alone drops the executable bits)."""
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            path = Path(zipped.extract(info, target))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                path.chmod(mode)


def traversable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can reach `path` (every folder above it x)."""
    return all(parent.stat().st_mode & 0o001 for parent in [path, *path.parents])


def home_readable_by(uid: int, home: Path, version: str) -> Path:
    """`home`, or a copy of it another user can read: as root, Elasticsearch runs as
    `uid`, and a checkout under a private folder (mktemp -d is 0700) is out of its reach."""
    if traversable_by_others(home):
        return home
    # Named after the installed tree, so a changed install (e.g. our REST module) is recopied.
    listing = sorted(f"{p.relative_to(home)}:{p.stat().st_size}" for p in home.rglob("*")
                     if p.is_file())
    digest = hashlib.sha256("\n".join(listing).encode()).hexdigest()[:12]
    shared = Path(tempfile.gettempdir()) / f"la-stack-elasticsearch-{version}-{uid}-{digest}"
    marker = shared / ".la-stack-complete"
    if not marker.exists():
        shutil.rmtree(shared, ignore_errors=True)
        shutil.copytree(home, shared, symlinks=True)
        for path in [shared, *shared.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o055 if path.is_dir() else
                           path.stat().st_mode | 0o044)
        marker.touch()
    return shared


@dataclass(frozen=True)
class NodeDirs:
    """A node's own folders below a fresh working directory, and the Java that runs it; the
    distribution itself stays read-only."""

    home: Path
    java_home: Path
    java_version: int
    work: Path
    conf: Path
    data: Path
    logs: Path
    tmp: Path

    @classmethod
    def prepare(cls, home: Path, version: str, prefix: str) -> NodeDirs:
        if os.geteuid() == 0:
            home = home_readable_by(NOBODY, home, version)
        java_home, java_version = find_java()
        work = Path(tempfile.mkdtemp(prefix=prefix))
        conf, data, logs, tmp = (work / d for d in ("config", "data", "logs", "tmp"))
        shutil.copytree(home / "config", conf)
        for directory in (data, logs, tmp):
            directory.mkdir()
        return cls(home, java_home, java_version, work, conf, data, logs, tmp)

    def write_settings(self, settings: dict[str, Any]) -> None:
        """elasticsearch.yml, each value as JSON (valid YAML scalars)."""
        (self.conf / "elasticsearch.yml").write_text(
            "".join(f"{key}: {json.dumps(value)}\n" for key, value in settings.items()))
