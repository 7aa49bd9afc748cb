"""OCI round trip against a real registry on loopback: the packaged chart published with
Helm 4, then pulled, shown and rendered from oci:// with Helm 3 and Helm 4. A published
version is never overwritten."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from lastack.chart import chartdeps
from lastack.chart.render import (
    DEFAULT_API_VERSIONS,
    NAMESPACE,
    RELEASE_NAME,
    parse_manifest,
    render_manifest,
)
from lastack.chart.validation import validate_objects
from lastack.chart.version_check import bump_patch
from lastack.release.chart_archive import PublishError
from lastack.release.publish import publish, publish_chart
from lastack.tools.helm_env import isolated_helm_env
from lastack.tools.toolchain import HELMS, KUBERNETES_VERSION
from tests.ship.archives import NAME, VERSION, rebuilt
from tests.ship.registry import Registry


def helm_run(helm: str, args: list[str], env: dict[str, str],
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELMS[helm].binary), *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=300, check=False)


def manifest_only(stdout: str) -> str:
    """Helm 4 prints its `Pulled:`/`Digest:` lines on stdout ahead of the manifest when
    rendering from oci:// (Helm 3 prints them on stderr)."""
    lines = stdout.splitlines(keepends=True)
    while lines and lines[0].startswith(("Pulled: ", "Digest: ")):
        lines.pop(0)
    return "".join(lines)


def identity(obj: dict) -> tuple[str, str, str, str]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]


@pytest.fixture(scope="module")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return isolated_helm_env(tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def published(registry: Registry, packaged: Path,
              helm_home: dict[str, str]) -> tuple[str, str]:
    """The pushed reference and the digest `publish_chart` reported for it."""
    return publish_chart(packaged, registry.url, plain_http=True, allow_partial=True,
                         env=helm_home)


@pytest.fixture(scope="module")
def auth_published(auth_registry: Registry, packaged: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """The auth registry once the chart was published to it with credentials."""
    env = isolated_helm_env(tmp_path_factory.mktemp("publisher-home"))
    env.update(REGISTRY_USERNAME=auth_registry.username,
               REGISTRY_PASSWORD=auth_registry.password)
    publish_chart(packaged, auth_registry.url, plain_http=True, allow_partial=True, env=env)
    return auth_registry


def stable_local_render(helm: str) -> tuple[dict, set]:
    """The local render by identity, and the identities whose content differs between two
    renders (subcharts that draw random passwords at render time)."""
    first = {identity(o): o for o in parse_manifest(render_manifest(helm=helm, use_cache=False))}
    second = {identity(o): o for o in parse_manifest(render_manifest(helm=helm, use_cache=False))}
    assert first.keys() == second.keys()
    return first, {key for key in first if first[key] != second[key]}


class TestOciRoundTrip:
    """Published with Helm 4; pulled, shown and rendered with Helm 3 and Helm 4."""

    def test_should_publish_with_helm4(self, published, registry):
        ref, _ = published
        assert ref == f"{registry.url}/{NAME}:{VERSION}"
        assert registry.manifest_digest(f"charts/{NAME}", VERSION)

    def test_should_report_the_digest_the_registry_serves(self, published, registry):
        # What cosign signs and the provenance attestation names must be this manifest.
        _, pushed = published
        assert pushed == registry.manifest_digest(f"charts/{NAME}", VERSION)

    def test_should_pull_the_published_version(self, helm, published, registry, helm_home,
                                               tmp_path):
        pull = helm_run(helm, ["pull", f"{registry.url}/{NAME}", "--version", VERSION,
                               "--plain-http", "--destination", str(tmp_path)], helm_home)
        assert pull.returncode == 0, pull.stderr
        (archive,) = tmp_path.glob("*.tgz")
        assert chartdeps.archive_identity(archive) == (NAME, VERSION)

    def test_should_pull_by_the_digest_it_reported(self, helm, published, registry, helm_home,
                                                   tmp_path):
        # The README's "install by digest": what runs is what cosign verified.
        _, pushed = published
        pull = helm_run(helm, ["pull", f"{registry.url}/{NAME}@{pushed}", "--plain-http",
                               "--destination", str(tmp_path)], helm_home)
        assert pull.returncode == 0, pull.stderr
        (archive,) = tmp_path.glob("*.tgz")
        assert chartdeps.archive_identity(archive) == (NAME, VERSION)

    def test_should_show_the_published_chart(self, helm, published, registry, helm_home):
        show = helm_run(helm, ["show", "chart", f"{registry.url}/{NAME}", "--version", VERSION,
                               "--plain-http"], helm_home)
        assert show.returncode == 0, show.stderr
        meta = yaml.safe_load(show.stdout)
        assert (meta["name"], str(meta["version"])) == (NAME, VERSION)

    def test_should_render_what_the_local_chart_renders(self, helm, published, registry,
                                                        helm_home):
        template = helm_run(helm, [
            "template", RELEASE_NAME, f"{registry.url}/{NAME}", "--version", VERSION,
            "--plain-http", "--namespace", NAMESPACE, "--kube-version", KUBERNETES_VERSION,
            *[a for api in DEFAULT_API_VERSIONS for a in ("--api-versions", api)]], helm_home)
        assert template.returncode == 0, template.stderr
        remote_objects = parse_manifest(manifest_only(template.stdout))
        validate_objects(remote_objects)
        remote = {identity(o): o for o in remote_objects}
        local, unstable = stable_local_render(helm)
        assert remote.keys() == local.keys()
        for key in local.keys() - unstable:
            assert remote[key] == local[key], key

    def test_should_refuse_to_overwrite_a_published_version(self, published, registry,
                                                            packaged, helm_home, tmp_path):
        before = registry.manifest_digest(f"charts/{NAME}", VERSION)
        # Different content under the same version: an overwrite would change the digest.
        altered = rebuilt(packaged, tmp_path, description="not the published chart")
        with pytest.raises(PublishError) as err:
            publish_chart(altered, registry.url, plain_http=True, allow_partial=True,
                          env=helm_home)
        assert "Chart.yaml" in str(err.value)
        assert registry.manifest_digest(f"charts/{NAME}", VERSION) == before

    def test_should_publish_once_the_version_is_bumped(self, published, registry, packaged,
                                                       helm_home, tmp_path):
        before = registry.manifest_digest(f"charts/{NAME}", VERSION)
        bumped_version = bump_patch(VERSION)
        bumped = rebuilt(packaged, tmp_path, version=bumped_version)
        ref, _ = publish_chart(bumped, registry.url, plain_http=True, allow_partial=True,
                               env=helm_home)
        assert ref.endswith(f":{bumped_version}")
        assert registry.manifest_digest(f"charts/{NAME}", bumped_version)
        assert registry.manifest_digest(f"charts/{NAME}", VERSION) == before


class TestOciWithCredentials:
    """A registry with htpasswd auth: credentials come from the environment, on stdin."""

    def test_should_publish_from_the_cli_without_echoing_the_password(
            self, auth_registry, packaged, tmp_path, monkeypatch, capfd):
        for key, value in isolated_helm_env(tmp_path).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("REGISTRY_USERNAME", auth_registry.username)
        monkeypatch.setenv("REGISTRY_PASSWORD", auth_registry.password)
        bumped = rebuilt(packaged, tmp_path, version=f"{VERSION}-cli.1")
        digest_file = tmp_path / "chart.digest"
        code = publish(["--registry", auth_registry.url, "--archive", str(bumped),
                        "--plain-http", "--allow-partial", "--digest-file", str(digest_file)])
        out, err = capfd.readouterr()
        assert code == 0, err
        assert auth_registry.password not in out + err
        served = auth_registry.manifest_digest(f"charts/{NAME}", f"{VERSION}-cli.1")
        assert digest_file.read_text() == f"{served}\n"

    def test_should_refuse_anonymous_reads(self, helm, auth_published, tmp_path):
        show = helm_run(helm, ["show", "chart", f"{auth_published.url}/{NAME}",
                               "--version", VERSION, "--plain-http"],
                        isolated_helm_env(tmp_path))
        assert show.returncode != 0

    def test_should_pull_after_logging_in_with_each_helm(self, helm, auth_published, tmp_path):
        env = isolated_helm_env(tmp_path / "home")
        login = helm_run(helm, ["registry", "login", auth_published.host, "--username",
                                auth_published.username, "--password-stdin", "--plain-http"],
                         env, stdin=auth_published.password)
        assert login.returncode == 0, login.stderr
        pull = helm_run(helm, ["pull", f"{auth_published.url}/{NAME}", "--version", VERSION,
                               "--plain-http", "--destination", str(tmp_path)], env)
        assert pull.returncode == 0, pull.stderr
        (archive,) = tmp_path.glob("*.tgz")
        assert chartdeps.archive_identity(archive) == (NAME, VERSION)

    def test_should_stop_when_the_password_is_missing(self, auth_registry, packaged, tmp_path):
        env = isolated_helm_env(tmp_path)
        env["REGISTRY_USERNAME"] = auth_registry.username
        with pytest.raises(PublishError):
            publish_chart(packaged, auth_registry.url, plain_http=True, allow_partial=True,
                          env=env)
