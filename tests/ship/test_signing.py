"""What the release workflow does with cosign, done here with the same cosign against a
real registry on loopback: sign the digest `make publish` reports, verify it, and see a
verification fail for anything else. The workflow signs keylessly (a certificate for its
identity from GitHub's OIDC token); only GitHub can show that part, so this signs with a
key pair and no transparency log. The signed checksums of the release are checked too."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from lastack.chart.version_check import bump_patch
from lastack.paths import TOOLS_BIN
from lastack.release.publish import package_chart, publish_chart
from lastack.tools import toolchain
from lastack.tools.helm_env import isolated_helm_env
from tests.ship.archives import NAME, VERSION, rebuilt
from tests.ship.registry import Registry

PASSWORD = "la-stack-test-key"


@pytest.fixture(scope="module")
def cosign() -> Path:
    if not toolchain.COSIGN.binary.exists() and shutil.which("go") is None:
        pytest.skip(f"cosign {toolchain.COSIGN.version} is not built and `go` is not on PATH "
                    "to build it (install Go 1.25 or newer)")
    try:
        TOOLS_BIN.mkdir(parents=True, exist_ok=True)
        toolchain.ensure(toolchain.COSIGN)
    except toolchain.ToolError as err:
        pytest.fail(str(err))
    return toolchain.COSIGN.binary


@pytest.fixture(scope="module")
def keys(cosign: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("keys")
    run(cosign, ["generate-key-pair"], folder)
    return folder


def run(cosign: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COSIGN_PASSWORD=PASSWORD, HOME=str(cwd))
    return subprocess.run([str(cosign), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def pushed(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two versions of the chart in the registry: their references by digest."""
    home = isolated_helm_env(tmp_path_factory.mktemp("helm-home"))
    archive = package_chart(dest=tmp_path_factory.mktemp("dist"), allow_partial=True)
    _, first = publish_chart(archive, registry.url, plain_http=True, allow_partial=True,
                             env=home)
    other = rebuilt(archive, tmp_path_factory.mktemp("other"), version=bump_patch(VERSION))
    _, second = publish_chart(other, registry.url, plain_http=True, allow_partial=True,
                              env=home)
    repository = f"{registry.host}/charts/{NAME}"
    return {"signed": f"{repository}@{first}", "unsigned": f"{repository}@{second}"}


@pytest.fixture(scope="module")
def signed(cosign: Path, keys: Path, pushed: dict[str, str]) -> dict[str, str]:
    """The first version signed by its digest, as the release workflow signs."""
    sign = run(cosign, ["sign", "--yes", "--key", "cosign.key", "--tlog-upload=false",
                        "--allow-http-registry", pushed["signed"]], keys)
    assert sign.returncode == 0, sign.stderr
    return pushed


class TestChartSignature:
    """`cosign sign` on the pushed digest; `cosign verify` as the README tells users."""

    def verify(self, cosign: Path, keys: Path, ref: str) -> subprocess.CompletedProcess[str]:
        return run(cosign, ["verify", "--key", "cosign.pub", "--insecure-ignore-tlog",
                            "--allow-http-registry", "--output", "json", ref], keys)

    def test_should_verify_the_signed_digest(self, cosign, keys, signed):
        result = self.verify(cosign, keys, signed["signed"])
        assert result.returncode == 0, result.stderr
        (claim,) = json.loads(result.stdout)
        assert claim["critical"]["image"]["docker-manifest-digest"] == (
            signed["signed"].split("@")[1])

    def test_should_refuse_a_digest_nobody_signed(self, cosign, keys, signed):
        result = self.verify(cosign, keys, signed["unsigned"])
        assert result.returncode != 0
        assert "no signatures found" in result.stderr.lower() or "no matching" in (
            result.stderr.lower())


class TestSignedChecksums:
    """`cosign sign-blob --bundle` of SHA256SUMS, and `verify-blob` of it."""

    def test_should_verify_the_sums_and_refuse_them_altered(self, cosign, keys):
        sums = keys / "SHA256SUMS"
        sums.write_text(f"{'0' * 64}  la-stack-bundle-{VERSION}.tar.gz\n")
        sign = run(cosign, ["sign-blob", "--yes", "--key", "cosign.key", "--tlog-upload=false",
                            "--bundle", "SHA256SUMS.sigstore.json", "SHA256SUMS"], keys)
        assert sign.returncode == 0, sign.stderr
        verify = ["verify-blob", "--key", "cosign.pub", "--insecure-ignore-tlog", "--bundle",
                  "SHA256SUMS.sigstore.json", "SHA256SUMS"]
        assert run(cosign, verify, keys).returncode == 0
        sums.write_text(sums.read_text() + f"{'1' * 64}  smuggled.tgz\n")
        assert run(cosign, verify, keys).returncode != 0
