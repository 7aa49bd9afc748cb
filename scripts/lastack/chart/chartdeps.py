"""Subchart archives: the Chart.lock digest, and `make deps` (registry, else local cache).

Upstream charts are not always reachable (air-gapped sites, CI without internet).
`vendor()` tries `helm dependency build` first, then copies `<name>-<version>.tgz`
from the local chart cache, and otherwise names every missing archive.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from lastack.paths import CHART_DIR, TOOLS_DIR, chart_cache_dir
from lastack.tools.helm_env import isolated_helm_env

# Helm marshals dependencies with these JSON field names, in this order, omitting empties.
_DEP_FIELDS = ("name", "version", "repository", "condition", "tags", "enabled",
               "import-values", "alias")
_ALWAYS_PRESENT = {"name", "repository"}


class DependencyError(RuntimeError):
    """Subchart archives are missing or inconsistent."""


@dataclass(frozen=True)
class Dependency:
    name: str
    version: str
    repository: str

    @property
    def archive(self) -> str:
        return f"{self.name}-{self.version}.tgz"


def chart_metadata(chart_dir: Path = CHART_DIR) -> dict:
    return yaml.safe_load((chart_dir / "Chart.yaml").read_text())


def dependencies(chart_dir: Path = CHART_DIR) -> list[Dependency]:
    return [Dependency(d["name"], str(d["version"]), d["repository"])
            for d in chart_metadata(chart_dir).get("dependencies", [])]


def _helm_json(dep: dict) -> dict:
    out = {}
    for key in _DEP_FIELDS:
        value = dep.get(key)
        if key in _ALWAYS_PRESENT or value:
            out[key] = value if value is not None else ""
    return out


def lock_digest(chart_dir: Path = CHART_DIR) -> str:
    """The digest Helm stores in Chart.lock: sha256 of json([requested, locked])."""
    requested = [_helm_json(d) for d in chart_metadata(chart_dir).get("dependencies", [])]
    locked = [_helm_json({"name": d.name, "version": d.version, "repository": d.repository})
              for d in dependencies(chart_dir)]
    # Go's encoding/json: no spaces, HTML-sensitive characters escaped.
    data = json.dumps([requested, locked], separators=(",", ":"), ensure_ascii=False)
    data = data.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return "sha256:" + hashlib.sha256(data.encode()).hexdigest()


def lock_document(chart_dir: Path = CHART_DIR, generated: str | None = None) -> str:
    deps = [{"name": d.name, "repository": d.repository, "version": d.version}
            for d in dependencies(chart_dir)]
    stamp = generated or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    doc = {"dependencies": deps, "digest": lock_digest(chart_dir), "generated": stamp}
    return yaml.safe_dump(doc, sort_keys=True, default_flow_style=False)


def write_lock(chart_dir: Path = CHART_DIR) -> bool:
    """Rewrite Chart.lock when it no longer matches Chart.yaml; True when it changed."""
    lock_path = chart_dir / "Chart.lock"
    if lock_path.exists():
        current = yaml.safe_load(lock_path.read_text())
        if current.get("digest") == lock_digest(chart_dir):
            return False
    lock_path.write_text(lock_document(chart_dir))
    return True


def archive_identity(path: Path) -> tuple[str, str]:
    """(name, version) from the Chart.yaml inside a chart archive."""
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if len(parts) == 2 and parts[1] == "Chart.yaml":
                meta = yaml.safe_load(tar.extractfile(member).read())
                return meta["name"], str(meta["version"])
    raise DependencyError(f"{path} is not a Helm chart archive (no top-level Chart.yaml)")


def vendored_dir(chart_dir: Path = CHART_DIR) -> Path:
    return chart_dir / "charts"


def missing(chart_dir: Path = CHART_DIR) -> list[Dependency]:
    """Dependencies whose archive is not in the chart's charts/ folder."""
    present = vendored_dir(chart_dir)
    return [d for d in dependencies(chart_dir) if not (present / d.archive).exists()]


def try_registry(helm: Path, chart_dir: Path = CHART_DIR, timeout: int = 120) -> str | None:
    """Run `helm dependency build`; None on success, else why it failed."""
    env = isolated_helm_env(TOOLS_DIR / "helm-home")
    try:
        for i, dep in enumerate(d for d in dependencies(chart_dir)
                                if d.repository.startswith("http")):
            subprocess.run([str(helm), "repo", "add", "--force-update", f"dep{i}", dep.repository],
                           env=env, capture_output=True, text=True, timeout=timeout, check=True)
        subprocess.run([str(helm), "dependency", "build", str(chart_dir)],
                       env=env, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.CalledProcessError as err:
        return (err.stderr or err.stdout or "").strip().splitlines()[-1:][0] if (
            err.stderr or err.stdout) else "helm failed"
    except subprocess.TimeoutExpired:
        return "the chart repositories did not answer in time"
    return None


def copy_from_cache(chart_dir: Path = CHART_DIR, cache: Path | None = None) -> list[Dependency]:
    """Copy the missing archives found in the cache; returns those still missing."""
    cache = cache or chart_cache_dir()
    target = vendored_dir(chart_dir)
    target.mkdir(exist_ok=True)
    still_missing = []
    for dep in missing(chart_dir):
        source = cache / dep.archive
        if not source.exists():
            still_missing.append(dep)
            continue
        name, version = archive_identity(source)
        if (name, version) != (dep.name, dep.version):
            raise DependencyError(
                f"{source} holds chart {name} {version}, expected {dep.name} {dep.version}")
        shutil.copyfile(source, target / dep.archive)
    return still_missing


def how_to_provide(deps: list[Dependency], cache: Path) -> str:
    lines = [f"Missing subchart archives (looked in {cache}):"]
    for dep in deps:
        if dep.repository.startswith("oci://"):
            pull = f"helm pull {dep.repository}/{dep.name} --version {dep.version}"
        else:
            pull = f"helm pull {dep.name} --repo {dep.repository} --version {dep.version}"
        lines.append(f"  - {dep.archive}: on a machine with internet run `{pull} -d <dir>`")
    lines.append(f"then copy the archives into {cache} (or set LA_STACK_CHART_CACHE) and rerun "
                 "`make deps`.")
    return "\n".join(lines)


def vendor(helm: Path, chart_dir: Path = CHART_DIR, offline: bool = False) -> list[str]:
    """Make every subchart archive present; returns progress lines, raises when impossible."""
    if not missing(chart_dir):
        return ["all subchart archives are present"]
    notes = []
    if not offline:
        why = try_registry(helm, chart_dir)
        if why is None and not missing(chart_dir):
            return ["helm dependency build fetched every subchart"]
        notes.append(f"chart repositories unreachable ({why}); using the local chart cache")
    cache = chart_cache_dir()
    still = copy_from_cache(chart_dir, cache)
    if still:
        raise DependencyError("\n".join([*notes, how_to_provide(still, cache)]))
    return [*notes, f"copied subchart archives from {cache}"]
