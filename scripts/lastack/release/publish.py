"""`make package` and `make publish`: the versioned umbrella archive and its OCI push.

`package` writes `dist/<name>-<version>.tgz` with every vendored subchart inside. When
some subchart archives are absent it refuses, naming them, unless a partial archive is
asked for; a partial archive records what it lacks in a Chart.yaml annotation, and
`publish` refuses it under the same rule, so a partial chart never reaches a registry
by accident.

The archive is reproducible (see `lastack.release.chart_archive`).

`publish` pushes with Helm 4. A chart version, once published, is never overwritten:
the registry is asked for that version first. Credentials come from
REGISTRY_USERNAME / REGISTRY_PASSWORD and reach Helm on stdin only.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from lastack.chart import chartdeps
from lastack.chart.render import helm_binary
from lastack.paths import CHART_DIR, REPO_ROOT
from lastack.release.chart_archive import (
    PublishError,
    archive_members,
    missing_in_archive,
    normalise_archive,
    packaging_source,
    run,
)

DIST_DIR = REPO_ROOT / "dist"
# `helm push` ends with `Digest: sha256:…` (Helm 3 and 4).
PUSH_DIGEST = re.compile(r"^Digest: (sha256:[0-9a-f]{64})$", re.M)


def chart_identity(chart_dir: Path = CHART_DIR) -> tuple[str, str]:
    meta = chartdeps.chart_metadata(chart_dir)
    return meta["name"], str(meta["version"])


def archive_path(chart_dir: Path = CHART_DIR, dest: Path = DIST_DIR) -> Path:
    name, version = chart_identity(chart_dir)
    return dest / f"{name}-{version}.tgz"


def require_subcharts(chart_dir: Path = CHART_DIR, allow_partial: bool = False
                      ) -> list[chartdeps.Dependency]:
    """The absent subcharts; refuses, naming their archives, unless a partial chart is asked
    for (what `make package` and `make bundle` both say)."""
    absent = chartdeps.missing(chart_dir)
    if absent and not allow_partial:
        name, version = chart_identity(chart_dir)
        archives = ", ".join(d.archive for d in absent)
        raise PublishError(
            f"cannot package {name} {version}: subchart archives missing from "
            f"{chartdeps.vendored_dir(chart_dir)}: {archives} (run `make deps`, or set "
            "ALLOW_PARTIAL=1 for an archive without them).")
    return absent


def package_chart(chart_dir: Path = CHART_DIR, dest: Path = DIST_DIR, *,
                  allow_partial: bool = False, helm: str = "helm4") -> Path:
    """Write `<dest>/<name>-<version>.tgz` with the vendored subcharts; return its path."""
    name, version = chart_identity(chart_dir)
    absent = require_subcharts(chart_dir, allow_partial)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{name}-{version}.tgz"
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="la-stack-package-") as workdir:
        source = packaging_source(chart_dir, absent, Path(workdir))
        proc = run([str(helm_binary(helm)), "package", str(source), "--destination", str(dest)])
    if proc.returncode != 0 or not target.exists():
        raise PublishError(f"helm package of {name} {version} failed: {proc.stderr.strip()}")
    normalise_archive(target)
    # Helm packages whatever charts/ holds (expanded into folders): check every present
    # subchart made it in.
    members = set(archive_members(target))
    for dep in chartdeps.dependencies(chart_dir):
        inside = {f"{name}/charts/{dep.archive}", f"{name}/charts/{dep.name}/Chart.yaml"}
        if dep not in absent and not inside & members:
            raise PublishError(f"{target} lacks the subchart {dep.name} {dep.version}.")
    return target


def registry_host(registry: str) -> str:
    if not registry.startswith("oci://") or len(registry) <= len("oci://"):
        raise PublishError(
            f"REGISTRY must look like oci://host/path (got {registry!r}).")
    return registry[len("oci://"):].split("/", 1)[0]


def registry_login(helm: Path, host: str, env: Mapping[str, str], plain_http: bool) -> bool:
    """Log in when REGISTRY_USERNAME is set; False when no credentials were given."""
    username = env.get("REGISTRY_USERNAME", "")
    if not username:
        return False
    password = env.get("REGISTRY_PASSWORD", "")
    if not password:
        raise PublishError("REGISTRY_USERNAME is set but REGISTRY_PASSWORD is empty.")
    cmd = [str(helm), "registry", "login", host, "--username", username, "--password-stdin"]
    if plain_http:
        cmd.append("--plain-http")
    # The password travels on stdin only; Helm's stderr never contains it.
    proc = run(cmd, env=env, stdin=password, timeout=120)
    if proc.returncode != 0:
        raise PublishError(f"helm registry login {host} as {username} failed: "
                           f"{proc.stderr.strip()}")
    return True


def version_exists(helm: Path, ref: str, version: str, env: Mapping[str, str],
                   plain_http: bool) -> bool:
    cmd = [str(helm), "show", "chart", ref, "--version", version]
    if plain_http:
        cmd.append("--plain-http")
    return run(cmd, env=env, timeout=120).returncode == 0


def pushed_digest(output: str) -> str:
    """The manifest digest `helm push` reports (what a signature or attestation names)."""
    found = PUSH_DIGEST.search(output)
    if found is None:
        raise PublishError("helm push reported no digest, so the chart cannot be signed by it.")
    return found.group(1)


def publish_chart(archive: Path, registry: str, *, plain_http: bool = False,
                  allow_partial: bool = False, env: Mapping[str, str] | None = None,
                  helm: str = "helm4") -> tuple[str, str]:
    """Push `archive` to `registry` unless that version is already there; return the ref
    and the pushed manifest's digest."""
    env = dict(os.environ if env is None else env)
    if not archive.exists():
        raise PublishError(f"{archive} does not exist: run `make package` first.")
    host = registry_host(registry)
    name, version = chartdeps.archive_identity(archive)
    lacking = missing_in_archive(archive)
    if lacking and not allow_partial:
        raise PublishError(
            f"{archive.name} was packaged without {', '.join(lacking)}: run `make deps` and "
            "`make package` again, or set ALLOW_PARTIAL=1 to publish it anyway.")
    binary = helm_binary(helm)
    registry_login(binary, host, env, plain_http)
    ref = f"{registry.rstrip('/')}/{name}"
    if version_exists(binary, ref, version, env, plain_http):
        raise PublishError(
            f"{ref} version {version} is already published and is never overwritten: bump "
            "`version` in charts/la-stack/Chart.yaml, then `make package` and `make publish`.")
    cmd = [str(binary), "push", str(archive), registry.rstrip("/")]
    if plain_http:
        cmd.append("--plain-http")
    proc = run(cmd, env=env)
    if proc.returncode != 0:
        raise PublishError(f"helm push {archive.name} to {registry} failed: "
                           f"{proc.stderr.strip()}")
    return f"{ref}:{version}", pushed_digest(proc.stdout + proc.stderr)


def env_flag(name: str) -> bool:
    """A yes/no switch from the environment (ALLOW_PARTIAL=1)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def package(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack package")
    parser.add_argument("--allow-partial", action="store_true",
                        default=env_flag("ALLOW_PARTIAL"),
                        help="package even when subchart archives are absent (ALLOW_PARTIAL=1)")
    parser.add_argument("--dest", type=Path, default=DIST_DIR, help="output folder")
    opts = parser.parse_args(args)
    try:
        target = package_chart(dest=opts.dest, allow_partial=opts.allow_partial)
    except PublishError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    lacking = missing_in_archive(target)
    note = f" (partial: without {', '.join(lacking)})" if lacking else ""
    print(f"[package] wrote {target}{note}")
    return 0


def publish(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack publish")
    parser.add_argument("--registry", default=os.environ.get("REGISTRY", ""),
                        help="oci://host/path (REGISTRY)")
    parser.add_argument("--archive", type=Path, default=None,
                        help="chart archive (default: dist/<name>-<version>.tgz)")
    parser.add_argument("--plain-http", action="store_true",
                        help="talk HTTP to the registry (a loopback test registry)")
    parser.add_argument("--allow-partial", action="store_true",
                        default=env_flag("ALLOW_PARTIAL"),
                        help="publish an archive packaged without some subcharts")
    parser.add_argument("--digest-file", type=Path, default=None,
                        help="write the pushed digest here (what cosign signs)")
    opts = parser.parse_args(args)
    try:
        if not opts.registry:
            raise PublishError("no registry given: run `make publish REGISTRY=oci://host/path`.")
        ref, digest = publish_chart(opts.archive or archive_path(), opts.registry,
                                    plain_http=opts.plain_http, allow_partial=opts.allow_partial)
    except PublishError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if opts.digest_file:
        opts.digest_file.write_text(f"{digest}\n")
    print(f"[publish] pushed {ref} ({digest})")
    return 0
