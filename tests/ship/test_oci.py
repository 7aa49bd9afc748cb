"""OCI round trip against a real registry on loopback: package, publish with Helm 4, then
pull, show and render from oci:// with Helm 3 and Helm 4. A published version is never
overwritten."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
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
from lastack.paths import CHART_DIR
from lastack.release.publish import (
    PARTIAL_ANNOTATION,
    PublishError,
    archive_members,
    archive_metadata,
    chart_identity,
    missing_in_archive,
    package_chart,
    publish,
    publish_chart,
)
from lastack.tools.toolchain import HELMS, KUBERNETES_VERSION
from tests.ship.conftest import Registry, isolated_helm_env

NAME, VERSION = chart_identity()


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


def rebuilt(archive: Path, dest: Path, **changes: str) -> Path:
    """A copy of a chart archive with some Chart.yaml fields changed."""
    work = dest / "work"
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    chart_yaml = work / NAME / "Chart.yaml"
    meta = yaml.safe_load(chart_yaml.read_text())
    meta.update(changes)
    chart_yaml.write_text(yaml.safe_dump(meta, sort_keys=False))
    target = dest / f"{NAME}-{meta['version']}.tgz"
    with tarfile.open(target, "w:gz") as tar:
        tar.add(work / NAME, arcname=NAME)
    return target


def rebuilt_partial(tmp_path: Path) -> Path:
    """A tiny chart archive marked as packaged without a subchart."""
    chart = tmp_path / NAME
    chart.mkdir()
    meta = {"apiVersion": "v2", "name": NAME, "version": VERSION,
            "annotations": {PARTIAL_ANNOTATION: "superset-like"}}
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    target = tmp_path / f"{NAME}-{VERSION}.tgz"
    with tarfile.open(target, "w:gz") as tar:
        tar.add(chart, arcname=NAME)
    return target


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The umbrella packaged with whatever subcharts `make deps` provided."""
    return package_chart(dest=tmp_path_factory.mktemp("dist"), allow_partial=True)


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


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def own_file_times(archive: Path) -> set[int]:
    """The file times of la-stack's own files (subcharts keep their archives' times)."""
    with tarfile.open(archive) as tar:
        return {m.mtime for m in tar.getmembers()
                if m.isfile() and not m.name.startswith(f"{NAME}/charts/")}  # fmt: skip


class TestPackage:
    """`make package`: a versioned archive with the vendored subcharts inside."""

    def test_should_name_the_archive_after_the_chart_version(self, packaged):
        assert packaged.name == f"{NAME}-{VERSION}.tgz"
        assert str(archive_metadata(packaged)["version"]) == VERSION

    def test_should_contain_every_vendored_subchart(self, packaged):
        members = set(archive_members(packaged))
        absent = chartdeps.missing()
        for dep in chartdeps.dependencies():
            if dep not in absent:
                assert f"{NAME}/charts/{dep.name}/Chart.yaml" in members, dep.name
        assert missing_in_archive(packaged) == [d.name for d in absent]

    def test_should_give_the_same_bytes_for_the_same_sources(self, tmp_path, monkeypatch):
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
        first = package_chart(dest=tmp_path / "one", allow_partial=True)
        chart = tmp_path / "la-stack"
        shutil.copytree(CHART_DIR, chart)  # another checkout: other file times
        os.utime(chart / "values.yaml", (1, 1))
        bytecode = chart / "files" / "hooks" / "__pycache__"  # left by the hooks tier's imports
        bytecode.mkdir(exist_ok=True)
        (bytecode / "hooklib.cpython-311.pyc").write_bytes(b"\0")
        again = package_chart(chart, tmp_path / "two", allow_partial=True)
        assert digest(again) == digest(first)  # digests: a failing bytes diff takes ages
        assert own_file_times(first) == {1700000000}

    def test_should_date_the_files_by_the_charts_last_commit(self, packaged, monkeypatch):
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        committed = subprocess.run(
            ["git", "-C", str(CHART_DIR), "log", "-1", "--format=%ct", "--", "."],
            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        assert own_file_times(packaged) == {int(committed)}

    def test_should_refuse_without_every_subchart_unless_partial(self, tmp_path):
        chart = tmp_path / "la-stack"
        shutil.copytree(CHART_DIR, chart)
        vendored = sorted((chart / "charts").glob("*.tgz"))
        if vendored:
            vendored[0].unlink()  # at least one archive is missing, whatever `make deps` did
        missing = chartdeps.missing(chart)
        assert missing
        with pytest.raises(PublishError) as err:
            package_chart(chart, tmp_path / "dist")
        for dep in missing:
            assert dep.archive in str(err.value)
        partial = package_chart(chart, tmp_path / "dist", allow_partial=True)
        assert missing_in_archive(partial) == [d.name for d in missing]


    def test_should_not_publish_a_partial_archive_by_accident(self, tmp_path):
        partial = rebuilt_partial(tmp_path)
        with pytest.raises(PublishError) as err:
            publish_chart(partial, "oci://127.0.0.1:9/charts", plain_http=True)
        assert "superset-like" in str(err.value)


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
