"""Pinned command-line tools, installed into the repository's gitignored `.tools/`.

Every tool is built from its Go module at a pinned version through the Go module
proxy, so `make setup` works on a machine whose only network is the package
registries. Each install is verified by asking the binary for its version; a
wrong or missing tool is reported by name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lastack.paths import REPO_ROOT, TOOLS_BIN, TOOLS_DIR
from lastack.tools.gomod import release, required

# The Kubernetes version the project targets: schemas, kubectl and the local control plane,
# whose wrapper module pins it.
KUBERNETES_VERSION = release("scripts/go/controlplane", "k8s.io/kubernetes")
# Tools `go install`ed at a version; each line is Renovate's (renovate.json, `# renovate:`).
# renovate: datasource=go depName=helm.sh/helm/v4
HELM4_VERSION = "v4.2.4"
# renovate: datasource=go depName=helm.sh/helm/v3
HELM3_VERSION = "v3.22.0"
# renovate: datasource=go depName=github.com/yannh/kubeconform
KUBECONFORM_VERSION = "v0.7.0"
# renovate: datasource=go depName=github.com/rhysd/actionlint
ACTIONLINT_VERSION = "v1.7.12"
# The cosign the release workflow signs with; built only for the signing test.
# renovate: datasource=go depName=github.com/sigstore/cosign/v2
COSIGN_VERSION = "v2.6.1"


class ToolError(RuntimeError):
    """A pinned tool is missing, failed to build, or reports the wrong version."""


@dataclass(frozen=True)
class GoTool:
    """A tool built with `go install <package>@<version>` (or from a module dir of ours)."""

    name: str
    version: str
    package: str
    version_args: tuple[str, ...]
    ldflags: tuple[str, ...] = ()
    # A module directory inside this repo; `package` is then built from it with `go build`.
    local_module: str | None = None
    extra_files: dict[str, str] = field(default_factory=dict)

    @property
    def binary(self) -> Path:
        return TOOLS_BIN / self.name


HELM4 = GoTool(
    name="helm4",
    version=HELM4_VERSION,
    package="helm.sh/helm/v4/cmd/helm",
    version_args=("version", "--template", "{{.Version}}"),
    ldflags=(f"-X helm.sh/helm/v4/internal/version.version={HELM4_VERSION}",),
)
HELM3 = GoTool(
    name="helm3",
    version=HELM3_VERSION,
    package="helm.sh/helm/v3/cmd/helm",
    version_args=("version", "--template", "{{.Version}}"),
    ldflags=(f"-X helm.sh/helm/v3/internal/version.version={HELM3_VERSION}",),
)
KUBECONFORM = GoTool(
    name="kubeconform",
    version=KUBECONFORM_VERSION,
    package="github.com/yannh/kubeconform/cmd/kubeconform",
    version_args=("-v",),
    ldflags=(f"-X main.version={KUBECONFORM_VERSION}",),
)
CT_VERSION = required("scripts/go/ct", "github.com/helm/chart-testing/v3")
CHART_TESTING = GoTool(
    name="ct",
    version=CT_VERSION,
    package="github.com/helm/chart-testing/v3/ct",
    version_args=("version",),
    ldflags=(f"-X github.com/helm/chart-testing/v3/ct/cmd.Version={CT_VERSION}",),
    # The proxy refuses `go install` of this module path, so a module of ours requires it.
    local_module="scripts/go/ct",
    # ct validates Chart.yaml and lints YAML with configs shipped beside its release binary.
    extra_files={"etc/chart_schema.yaml": "ct", "etc/lintconf.yaml": "ct"},
)
KUBECTL = GoTool(
    name="kubectl",
    version=f"v{KUBERNETES_VERSION}",
    package=".",
    version_args=("version", "--client", "-o", "yaml"),
    ldflags=(f"-X k8s.io/component-base/version.gitVersion=v{KUBERNETES_VERSION}",),
    local_module="scripts/go/kubectl",
)

ACTIONLINT = GoTool(
    name="actionlint",
    version=ACTIONLINT_VERSION,
    package="github.com/rhysd/actionlint/cmd/actionlint",
    version_args=("-version",),
    ldflags=(f"-X github.com/rhysd/actionlint.version={ACTIONLINT_VERSION}",),
)

# Not in GO_TOOLS: `make setup` stays quick; the ship tier builds it when it signs.
COSIGN = GoTool(
    name="cosign",
    version=COSIGN_VERSION,
    package="github.com/sigstore/cosign/v2/cmd/cosign",
    version_args=("version",),
)

GO_TOOLS: tuple[GoTool, ...] = (HELM4, HELM3, KUBECONFORM, CHART_TESTING, KUBECTL, ACTIONLINT)
HELMS: dict[str, GoTool] = {"helm3": HELM3, "helm4": HELM4}


def log(message: str) -> None:
    print(f"[setup] {message}", file=sys.stderr, flush=True)


def installed_version(tool: GoTool) -> str | None:
    """The version string the installed binary reports, or None when it cannot run."""
    if not tool.binary.exists():
        return None
    try:
        out = subprocess.run(
            [str(tool.binary), *tool.version_args],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except OSError:
        return None
    return (out.stdout + out.stderr).strip()


def is_current(tool: GoTool) -> bool:
    reported = installed_version(tool)
    return reported is not None and tool.version in reported and extras_present(tool)


def extras_present(tool: GoTool) -> bool:
    return all((TOOLS_DIR / tool.name / rel).exists() for rel in tool.extra_files)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GOBIN"] = str(TOOLS_DIR / "gobin")
    env.setdefault("CGO_ENABLED", "0")
    env["GOFLAGS"] = "-mod=mod"
    return env


def build(tool: GoTool) -> None:
    go = shutil.which("go")
    if go is None:
        raise ToolError(
            f"{tool.name}: cannot build {tool.package}@{tool.version}: `go` is not on PATH "
            "(install Go 1.24 or newer, or put a prebuilt "
            f"{tool.name} {tool.version} at {tool.binary})"
        )
    env = go_env()
    gobin = Path(env["GOBIN"])
    gobin.mkdir(parents=True, exist_ok=True)
    ldflags = " ".join(tool.ldflags)
    if tool.local_module:
        target = tool.package
        cmd = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(tool.binary), target]
        cwd = REPO_ROOT / tool.local_module
    else:
        out = gobin / Path(tool.package).name
        cmd = [go, "install", "-trimpath", "-ldflags", ldflags, f"{tool.package}@{tool.version}"]
        cwd = TOOLS_DIR
    log(f"building {tool.name} {tool.version} from the Go module proxy (first time takes minutes)")
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ToolError(f"{tool.name}: `{' '.join(cmd)}` failed:\n{proc.stderr.strip()}")
    if not tool.local_module:
        shutil.move(str(out), tool.binary)
    copy_extras(tool)


def module_dir(module: str, version: str) -> Path:
    """Where the Go module cache keeps a downloaded module's files."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        cwd=TOOLS_DIR, env=go_env(), capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise ToolError(f"cannot download {module}@{version}: {proc.stderr.strip()}")
    return Path(json.loads(proc.stdout)["Dir"])


def copy_extras(tool: GoTool) -> None:
    if not tool.extra_files:
        return
    module = tool.package.rsplit("/", 1)[0]  # the command's module: its parent path
    src_root = module_dir(module, tool.version)
    for rel in tool.extra_files:
        dest = TOOLS_DIR / tool.name / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src_root / rel, dest)
        dest.chmod(0o644)


def ensure(tool: GoTool) -> None:
    if is_current(tool):
        return
    build(tool)
    if not is_current(tool):
        raise ToolError(
            f"{tool.name}: expected version {tool.version}, the installed binary reports "
            f"{installed_version(tool)!r}"
        )
    log(f"{tool.name} {tool.version} ready")


def ensure_all() -> None:
    TOOLS_BIN.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for tool in GO_TOOLS:
        try:
            ensure(tool)
        except ToolError as err:
            failures.append(str(err))
    if failures:
        raise ToolError("\n".join(failures))
    # chart-testing and users' shells call plain `helm`: it is Helm 4 unless they say otherwise.
    default_helm = TOOLS_BIN / "helm"
    if not default_helm.is_symlink():
        default_helm.unlink(missing_ok=True)
        default_helm.symlink_to(HELM4.binary.name)


def require(tool: GoTool) -> Path:
    """The path of a pinned tool, or a ToolError naming it and how to install it."""
    if not tool.binary.exists():
        raise ToolError(f"{tool.name} {tool.version} is not installed: run `make setup`")
    return tool.binary
