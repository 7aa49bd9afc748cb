"""The live tier uses a cluster only when it is named for it, and never a remote one by
accident: a child pytest runs a probe that reports the tier's choice, with the
environment a user's shell might have (`KUBECONFIG` pointing elsewhere).

The remote server's name is in `.invalid` (RFC 2606): had the tier used it, it could not
even be resolved, so no test traffic leaves loopback either way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lastack.cluster.cluster_target import ALLOW_REMOTE_FLAG, ENV_VAR
from lastack.paths import REPO_ROOT
from tests.live.cluster import LiveCluster
from tests.live.probes.probe_cluster_choice import MARK

PROBE = Path(__file__).parent / "probes" / "probe_cluster_choice.py"
REMOTE = "https://kube.production.invalid:6443"
UNREACHABLE = "https://127.0.0.1:1"


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
    }))
    return path


def probe(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    cmd = [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:randomly", str(PROBE), *args]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    lines = [line[len(MARK):] for line in proc.stdout.splitlines() if line.startswith(MARK)]
    return proc, (json.loads(lines[0]) if lines else {})


def shell_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {ENV_VAR, "KUBECONFIG"}}
    return {**env, **extra}


class TestClusterChoice:
    @pytest.mark.parametrize("server", [REMOTE, UNREACHABLE], ids=["remote", "unreachable"])
    def test_ambient_kubeconfig_is_not_used(self, tmp_path: Path, server: str) -> None:
        """With only `KUBECONFIG` set, the tier goes for its own control plane. The child
        is given a PATH without Go or openssl, so that choice ends in a skip that says how to get
        a cluster, instead of minutes of building and starting one; had the tier taken
        `KUBECONFIG`, it would have connected (or refused) instead."""
        env = shell_env(KUBECONFIG=str(kubeconfig(tmp_path / "shell.yaml", server)),
                        PATH=str(tmp_path))
        proc, choice = probe(env, "-rs")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert choice == {}, f"the tier used {choice}"
        assert "1 skipped" in proc.stdout and "no cluster: " in proc.stdout, proc.stdout
        assert server not in proc.stdout + proc.stderr

    def test_named_remote_cluster_is_refused(self, tmp_path: Path) -> None:
        named = kubeconfig(tmp_path / "remote.yaml", REMOTE)
        proc, choice = probe(shell_env(), "--kubeconfig", str(named))
        assert proc.returncode != 0 and choice == {}, proc.stdout
        assert f"refusing to install test releases into {REMOTE}" in proc.stdout
        assert ALLOW_REMOTE_FLAG in proc.stdout

    def test_named_remote_cluster_is_refused_from_the_environment(self, tmp_path: Path) -> None:
        named = kubeconfig(tmp_path / "remote.yaml", REMOTE)
        proc, choice = probe(shell_env(**{ENV_VAR: str(named)}))
        assert proc.returncode != 0 and choice == {}, proc.stdout
        assert f"refusing to install test releases into {REMOTE}" in proc.stdout

    @pytest.mark.parametrize("named_by", ["option", "environment"])
    def test_named_loopback_cluster_is_used_and_announced(
            self, tmp_path: Path, live_cluster: LiveCluster, named_by: str) -> None:
        """The cluster this session runs on, named by pytest-helm-charts' --kubeconfig or by
        LA_STACK_KUBECONFIG, wins over a KUBECONFIG pointing elsewhere, for the tier and for
        pytest-helm-charts' fixtures alike, and its server URL is printed before use; the
        child starts neither a control plane nor an operator of its own for it."""
        if not live_cluster.local:
            pytest.skip("names this session's own control plane; a given cluster is named "
                        "by the session's own --kubeconfig already")
        env = shell_env(KUBECONFIG=str(kubeconfig(tmp_path / "shell.yaml", REMOTE)))
        if named_by == "option":
            proc, choice = probe(env, "--kubeconfig", str(live_cluster.kubeconfig))
        else:
            proc, choice = probe({**env, ENV_VAR: str(live_cluster.kubeconfig)})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert choice["server"] == live_cluster.server and choice["local"] is True
        assert choice["plugin_kubeconfig"] == str(live_cluster.kubeconfig), choice
        assert choice["plugin_server"].rstrip("/") == live_cluster.server.rstrip("/"), choice
        assert f"[live] installing test releases into {live_cluster.server}" in proc.stdout
        started = [line for line in (proc.stdout + proc.stderr).splitlines()
                   if line.startswith("[cluster]")]
        assert not started, started
