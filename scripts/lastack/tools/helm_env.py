"""An environment for the pinned Helm binaries whose state lives under one directory.

Helm reads its repositories, registry logins, plugins and cache from the user's home by
default; a run of ours (vendoring subcharts, publishing in a test, installing on a test
cluster) must neither use nor change them. With a kubeconfig, kubectl's discovery cache
moves there too and that cluster is the one both tools talk to.
"""

from __future__ import annotations

import os
from pathlib import Path

# Read by `lastack.release.publish`; a caller's shell must not lend them to a test run.
REGISTRY_CREDENTIALS = ("REGISTRY_USERNAME", "REGISTRY_PASSWORD")


def isolated_helm_env(home: Path, kubeconfig: Path | str | None = None) -> dict[str, str]:
    """This process's environment without registry credentials, with Helm's config, cache,
    data and registry logins under `home`."""
    env = {k: v for k, v in os.environ.items() if k not in REGISTRY_CREDENTIALS}
    env.update({
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "HELM_REGISTRY_CONFIG": str(home / "config" / "registry" / "config.json"),
    })
    if kubeconfig is not None:
        env.update({"KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(home / "kube-cache")})
    return env
