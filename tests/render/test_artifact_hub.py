"""What Artifact Hub shows of the chart: icon, maintainers, the generated image list and
change log (`make annotations`), and the repository metadata file."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from lastack.chart import chart_annotations
from lastack.chart.chart_annotations import AnnotationError, changelog_section
from lastack.chart.render import missing_subcharts_reason, render_chart
from lastack.paths import CHART_DIR, REPO_ROOT
from tests.helpers import SUBCHARTS
from tests.rendered_images import full_reference, walked_images

RAW_PREFIX = "/la-stack/la-stack/main/"


def chart_yaml() -> dict:
    return yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())


def annotation(key: str) -> list[dict]:
    return yaml.safe_load(chart_yaml()["annotations"][key])


class TestChartMetadata:
    """The icon is a file of this repository; every maintainer can be reached."""

    def test_should_point_the_icon_at_an_svg_in_the_repository(self):
        url = urlsplit(chart_yaml()["icon"])
        assert url.netloc == "raw.githubusercontent.com" and url.path.startswith(RAW_PREFIX)
        icon = REPO_ROOT / url.path.removeprefix(RAW_PREFIX)
        root = ET.parse(icon).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox")

    def test_should_give_every_maintainer_an_email(self):
        maintainers = chart_yaml()["maintainers"]
        assert maintainers and all("@" in m.get("email", "") for m in maintainers)

    def test_should_list_the_maintainers_as_repository_owners(self):
        repo = yaml.safe_load((REPO_ROOT / "artifacthub-repo.yml").read_text())
        owners = {(o["name"], o["email"]) for o in repo["owners"]}
        assert owners == {(m["name"], m["email"]) for m in chart_yaml()["maintainers"]}


class TestImagesAnnotation:
    """`artifacthub.io/images` lists each image the chart's defaults make a cluster pull."""

    def test_should_name_each_image_once(self):
        entries = annotation("artifacthub.io/images")
        names = [e["name"] for e in entries]
        assert len(names) == len(set(names))
        assert [e["image"] for e in entries] == sorted({e["image"] for e in entries})

    def test_should_hold_every_image_of_the_umbrellas_own_templates(self):
        listed = {e["image"] for e in annotation("artifacthub.io/images")}
        assert {full_reference(i) for i in walked_images(render_chart())} <= listed

    def test_should_be_exactly_the_full_renders_images(self):
        reason = missing_subcharts_reason(SUBCHARTS)
        if reason:
            pytest.skip(reason)
        listed = [e["image"] for e in annotation("artifacthub.io/images")]
        assert set(listed) == {full_reference(i) for i in walked_images(render_chart())}
        assert len(listed) == len(set(listed)), "one entry per image, however it is spelled"
        assert chart_annotations.main(["--check"]) == 0


class TestChangesAnnotation:
    """`artifacthub.io/changes` is the chart version's section of CHANGELOG.md."""

    def test_should_carry_the_changelog_section_of_the_chart_version(self):
        version = str(chart_yaml()["version"])
        text = (REPO_ROOT / "CHANGELOG.md").read_text()
        section = text.split(f"## [{version}]", 1)[1].split("\n## ", 1)[0]
        changes = annotation("artifacthub.io/changes")
        assert changes and all(c["description"].split()[0] in section for c in changes)
        assert len(changes) == section.count("\n- ")
        assert chart_yaml()["annotations"]["artifacthub.io/containsSecurityUpdates"] == str(
            "### Security" in section).lower()

    def test_should_join_wrapped_entries_and_map_headings_to_kinds(self):
        text = ("## [1.2.0] - 2027-01-01\n\n### Security\n\n- Fixes a leak\n  in the hook.\n\n"
                "### Removed\n\n- The old flag.\n\n## [1.1.0]\n\n### Added\n\n- Older.\n")
        assert changelog_section(text, "1.2.0") == [
            {"kind": "security", "description": "Fixes a leak in the hook."},
            {"kind": "removed", "description": "The old flag."}]

    @pytest.mark.parametrize(("text", "message"), [
        ("## [1.1.0]\n\n### Added\n\n- x\n", "no section `## [1.2.0]`"),
        ("## [1.2.0]\n\n### Improved\n\n- x\n", "`### Improved` is not one of"),
        ("## [1.2.0]\n\n- x\n", "before any `### <kind>` heading"),
        ("## [1.2.0]\n\n### Added\n", "lists no change"),
    ])
    def test_should_name_what_is_wrong_with_the_changelog(self, text, message):
        with pytest.raises(AnnotationError, match=re.escape(message)):
            changelog_section(text, "1.2.0")


@pytest.fixture
def chart_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    chart = tmp_path / "charts" / "la-stack"
    chart.mkdir(parents=True)
    shutil.copyfile(CHART_DIR / "Chart.yaml", chart / "Chart.yaml")
    shutil.copyfile(REPO_ROOT / "CHANGELOG.md", tmp_path / "CHANGELOG.md")
    monkeypatch.setattr(chart_annotations, "CHART_DIR", chart)
    monkeypatch.setattr(chart_annotations, "CHANGELOG", tmp_path / "CHANGELOG.md")
    monkeypatch.setattr(chart_annotations, "REPO_ROOT", tmp_path)
    # Only the changes are checked here: the image list is the full-umbrella test's.
    monkeypatch.setattr(chart_annotations, "absent_subcharts", lambda *_: ["all"])
    return chart


class TestCheckMode:
    """`make annotations --check` fails with one line on a stale change log, writes nothing."""

    def test_should_pass_on_the_committed_chart(self, chart_copy):
        assert chart_annotations.main(["--check"]) == 0

    def test_should_fail_when_the_changelog_moved_on(self, chart_copy, capsys):
        changelog = chart_copy.parent.parent / "CHANGELOG.md"
        changelog.write_text(changelog.read_text().replace(
            "### Added\n", "### Added\n\n- Something new.\n", 1))
        before = (chart_copy / "Chart.yaml").read_text()
        assert chart_annotations.main(["--check"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Chart.yaml is stale" in err
        assert (chart_copy / "Chart.yaml").read_text() == before

    def test_should_keep_hand_written_annotations_byte_for_byte(self):
        text = (CHART_DIR / "Chart.yaml").read_text()
        images = chart_annotations.committed_images()
        out = chart_annotations.generate(images=images)
        assert out == text
        assert yaml.safe_load(out)["annotations"]["artifacthub.io/links"] == chart_yaml()[
            "annotations"]["artifacthub.io/links"]
