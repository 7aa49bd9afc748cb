"""The demo's plan (`make demo DRY_RUN=1`): which cluster, what it installs, in what order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lastack.chart.render import ECK_API, HelmFailedError, render_chart
from lastack.demo import plan as demo_plan
from lastack.paths import REPO_ROOT, VALUES_DIR
from lastack.tools.controlplane_build import CNPG_MANIFEST, CNPG_VERSION, ECK_VERSION
from lastack.tools.toolchain import HELM4, KUBECTL

KUBECTL_BIN, HELM_BIN = str(KUBECTL.binary), str(HELM4.binary)


def kubeconfig(path: Path, context: str | None = "kind-mine") -> Path:
    config = {"apiVersion": "v1", "kind": "Config", "clusters": [
        {"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "kind-mine", "context": {"cluster": "c", "user": "u"}}]}
    if context:
        config["current-context"] = context
    path.write_text(yaml.safe_dump(config))
    return path


def no_tools(_: str) -> None:
    return None


class TestClusterChoice:
    """An existing context wins; else kind, else k3d; else a clear error."""

    def test_should_use_the_current_kubeconfig_context(self, tmp_path):
        env = {"KUBECONFIG": str(kubeconfig(tmp_path / "config")), "HOME": str(tmp_path)}
        assert demo_plan.choose_cluster(KUBECTL_BIN, env, no_tools) == ("existing", "kind-mine")

    @pytest.mark.parametrize(("installed", "expected"),
                             [({"kind", "k3d"}, "kind"), ({"k3d"}, "k3d"), ({"kind"}, "kind")])
    def test_should_create_a_cluster_with_what_is_installed(self, tmp_path, installed, expected):
        env = {"HOME": str(tmp_path)}
        which = lambda tool: f"/usr/bin/{tool}" if tool in installed else None  # noqa: E731
        plan = demo_plan.build_plan(env, KUBECTL_BIN, HELM_BIN, which)
        assert plan.cluster == expected
        assert plan.steps[0].command[:2] == demo_plan.create_cluster_command(expected)[:2]

    def test_should_say_what_is_missing(self, tmp_path):
        env = {"KUBECONFIG": str(kubeconfig(tmp_path / "config", context=None)),
               "HOME": str(tmp_path)}
        with pytest.raises(demo_plan.DemoError, match="neither kind nor k3d"):
            demo_plan.choose_cluster(KUBECTL_BIN, env, no_tools)


class TestPlan:
    """The plan installs the pinned operator first, then la-stack with the demo profile."""

    def plan(self, tmp_path) -> demo_plan.Plan:
        env = {"KUBECONFIG": str(kubeconfig(tmp_path / "config")), "HOME": str(tmp_path)}
        return demo_plan.build_plan(env, KUBECTL_BIN, HELM_BIN, no_tools)

    def test_should_install_the_pinned_operator_before_the_stack(self, tmp_path):
        commands = [s.command for s in self.plan(tmp_path).steps if s.command]
        operator = next(i for i, c in enumerate(commands) if "elastic-operator" in c)
        stack = next(i for i, c in enumerate(commands) if demo_plan.RELEASE in c and "upgrade" in c)
        assert operator < stack
        op = commands[operator]
        assert ECK_VERSION in " ".join(op)  # pinned: a version flag or the cached archive's name
        assert op[1:3] == ["upgrade", "--install"], "re-running is safe"

    def test_should_install_the_pinned_cnpg_operator_before_the_stack(self, tmp_path):
        commands = [s.command for s in self.plan(tmp_path).steps if s.command]
        cnpg = next(i for i, c in enumerate(commands) if f"cnpg-{CNPG_VERSION}.yaml" in c[-1])
        stack = next(i for i, c in enumerate(commands) if demo_plan.RELEASE in c and "upgrade" in c)
        assert cnpg < stack
        assert commands[cnpg][1:3] == ["apply", "--server-side"]
        assert f"cnpg-{CNPG_VERSION}.yaml" in CNPG_MANIFEST
        assert any("cnpg-controller-manager" in " ".join(c) for c in commands[cnpg:stack])

    def test_should_apply_the_cached_cnpg_manifest_offline(self, tmp_path, monkeypatch):
        monkeypatch.setenv("LA_STACK_CHART_CACHE", str(tmp_path))
        cached = tmp_path / f"cnpg-{CNPG_VERSION}.yaml"
        assert demo_plan.install_cnpg_commands("kubectl")[0][-1] == CNPG_MANIFEST
        cached.write_text("kind: Namespace\n")
        assert demo_plan.install_cnpg_commands("kubectl")[0][-1] == str(cached)

    def test_should_name_the_manifest_the_preflight_names(self):
        with pytest.raises(HelmFailedError) as err:
            render_chart(api_versions=(ECK_API,))
        assert f"kubectl apply --server-side -f {CNPG_MANIFEST})" in err.value.stderr

    def test_should_install_la_stack_with_the_demo_values(self, tmp_path):
        step = next(s for s in self.plan(tmp_path).steps
                    if s.command and demo_plan.RELEASE in s.command and "upgrade" in s.command)
        values = step.command[step.command.index("--values") + 1]
        assert Path(values) == VALUES_DIR / "demo.yaml"
        assert step.command[1:3] == ["upgrade", "--install"]

    def test_should_wait_load_data_and_print_access(self, tmp_path):
        titles = " | ".join(s.title for s in self.plan(tmp_path).steps)
        assert "wait for Elasticsearch, Ralph, Moodle and Superset" in titles
        assert "load" in titles and "statements through Ralph" in titles
        assert "where each credential is" in titles

    def test_should_print_the_plan_from_the_command_line(self, tmp_path):
        env = {"KUBECONFIG": str(kubeconfig(tmp_path / "config")), "HOME": str(tmp_path),
               "PATH": "/usr/bin:/bin"}
        out = subprocess.run([sys.executable, "-m", "lastack", "demo", "--dry-run"], env=env,
                             cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout
        assert out.startswith("cluster: existing (kind-mine)")
        assert "values/demo.yaml" in out

    def test_should_fail_in_one_sentence_without_a_cluster(self, tmp_path):
        env = {"HOME": str(tmp_path), "PATH": "/nonexistent"}
        proc = subprocess.run([sys.executable, "-m", "lastack", "demo", "--dry-run"], env=env,
                              cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        assert proc.returncode == 1
        assert proc.stderr.startswith("error: no cluster to use")
        assert len(proc.stderr.strip().splitlines()) == 1
