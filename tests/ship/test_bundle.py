"""`make bundle`: the air-gapped archive's contents, its image list and its checksums."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from lastack import chartdeps
from lastack.bundle import build_bundle
from lastack.paths import CHART_DIR, VALUES_DIR
from lastack.publish import PublishError, chart_identity
from lastack.render import render_chart

NAME, VERSION = chart_identity()
ROOT = f"{NAME}-bundle-{VERSION}"
CONTAINER_KEYS = {"containers", "initContainers", "ephemeralContainers"}


def walked_images(node: object) -> set[str]:
    """Every `image` of every container list anywhere in the render, found by walking all
    of it (not by knowing where each kind keeps its pods)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if node.get("kind") == "Elasticsearch":
            spec = node.get("spec") or {}
            # Not written in the manifest; ECK pulls this when spec.image is unset.
            found.add(spec.get("image")
                      or f"docker.elastic.co/elasticsearch/elasticsearch:{spec['version']}")
        if node.get("kind") == "Superset":
            # The operator runs every component and task from spec.image.
            image = node["spec"]["image"]
            found.add(f"{image['repository']}:{image['tag']}")
        if node.get("kind") == "Cluster" and node["spec"].get("imageName"):
            found.add(node["spec"]["imageName"])
        for key, value in node.items():
            if key in CONTAINER_KEYS and isinstance(value, list):
                found |= {c["image"] for c in value if isinstance(c, dict) and c.get("image")}
            found |= walked_images(value)
    elif isinstance(node, list):
        for item in node:
            found |= walked_images(item)
    return found


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

    def test_should_hold_exactly_the_listed_files(self, bundle):
        with tarfile.open(bundle) as tar:
            members = {m.name for m in tar.getmembers() if m.isfile()}
        expected = {f"{ROOT}/{NAME}-{VERSION}.tgz", f"{ROOT}/images.txt", f"{ROOT}/SHA256SUMS"}
        expected |= {f"{ROOT}/subcharts/{a}" for a in present_archives()}
        expected |= {f"{ROOT}/values/{p.name}" for p in VALUES_DIR.glob("*.yaml")}
        assert members == expected

    def test_should_list_exactly_the_images_of_the_full_render(self, unpacked, helm):
        listed = (unpacked / "images.txt").read_text().splitlines()
        assert listed == sorted(set(listed)), "images.txt is sorted and without duplicates"
        # Whichever Helm renders, the stack runs the same images.
        assert set(listed) == walked_images(render_chart(helm=helm))
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
