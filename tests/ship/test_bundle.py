"""`make bundle`: the air-gapped archive's contents, its image list and its checksums."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import jmespath
import pytest
import yaml

from lastack.chart import chart_values, chartdeps
from lastack.chart.images import OPERATOR_IMAGES
from lastack.chart.render import helm_binary, render_chart
from lastack.demo.plan import OPERATOR_CHART, OPERATOR_VERSION
from lastack.net import free_port
from lastack.paths import CHART_DIR, VALUES_DIR, chart_cache_dir
from lastack.release import bundle_sources
from lastack.release.bundle import build_bundle
from lastack.release.chart_archive import PublishError
from lastack.release.publish import chart_identity
from lastack.tools.controlplane_build import CNPG_VERSION
from lastack.tools.toolchain import KUBERNETES_VERSION
from tests.hooks.moodle_standin import ArchiveServer, plugin_tree, tarball, tree_sha256
from tests.rendered_images import walked_images

NAME, VERSION = chart_identity()
ROOT = f"{NAME}-bundle-{VERSION}"
PLUGIN = chart_values.default("logstoreXapi.plugin")
# The files the bundle fetches besides the charts (the wheels are python/*.whl).
SOURCES = (f"operators/eck-operator-{OPERATOR_VERSION}.tgz", f"operators/cnpg-{CNPG_VERSION}.yaml",
           f"moodle/logstore_xapi-{PLUGIN['release']}.tar.gz")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("dist"), allow_partial=True)


@pytest.fixture(scope="module")
def unpacked(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(bundle) as tar:
        tar.extractall(target, filter="data")
    return target / ROOT


def present_archives() -> list[str]:
    absent = chartdeps.missing()
    return [d.archive for d in chartdeps.dependencies() if d not in absent]


class TestBundle:
    """One archive: umbrella, subchart archives, profiles, images.txt, SHA256SUMS."""

    def test_should_be_named_after_the_chart_version(self, bundle):
        assert bundle.name == f"{ROOT}.tar.gz"

    def test_should_hold_exactly_the_listed_files(self, bundle, unpacked):
        with tarfile.open(bundle) as tar:
            members = {m.name for m in tar.getmembers() if m.isfile()}
        # What this machine could not reach is named in PARTIAL.txt instead.
        partial = unpacked / "PARTIAL.txt"
        lacking = {line.split(": ", 1)[0] for line in
                   (partial.read_text().splitlines() if partial.exists() else [])}
        expected = {f"{ROOT}/{NAME}-{VERSION}.tgz", f"{ROOT}/images.txt", f"{ROOT}/SHA256SUMS"}
        expected |= {f"{ROOT}/subcharts/{a}" for a in present_archives()}
        expected |= {f"{ROOT}/values/{p.name}" for p in VALUES_DIR.glob("*.yaml")}
        expected |= {f"{ROOT}/{t}" for t in SOURCES if t not in lacking}
        expected |= {f"{ROOT}/PARTIAL.txt"} if lacking else set()
        with tarfile.open(bundle) as tar:
            folders = {m.name for m in tar.getmembers() if m.isdir()}
        assert {f for f in folders if not any(m.startswith(f + "/") for m in members)} == set()
        wheels = {m for m in members if m.startswith(f"{ROOT}/python/")}
        assert bool(wheels) == ("python/" not in lacking)
        assert members - wheels == expected
        absent = {d.archive for d in chartdeps.missing()}
        assert lacking - set(SOURCES) - {"python/"} == absent

    def test_should_list_exactly_the_images_of_the_full_render(self, unpacked, helm):
        listed = (unpacked / "images.txt").read_text().splitlines()
        assert listed == sorted(set(listed)), "images.txt is sorted and without duplicates"
        # Whichever Helm renders, the stack runs the same images; the operators it needs
        # installed first run theirs.
        assert set(listed) == walked_images(render_chart(helm=helm)) | set(OPERATOR_IMAGES)
        assert listed

    @pytest.mark.skipif("eck-elasticsearch" not in {d.name for d in chartdeps.dependencies()}
                        or any(d.name == "eck-elasticsearch" for d in chartdeps.missing()),
                        reason="eck-elasticsearch archive absent: run `make deps`")
    def test_should_list_the_elasticsearch_image_the_operator_pulls(self, unpacked):
        (es,) = [o for o in render_chart() if o["kind"] == "Elasticsearch"]
        listed = (unpacked / "images.txt").read_text().splitlines()
        assert f"docker.elastic.co/elasticsearch/elasticsearch:{es['spec']['version']}" in listed

    def test_should_carry_the_vendored_subchart_archives_unchanged(self, unpacked):
        for archive in present_archives():
            shipped = (unpacked / "subcharts" / archive).read_bytes()
            assert shipped == (chartdeps.vendored_dir() / archive).read_bytes(), archive

    def test_should_verify_its_checksums(self, unpacked):
        lines = (unpacked / "SHA256SUMS").read_text().splitlines()
        sums = dict(reversed(line.split("  ", 1)) for line in lines)
        files = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()}
        assert set(sums) == files - {"SHA256SUMS"}
        assert len(lines) == len(sums)
        for rel, digest in sums.items():
            assert hashlib.sha256((unpacked / rel).read_bytes()).hexdigest() == digest, rel
        if shutil.which("sha256sum"):
            check = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"],
                                   cwd=unpacked, capture_output=True, text=True, check=False)
            assert check.returncode == 0, check.stdout + check.stderr

    def test_should_refuse_without_every_subchart_unless_partial(self, tmp_path):
        chart = tmp_path / NAME
        shutil.copytree(CHART_DIR, chart)
        for archive in (chart / "charts").glob("*.tgz"):
            archive.unlink()
        with pytest.raises(PublishError):
            build_bundle(tmp_path / "dist", chart_dir=chart)


def go_module_file(module: str, version: str, path: str) -> Path | None:
    """A file of a Go module in the local module cache, if it was downloaded."""
    if not shutil.which("go"):
        return None
    cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True,
                           check=False).stdout.strip()
    found = Path(cache) / f"{module}@{version}" / path
    return found if cache and found.is_file() else None


class TestOperatorImages:
    """The prerequisite operators' images in images.txt are what those operators run."""

    def test_should_list_the_image_the_eck_operator_chart_runs(self, helm):
        archive = chart_cache_dir() / f"{OPERATOR_CHART}-{OPERATOR_VERSION}.tgz"
        if not archive.is_file():
            pytest.skip(f"{archive.name} is not in the chart cache ({chart_cache_dir()}): "
                        f"helm pull {OPERATOR_CHART} --repo https://helm.elastic.co --version "
                        f"{OPERATOR_VERSION} into it")
        out = subprocess.run([str(helm_binary(helm)), "template", "op", str(archive),
                              "--kube-version", KUBERNETES_VERSION],
                             capture_output=True, text=True, check=True).stdout
        images = {c["image"] for doc in yaml.safe_load_all(out) if doc
                  for c in jmespath.search("spec.template.spec.containers", doc) or []}
        assert images and images <= set(OPERATOR_IMAGES)

    def test_should_list_the_image_cloudnative_pg_runs(self):
        versions = go_module_file("github.com/cloudnative-pg/cloudnative-pg", f"v{CNPG_VERSION}",
                                  "pkg/versions/versions.go")
        if versions is None:
            pytest.skip("the CloudNativePG module is not in the Go module cache: the live "
                        "tier's operator build (`make cluster-up`) downloads it")
        default = re.search(r'DefaultOperatorImageName\s*=\s*"([^"]+)"', versions.read_text())
        assert default and default.group(1) in OPERATOR_IMAGES


@pytest.fixture
def site_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Every source of the bundle on this machine: the plugin archive on a loopback server,
    the operator chart and CloudNativePG manifest in a chart cache of their own (their
    upstream addresses pointed at a closed loopback port, so the cache is what answers)."""
    files = plugin_tree()
    archive = tarball(files)
    cache = tmp_path / "cache"
    cache.mkdir()
    operator = cache / f"eck-operator-{OPERATOR_VERSION}.tgz"
    operator.write_bytes(b"the operator chart as `helm pull` gives it")
    manifest = cache / f"cnpg-{CNPG_VERSION}.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata: {name: cnpg-system}\n")
    monkeypatch.setenv("LA_STACK_CHART_CACHE", str(cache))
    monkeypatch.setattr(bundle_sources, "ECK_OPERATOR_REPO", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setattr(bundle_sources, "CNPG_MANIFEST", f"http://127.0.0.1:{free_port()}/x")
    with ArchiveServer(archive) as server:
        values = tmp_path / "site.yaml"
        values.write_text(yaml.safe_dump({"logstoreXapi": {"plugin": {
            "url": server.url, "treeSha256": tree_sha256(files)}}}))
        yield {"values": values, "archive": archive, "operator": operator,
               "manifest": manifest}


def unpack(bundle: Path, into: Path) -> Path:
    with tarfile.open(bundle) as tar:
        tar.extractall(into, filter="data")
    return into / ROOT


class TestAirGappedSources:
    """The bundle holds what images.txt's operators and the values name: the operators'
    chart and manifest, the plugin archive the values point at, the drivers' wheels."""

    def test_should_hold_every_source_the_values_name(self, site_sources, tmp_path):
        bundle = build_bundle(tmp_path / "dist", values_files=[site_sources["values"]],
                              allow_partial=True)
        root = unpack(bundle, tmp_path / "out")
        partial = root / "PARTIAL.txt"
        lacking = partial.read_text().splitlines() if partial.exists() else []
        # Only subchart archives this machine does not have may be missing.
        assert [line for line in lacking if not line.endswith("subchart archive absent")] == []
        plugin = root / f"moodle/logstore_xapi-{PLUGIN['release']}.tar.gz"
        assert plugin.read_bytes() == site_sources["archive"]
        operators = root / "operators"
        assert (operators / site_sources["operator"].name).read_bytes() == site_sources[
            "operator"].read_bytes()
        assert (operators / site_sources["manifest"].name).read_text() == site_sources[
            "manifest"].read_text()
        images = (root / "images.txt").read_text().splitlines()
        assert f"docker.elastic.co/eck/eck-operator:{OPERATOR_VERSION}" in images

    def test_should_carry_a_wheel_per_pinned_driver_and_platform(self, site_sources, tmp_path):
        bundle = build_bundle(tmp_path / "dist", values_files=[site_sources["values"]],
                              allow_partial=True)
        wheels = [p.name for p in (unpack(bundle, tmp_path / "out") / "python").glob("*.whl")]
        for pin in chart_values.pip_pins("superset.bootstrapScript"):
            name, version = pin.split("==")
            prefix = f"{name.replace('-', '_')}-{version}-"
            found = [w for w in wheels if w.lower().startswith(prefix)]
            assert found, pin
            if not any(w.endswith("-none-any.whl") for w in found):
                # A compiled wheel: one per node architecture.
                assert {a for a in ("x86_64", "aarch64") if any(a in w for w in found)} == {
                    "x86_64", "aarch64"}, found

    def test_should_refuse_an_archive_whose_tree_differs(self, site_sources, tmp_path):
        values = yaml.safe_load(site_sources["values"].read_text())
        values["logstoreXapi"]["plugin"]["treeSha256"] = "0" * 64
        wrong = tmp_path / "wrong.yaml"
        wrong.write_text(yaml.safe_dump(values))
        with pytest.raises(PublishError, match="treeSha256"):
            build_bundle(tmp_path / "dist", values_files=[wrong], allow_partial=True)
        assert not (tmp_path / "dist").exists() or not any((tmp_path / "dist").iterdir())

    def test_should_name_what_it_cannot_fetch_unless_partial(self, site_sources, tmp_path):
        values = yaml.safe_load(site_sources["values"].read_text())
        closed = f"http://127.0.0.1:{free_port()}/v9.tar.gz"
        values["logstoreXapi"]["plugin"]["url"] = closed
        unreachable = tmp_path / "unreachable.yaml"
        unreachable.write_text(yaml.safe_dump(values))
        # Without every subchart it refuses before fetching anything, naming them instead.
        refusal = "subchart archives missing" if chartdeps.missing() else re.escape(closed)
        with pytest.raises(PublishError, match=refusal):
            build_bundle(tmp_path / "dist", values_files=[unreachable])
        bundle = build_bundle(tmp_path / "dist", values_files=[unreachable], allow_partial=True)
        lacks = (unpack(bundle, tmp_path / "out") / "PARTIAL.txt").read_text()
        assert f"moodle/logstore_xapi-{PLUGIN['release']}.tar.gz: {closed}" in lacks
