"""The GitHub Actions workflows users get when they fork: linted with a pinned actionlint."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from lastack.paths import CHART_DIR
from lastack.tools import actionlint, toolchain
from lastack.tools.controlplane_build import ECK_VERSION

WORKFLOWS = actionlint.workflow_files()
# `uses: owner/repo@<full commit SHA> # vX.Y.Z`: immutable, and readable by people and Renovate.
PINNED_USE = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def workflow(name: str) -> dict:
    return yaml.safe_load((actionlint.WORKFLOWS_DIR / f"{name}.yaml").read_text())


def steps(name: str, job: str) -> list[dict]:
    return workflow(name)["jobs"][job]["steps"]


@pytest.fixture(scope="module")
def actionlint_binary():
    if not actionlint.ACTIONLINT.binary.exists() and shutil.which("go") is None:
        pytest.skip(f"actionlint {actionlint.ACTIONLINT.version} is not built and `go` is not "
                    "on PATH to build it (install Go 1.25 or newer)")
    try:
        return actionlint.ensure()
    except toolchain.ToolError as err:
        pytest.fail(str(err))


class TestWorkflows:
    """ci (lint + tests), install (kind + ct install), release (package + publish on tag)."""

    def test_should_ship_the_three_workflows(self):
        assert {p.stem for p in WORKFLOWS} == {"ci", "install", "release"}

    def test_should_pass_actionlint(self, actionlint_binary):
        result = actionlint.run(WORKFLOWS, actionlint_binary)
        assert result.returncode == 0, result.stdout + result.stderr

    def test_should_catch_a_broken_workflow(self, actionlint_binary, tmp_path):
        broken = tmp_path / "broken.yaml"
        broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n"
                          "      - run: echo ${{ github.no_such_context }}\n")
        assert actionlint.run([broken], actionlint_binary).returncode != 0

    def test_should_publish_only_from_version_tags(self):
        release = yaml.safe_load((actionlint.WORKFLOWS_DIR / "release.yaml").read_text())
        triggers = release[True] if True in release else release["on"]  # YAML 1.1 reads `on`
        assert triggers == {"push": {"tags": ["v*"]}}
        steps = [s.get("run", "") for s in release["jobs"]["publish"]["steps"]]
        assert any(s.startswith("make package") for s in steps)
        assert any("make publish REGISTRY=" in s and "ghcr.io" in s for s in steps)

    def test_should_install_the_eck_operator_before_ct_install(self):
        install = yaml.safe_load((actionlint.WORKFLOWS_DIR / "install.yaml").read_text())
        runs = [s.get("run", "") for s in install["jobs"]["ct-install"]["steps"]]
        operator = next(i for i, s in enumerate(install["jobs"]["ct-install"]["steps"])
                        if "eck-operator" in s.get("run", "")
                        and s.get("env", {}).get("ECK_VERSION") == ECK_VERSION)
        ct = next(i for i, r in enumerate(runs) if "ct install" in r)
        deps = next(i for i, r in enumerate(runs) if "make deps" in r)
        assert operator < ct and deps < ct


class TestSupplyChain:
    """Actions by commit, kind by digest, and a release a user can verify."""

    @pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
    def test_should_pin_every_action_by_commit_with_its_version(self, path):
        uses = [line for line in path.read_text().splitlines() if "uses:" in line]
        assert uses and [u for u in uses if not PINNED_USE.match(u)] == []

    def test_should_sign_and_attest_the_digest_it_pushed(self):
        job = workflow("release")["jobs"]["publish"]
        assert job["permissions"]["id-token"] == "write"
        runs = [s.get("run", "") for s in job["steps"]]
        publish = next(s for s in job["steps"] if s.get("id") == "publish")
        assert "DIGEST_FILE=" in publish["run"]
        sign = next(s for s in job["steps"] if "cosign sign --yes" in s.get("run", ""))
        assert sign["env"]["REF"] == ("${{ steps.publish.outputs.name }}@"
                                      "${{ steps.publish.outputs.digest }}")
        attest = [s["with"] for s in job["steps"]
                  if s.get("uses", "").startswith("actions/attest-build-provenance@")]
        assert attest[0]["subject-digest"] == "${{ steps.publish.outputs.digest }}"
        assert attest[1] == {"subject-checksums": "dist/SHA256SUMS"}
        assert any("cosign sign-blob --yes --bundle SHA256SUMS.sigstore.json SHA256SUMS" in r
                   for r in runs)

    def test_should_attach_the_bundle_and_signed_sums_to_a_release(self):
        (release,) = [s["run"] for s in steps("release", "publish")
                      if "gh release create" in s.get("run", "")]
        for asset in ("la-stack-bundle-$VERSION.tar.gz", "la-stack-$VERSION.tgz",
                      "dist/SHA256SUMS", "dist/SHA256SUMS.sigstore.json"):
            assert asset in release

    def test_should_install_on_the_floor_and_the_newest_kubernetes(self):
        job = workflow("install")["jobs"]["ct-install"]
        images = job["strategy"]["matrix"]["node_image"]
        assert all(re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", i)
                   for i in images)
        floor = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["kubeVersion"]
        minors = sorted(int(i.split(":v1.")[1].split(".")[0]) for i in images)
        assert f">=1.{minors[0]}.0-0" == floor
        assert len(minors) == 2 and minors[0] < minors[1]

    def test_should_upgrade_from_main_after_a_fresh_install(self):
        runs = [s.get("run", "") for s in steps("install", "ct-install")]
        fresh = next(i for i, r in enumerate(runs) if r.startswith("ct install --config"))
        upgrade = next(i for i, r in enumerate(runs) if r.startswith("ct install --upgrade"))
        assert fresh < upgrade
