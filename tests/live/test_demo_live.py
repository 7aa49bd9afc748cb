"""`make demo` against the local control plane, as far as simulated nodes allow.

kwok's nodes run no container, so the operator chart the demo installs never runs (the
local control plane's own ECK operator reconciles the demo's Elasticsearch instead) and no
component serves traffic: the demo must install the operator and la-stack, see that the
nodes are simulated, say that only real containers could go further, and print where
everything is. The hook runner plays the container runtime for the secrets hook (as in the
lifecycle tests), so a second run upgrades as it would on a real cluster. `make
demo-down` then removes what it installed and leaves the cluster it did not create.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from kubernetes import client

from lastack.demo.plan import OPERATOR_CHART, OPERATOR_VERSION
from lastack.paths import REPO_ROOT, chart_cache_dir
from lastack.testing.hookrunner import HookRunner, hold_values
from lastack.tools.controlplane_build import CNPG_MANIFEST, CNPG_VERSION
from lastack.tools.toolchain import HELM4

OPERATOR_ARCHIVE = chart_cache_dir() / f"{OPERATOR_CHART}-{OPERATOR_VERSION}.tgz"
CNPG_ARCHIVE = chart_cache_dir() / f"cnpg-{CNPG_VERSION}.yaml"


def demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lastack", "demo", *args], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=900, check=False)


def releases(env: dict[str, str]) -> set[str]:
    out = subprocess.run([str(HELM4.binary), "list", "--all-namespaces", "-o", "json"],
                         env=env, capture_output=True, text=True, check=True).stdout
    return {r["name"] for r in json.loads(out)}


@pytest.fixture
def local_only(live_cluster) -> None:
    if not live_cluster.local:
        pytest.skip("the demo installs into fixed namespaces: run it only on the local "
                    "control plane, not on a cluster given by KUBECONFIG")
    if not OPERATOR_ARCHIVE.exists():
        pytest.skip(f"{OPERATOR_ARCHIVE.name} is not in the chart cache ({chart_cache_dir()}): "
                    "helm pull eck-operator --repo https://helm.elastic.co --version "
                    f"{OPERATOR_VERSION} into it (offline machines cannot reach the repo)")
    if not CNPG_ARCHIVE.exists():
        pytest.skip(f"{CNPG_ARCHIVE.name} is not in the chart cache ({chart_cache_dir()}): "
                    f"download {CNPG_MANIFEST} into it, or copy releases/{CNPG_ARCHIVE.name} "
                    "of the CloudNativePG Go module (offline machines cannot reach GitHub)")


class TestDemoOnSimulatedNodes:
    """The demo goes as far as the API allows, says where it stops, and cleans up."""

    def test_should_install_stop_where_containers_are_needed_and_clean_up(
            self, local_only, tool_env, api, live_cluster, core, tmp_path):
        # No Superset (nor its Valkey): its metastore `Cluster` must pass CloudNativePG's
        # admission webhooks, which the demo's manifest registers and only a running
        # operator serves.
        held = tmp_path / "hold-hooks.yaml"
        held.write_text(yaml.safe_dump({**hold_values(), "superset": {"enabled": False},
                                        "valkey": {"enabled": False}}))
        with HookRunner(api, live_cluster.server, "la-stack") as runner:
            result = demo(tool_env, "--values", str(held))
            again = demo(tool_env, "--values", str(held))
        try:
            assert result.returncode == 0, result.stderr
            out = result.stdout
            assert f"installing the ECK operator {OPERATOR_VERSION}" in out
            assert "installing la-stack with values/demo.yaml" in out
            assert "only real containers could go further" in out
            assert "port-forward svc/la-stack-ralph" in out, "the NOTES are printed"
            assert {"elastic-operator", "la-stack"} <= releases(tool_env)
            assert core.read_namespaced_secret("la-stack-lrs-admin", "la-stack").data
            assert again.returncode == 0, f"re-running is safe: {again.stderr}"
            assert not runner.errors
        finally:
            down = demo(tool_env, "--down")
            # The operators stay, as `--down` says; their webhooks would refuse every later
            # `Cluster` of this control plane, where no CloudNativePG container answers.
            hooks = client.AdmissionregistrationV1Api(api)
            for delete in (hooks.delete_mutating_webhook_configuration,
                           hooks.delete_validating_webhook_configuration):
                kind = "mutating" if "mutating" in delete.__name__ else "validating"
                try:
                    delete(f"cnpg-{kind}-webhook-configuration")
                except client.ApiException as err:
                    if err.status != 404:
                        raise
        assert down.returncode == 0, down.stderr
        assert "left as it is" in down.stdout
        assert not {"elastic-operator", "la-stack"} & releases(tool_env)
