"""Build the local control plane's binaries from pinned Go modules into `.tools/controlplane/bin`.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok and the operators the
chart needs (ECK's `elastic-operator`, CloudNativePG's `cnpg-manager`)
are built from wrapper modules under `scripts/go/` (their go.mod/go.sum pin every
dependency), only when the live tier or `make cluster-up` needs them: `make setup` stays
quick. A binary that is present and reports its pinned version is not rebuilt.
"""

from __future__ import annotations

import fcntl
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lastack.paths import REPO_ROOT, TOOLS_DIR
from lastack.tools.gomod import release, required
from lastack.tools.toolchain import KUBERNETES_VERSION, ToolError, go_env

CONTROLPLANE_DIR = TOOLS_DIR / "controlplane"
CONTROLPLANE_BIN = CONTROLPLANE_DIR / "bin"

# Each version is the one its wrapper module's go.mod requires.
ETCD_VERSION = release("scripts/go/etcd", "go.etcd.io/etcd/server/v3")
KWOK_VERSION = required("scripts/go/kwok", "sigs.k8s.io/kwok")
# The ECK operator: built for the live tier, and the eck-operator chart `make demo` installs
# and the chart README names (the chart and the operator share version numbers).
ECK_VERSION = release("scripts/go/eck", "github.com/elastic/cloud-on-k8s/v3")
CNPG_VERSION = release("scripts/go/cnpg", "github.com/cloudnative-pg/cloudnative-pg")
# Where users get those releases: the eck-operator chart, CloudNativePG's release manifest
# (CRDs, operator, webhooks).
ECK_OPERATOR_REPO = "https://helm.elastic.co"
CNPG_MANIFEST = ("https://raw.githubusercontent.com/cloudnative-pg/cloudnative-pg/"
                 f"release-{CNPG_VERSION.rsplit('.', 1)[0]}/releases/cnpg-{CNPG_VERSION}.yaml")

_KUBE_VERSION_PKG = "k8s.io/component-base/version"
_KUBE_MAJOR, _KUBE_MINOR = KUBERNETES_VERSION.split(".")[:2]


@dataclass(frozen=True)
class Build:
    """One `go build` in one wrapper module, producing one or more commands."""

    module_dir: str  # relative to the repository
    requirement: str  # "module version" that must appear in the wrapper's go.mod
    packages: tuple[str, ...]
    version: str  # what `<binary> <version_args>` must mention
    ldflags: tuple[str, ...] = ()
    version_args: tuple[str, ...] = ("--version",)
    # Command names, when a package's last path element is not one (ECK's is `cmd`).
    names: tuple[str, ...] = ()

    @property
    def binaries(self) -> tuple[str, ...]:
        return self.names or tuple(self.binary_name(p) for p in self.packages)

    @staticmethod
    def binary_name(package: str) -> str:
        return "etcd" if package.startswith("go.etcd.io/etcd/server") else package.rsplit("/", 1)[1]


KUBERNETES = Build(
    module_dir="scripts/go/controlplane",
    requirement=f"k8s.io/kubernetes v{KUBERNETES_VERSION}",
    packages=tuple(f"k8s.io/kubernetes/cmd/{c}"
                   for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")),
    version=f"v{KUBERNETES_VERSION}",
    # Without these the binaries say v0.0.0 and Helm's kubeVersion check fails.
    ldflags=(f"-X {_KUBE_VERSION_PKG}.gitVersion=v{KUBERNETES_VERSION}",
             f"-X {_KUBE_VERSION_PKG}.gitMajor={_KUBE_MAJOR}",
             f"-X {_KUBE_VERSION_PKG}.gitMinor={_KUBE_MINOR}",
             f"-X {_KUBE_VERSION_PKG}.gitTreeState=clean"),
)
ETCD = Build(
    module_dir="scripts/go/etcd",
    requirement=f"go.etcd.io/etcd/server/v3 v{ETCD_VERSION}",
    packages=("go.etcd.io/etcd/server/v3",),
    version=ETCD_VERSION,
)
KWOK = Build(
    module_dir="scripts/go/kwok",
    requirement=f"sigs.k8s.io/kwok {KWOK_VERSION}",
    packages=("sigs.k8s.io/kwok/cmd/kwok",),
    version=KWOK_VERSION,
)
BUILDS: tuple[Build, ...] = (ETCD, KUBERNETES, KWOK)

_ECK_ABOUT_PKG = "github.com/elastic/cloud-on-k8s/v3/pkg/about"
ECK = Build(
    module_dir="scripts/go/eck",
    requirement=f"github.com/elastic/cloud-on-k8s/v3 v{ECK_VERSION}",
    packages=("github.com/elastic/cloud-on-k8s/v3/cmd",),
    names=("elastic-operator",),
    version=ECK_VERSION,
    # Unstamped, it reports 0.0.0-SNAPSHOT and the version check could not tell builds apart.
    ldflags=(f"-X {_ECK_ABOUT_PKG}.version={ECK_VERSION}",
             f"-X {_ECK_ABOUT_PKG}.buildSnapshot=false"),
)
CNPG = Build(
    module_dir="scripts/go/cnpg",
    requirement=f"github.com/cloudnative-pg/cloudnative-pg v{CNPG_VERSION}",
    packages=("github.com/cloudnative-pg/cloudnative-pg/cmd/manager",),
    names=("cnpg-manager",),
    version=CNPG_VERSION,
    version_args=("version",),
)
# Started by the local control plane (`operators`), so built on its first use.
OPERATORS: tuple[Build, ...] = (ECK, CNPG)


def log(message: str) -> None:
    print(f"[controlplane] {message}", file=sys.stderr, flush=True)


def binary(name: str) -> Path:
    return CONTROLPLANE_BIN / name


def reported_version(name: str, version_args: Sequence[str] = ("--version",)) -> str | None:
    path = binary(name)
    if not path.exists():
        return None
    try:
        out = subprocess.run([str(path), *version_args], capture_output=True, text=True,
                             timeout=60, check=False)
    except OSError:
        return None
    return (out.stdout + out.stderr).strip()


def is_current(build: Build) -> bool:
    for name in build.binaries:
        reported = reported_version(name, build.version_args)
        # Word-bounded, so 3.6.16 is not mistaken for 3.6.1.
        if reported is None or not re.search(rf"\b{re.escape(build.version)}\b", reported):
            return False
    return True


def check_pins(build: Build) -> None:
    """The wrapper go.mod must require what this file pins, or the version check lies."""
    go_mod = REPO_ROOT / build.module_dir / "go.mod"
    text = go_mod.read_text()
    if not re.search(rf"^\s*(require\s+)?{re.escape(build.requirement)}\b", text, re.M):
        raise ToolError(f"{go_mod}: expected `require {build.requirement}`; update both together")


def _heartbeat(label: str, started: float, done: threading.Event) -> None:
    # `go build` prints nothing while compiling: say it is alive every 30 s.
    while not done.wait(30):
        log(f"still building {label} ({time.monotonic() - started:.0f} s)")


def run_build(build: Build, out_dir: Path, env: dict[str, str] | None = None) -> float:
    """Build `build` into out_dir; returns the wall time. Raises ToolError naming the binary."""
    go = shutil.which("go")
    label = ", ".join(build.binaries)
    if go is None:
        raise ToolError(f"{label}: cannot build: `go` is not on PATH (install Go 1.25 or newer)")
    check_pins(build)
    out_dir.mkdir(parents=True, exist_ok=True)
    build_env = go_env() if env is None else env
    # The wrapper go.sum is committed: refuse to resolve anything new during a build.
    build_env["GOFLAGS"] = "-mod=readonly -buildvcs=false"
    build_env["CGO_ENABLED"] = "0"
    ldflags = " ".join(("-s", "-w", *build.ldflags))
    out = f"{out_dir}/" if len(build.packages) > 1 else str(out_dir / build.binaries[0])
    cmd = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", out, *build.packages]
    log(f"building {label} {build.version} from {build.module_dir} (cold: several minutes)")
    started = time.monotonic()
    done = threading.Event()
    ticker = threading.Thread(target=_heartbeat, args=(label, started, done), daemon=True)
    ticker.start()
    try:
        proc = subprocess.run(cmd, cwd=REPO_ROOT / build.module_dir, env=build_env,
                              capture_output=True, text=True, check=False)
    finally:
        done.set()
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise ToolError(f"{label}: `{' '.join(cmd)}` failed in {build.module_dir}:\n"
                        f"{proc.stderr.strip()[-4000:]}")
    log(f"built {label} in {elapsed:.0f} s")
    return elapsed


def ensure(builds: Sequence[Build] = BUILDS + OPERATORS) -> dict[str, Path]:
    """Build whatever is missing or stale; returns {binary name: path}."""
    CONTROLPLANE_DIR.mkdir(parents=True, exist_ok=True)
    # Two test sessions starting at once (several developers, one tree) build once.
    with open(CONTROLPLANE_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for build in builds:
            if is_current(build):
                continue
            run_build(build, CONTROLPLANE_BIN)
            if not is_current(build):
                wrong = {n: reported_version(n, build.version_args) for n in build.binaries}
                raise ToolError(f"expected {build.version}, the built binaries report {wrong}")
    return {name: binary(name) for build in builds for name in build.binaries}


def main(args: list[str]) -> int:
    """Build (or verify) the binaries, the operators' included, print where they are."""
    builds = BUILDS + OPERATORS
    try:
        paths = ensure(builds)
    except ToolError as err:
        print(f"controlplane: {err}", file=sys.stderr)
        return 1
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":  # python -m lastack.tools.controlplane_build
    sys.exit(main(sys.argv[1:]))
