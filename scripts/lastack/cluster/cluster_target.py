"""Which Kubernetes API the live tier may install into.

The live tier installs and uninstalls test releases, so it uses an existing cluster only
when one is named for it: `--kubeconfig PATH` or `LA_STACK_KUBECONFIG`. A `KUBECONFIG`
that happens to be set in the shell is ignored (it may point at production). A named
cluster whose API server is not on loopback (kind and k3d listen on 127.0.0.1) is refused
unless the caller also allows remote clusters.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ENV_VAR = "LA_STACK_KUBECONFIG"
ALLOW_REMOTE_FLAG = "--allow-remote-cluster"


class ClusterTargetError(RuntimeError):
    """The named cluster cannot or may not be used."""


def explicit_kubeconfig(option: str | None, environ: Mapping[str, str]) -> Path | None:
    """The kubeconfig named for the live tier, or None (then: the local control plane)."""
    named = option or environ.get(ENV_VAR) or None
    return Path(named).expanduser() if named else None


def server_of(kubeconfig: Path) -> str:
    """The API server URL of the kubeconfig's current context."""
    try:
        doc = yaml.safe_load(kubeconfig.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ClusterTargetError(f"cannot read kubeconfig {kubeconfig}: {err}") from err
    current = doc.get("current-context")
    context = next((c.get("context") or {} for c in doc.get("contexts") or []
                    if c.get("name") == current), None)
    if context is None:
        raise ClusterTargetError(f"kubeconfig {kubeconfig} has no current context")
    cluster = next((c.get("cluster") or {} for c in doc.get("clusters") or []
                    if c.get("name") == context.get("cluster")), {})
    server = cluster.get("server")
    if not server:
        raise ClusterTargetError(
            f"kubeconfig {kubeconfig}: context {current!r} names no cluster server")
    return str(server)


def is_loopback(server: str) -> bool:
    """Whether the server URL's host is a loopback address (names are not resolved)."""
    host = urlsplit(server).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_server(kubeconfig: Path, allow_remote: bool) -> str:
    """The server the live tier is about to use; raises unless it is loopback or allowed."""
    server = server_of(kubeconfig)
    if not is_loopback(server) and not allow_remote:
        raise ClusterTargetError(
            f"refusing to install test releases into {server} (kubeconfig {kubeconfig}): "
            f"it is not on loopback; pass {ALLOW_REMOTE_FLAG} if that cluster is meant "
            "for tests")
    return server
