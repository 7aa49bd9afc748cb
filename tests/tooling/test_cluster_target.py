"""Which cluster the live tier may use: only a named one, and a remote one only on request."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lastack.cluster.cluster_target import (
    ENV_VAR,
    ClusterTargetError,
    checked_server,
    explicit_kubeconfig,
    is_loopback,
    server_of,
)


def kubeconfig(tmp_path: Path, server: str, current: str = "b") -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "current-context": current,
        "clusters": [{"name": "one", "cluster": {"server": "https://kube-a.example.org:6443"}},
                     {"name": "two", "cluster": {"server": server}}],
        "contexts": [{"name": "a", "context": {"cluster": "one"}},
                     {"name": "b", "context": {"cluster": "two"}}],
    }))
    return path


class TestExplicitKubeconfig:
    def test_ambient_kubeconfig_names_nothing(self):
        assert explicit_kubeconfig(None, {"KUBECONFIG": "/etc/prod.yaml"}) is None

    def test_option_wins_over_the_environment(self):
        assert explicit_kubeconfig("/a.yaml", {ENV_VAR: "/b.yaml"}) == Path("/a.yaml")

    def test_dedicated_variable_names_a_cluster(self):
        assert explicit_kubeconfig(None, {ENV_VAR: "/b.yaml", "KUBECONFIG": "/c"}) == \
            Path("/b.yaml")

    def test_empty_values_name_nothing(self):
        assert explicit_kubeconfig("", {ENV_VAR: ""}) is None


class TestServer:
    def test_reads_the_current_contexts_cluster(self, tmp_path):
        assert server_of(kubeconfig(tmp_path, "https://127.0.0.1:41234")) == \
            "https://127.0.0.1:41234"

    def test_names_a_kubeconfig_without_current_context(self, tmp_path):
        with pytest.raises(ClusterTargetError, match="no current context"):
            server_of(kubeconfig(tmp_path, "https://127.0.0.1:1", current="missing"))

    def test_names_an_unreadable_kubeconfig(self, tmp_path):
        with pytest.raises(ClusterTargetError, match="cannot read kubeconfig"):
            server_of(tmp_path / "absent.yaml")

    @pytest.mark.parametrize("server", ["https://127.0.0.1:6443", "https://127.1.2.3:443",
                                        "https://[::1]:6443", "https://localhost:6443"])
    def test_loopback_servers(self, server):
        assert is_loopback(server)

    @pytest.mark.parametrize("server", ["https://192.0.2.10:6443", "https://kube.example.org",
                                        "https://localhost.example.org:6443",
                                        "https://[2001:db8::1]:6443", "not a url"])
    def test_other_servers(self, server):
        assert not is_loopback(server)


class TestCheckedServer:
    def test_refuses_a_remote_server_naming_it_and_the_flag(self, tmp_path):
        path = kubeconfig(tmp_path, "https://kube.example.org:6443")
        with pytest.raises(ClusterTargetError) as err:
            checked_server(path, allow_remote=False)
        assert "https://kube.example.org:6443" in str(err.value)
        assert "--allow-remote-cluster" in str(err.value)

    def test_allows_a_remote_server_on_request(self, tmp_path):
        path = kubeconfig(tmp_path, "https://kube.example.org:6443")
        assert checked_server(path, allow_remote=True) == "https://kube.example.org:6443"

    def test_accepts_loopback(self, tmp_path):
        path = kubeconfig(tmp_path, "https://127.0.0.1:6443")
        assert checked_server(path, allow_remote=False) == "https://127.0.0.1:6443"
