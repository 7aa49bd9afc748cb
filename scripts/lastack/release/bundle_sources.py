"""What an air-gapped site needs besides la-stack's charts, gathered for `make bundle`:

    operators/eck-operator-<v>.tgz          the ECK operator chart
    operators/cnpg-<v>.yaml                 CloudNativePG's release manifest
    moodle/logstore_xapi-<release>.tar.gz   the archive `logstoreXapi.plugin.url` names,
                                            checked against `logstoreXapi.plugin.treeSha256`
    python/*.whl                            the drivers Superset's bootstrap script installs,
                                            with their dependencies, for the image's Python

Each file comes from its source (a chart repository, a URL, PyPI), else from the local
chart cache under the same file name; what neither has is reported as missing.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lastack.chart.chart_values import pins_in
from lastack.paths import chart_cache_dir
from lastack.tools.controlplane_build import (
    CNPG_MANIFEST,
    CNPG_VERSION,
    ECK_OPERATOR_REPO,
    ECK_VERSION,
)

# The Python of the Superset image (its Dockerfile's PY_VER) and the platforms nodes run.
SUPERSET_PYTHON = "3.11"
WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux2014_aarch64")
TIMEOUT = 120


@dataclass(frozen=True)
class Fetched:
    """One file of the bundle: where it goes, and why it is not there (None: it is)."""

    target: str
    missing: str | None = None


def download(url: str, dest: Path) -> str | None:
    """Fetch `url` (http, https or file) into `dest`; why it failed, or None."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310 (values name it)
            dest.write_bytes(response.read())
    except (urllib.error.URLError, OSError, ValueError) as err:
        return f"{url}: {getattr(err, 'reason', err)}"
    return None


def from_cache(dest: Path) -> bool:
    cached = chart_cache_dir() / dest.name
    if cached.is_file():
        shutil.copyfile(cached, dest)
        return True
    return False


def tree_sha256(archive: bytes) -> str:
    """SHA-256 over an archive's file tree below its top folder: one `sha256sum` line per
    regular file, sorted by path (what the Moodle sidecar checks)."""
    lines = []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                path = member.name.split("/", 1)[1] if "/" in member.name else member.name
                data = tar.extractfile(member).read()  # type: ignore[union-attr]
                lines.append((path.encode(), hashlib.sha256(data).hexdigest()))
    manifest = "".join(f"{digest}  {path.decode()}\n" for path, digest in sorted(lines))
    return hashlib.sha256(manifest.encode()).hexdigest()


def fetched(root: Path, target: str, get: Callable[[Path], str | None],
            check: Callable[[Path], str | None] = lambda _p: None) -> Fetched:
    """`target` from `get`, else from the chart cache; a file that fails `check` is wrong
    wherever it came from, and is not kept."""
    dest = root / target
    dest.parent.mkdir(parents=True, exist_ok=True)
    failed = get(dest)
    if failed and not from_cache(dest):
        if not any(dest.parent.iterdir()):
            dest.parent.rmdir()  # a partial bundle has no empty folder
        return Fetched(target, f"{failed} (and no {dest.name} in {chart_cache_dir()})")
    wrong = check(dest)
    if wrong:
        dest.unlink()
        raise ValueError(f"{target}: {wrong}")
    return Fetched(target)


def eck_operator(root: Path, helm: Path) -> Fetched:
    def pull(dest: Path) -> str | None:
        proc = subprocess.run(
            [str(helm), "pull", "eck-operator", "--repo", ECK_OPERATOR_REPO, "--version",
             ECK_VERSION, "--destination", str(dest.parent)],
            capture_output=True, text=True, timeout=TIMEOUT, check=False)
        if proc.returncode == 0:
            return None
        return (proc.stderr.strip() or "helm pull failed").splitlines()[-1]

    return fetched(root, f"operators/eck-operator-{ECK_VERSION}.tgz", pull)


def cnpg_manifest(root: Path) -> Fetched:
    return fetched(root, f"operators/cnpg-{CNPG_VERSION}.yaml",
                   lambda dest: download(CNPG_MANIFEST, dest))


def plugin_archive(root: Path, plugin: dict) -> Fetched:
    def check(dest: Path) -> str | None:
        digest = tree_sha256(dest.read_bytes())
        if digest != plugin["treeSha256"]:
            return (f"its file tree has SHA-256 {digest}, not logstoreXapi.plugin.treeSha256 "
                    f"{plugin['treeSha256']}")
        return None

    return fetched(root, f"moodle/logstore_xapi-{plugin['release']}.tar.gz",
                   lambda dest: download(plugin["url"], dest), check)


def driver_wheels(root: Path, bootstrap_script: str) -> Fetched:
    """The pinned drivers and their dependencies as wheels, for every node platform."""
    pins = pins_in(bootstrap_script)
    target = root / "python"
    target.mkdir(parents=True, exist_ok=True)
    for platform in WHEEL_PLATFORMS:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
             "--only-binary=:all:", "--platform", platform, "--python-version", SUPERSET_PYTHON,
             "--implementation", "cp", "--dest", str(target), *pins],
            capture_output=True, text=True, timeout=600, check=False)
        if proc.returncode != 0:
            shutil.rmtree(target)
            last = (proc.stderr.strip().splitlines() or ["pip download failed"])[-1]
            return Fetched("python/", f"pip download {' '.join(pins)} for {platform}: {last}")
    return Fetched("python/")


def gather(root: Path, values: dict, helm: Path) -> list[Fetched]:
    """Everything above into `root`, in bundle order."""
    items = [eck_operator(root, helm), cnpg_manifest(root)]
    if values.get("logstoreXapi", {}).get("enabled"):
        items.append(plugin_archive(root, values["logstoreXapi"]["plugin"]))
    if values.get("superset", {}).get("bootstrapScript"):
        items.append(driver_wheels(root, values["superset"]["bootstrapScript"]))
    return items
