"""`make annotations`: the Artifact Hub annotations of Chart.yaml that are generated.

- `artifacthub.io/images`: every image the chart runs with its defaults (`lastack.chart.images`),
  each once, by its full reference; it needs every subchart archive, since most images
  come from the subcharts.
- `artifacthub.io/changes` and `artifacthub.io/containsSecurityUpdates`: the section of
  CHANGELOG.md for the chart's version (Keep a Changelog headings are Artifact Hub kinds).

Everything else in Chart.yaml is written by hand and left byte for byte as it is. With
`--check` and subchart archives absent, the image list cannot be computed: it is left as
committed and the check says so (the full-umbrella tests compare it exactly).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from lastack.chart import generated
from lastack.chart.images import chart_images, qualified, repository
from lastack.chart.render import absent_subcharts
from lastack.paths import CHART_DIR, REPO_ROOT

CHANGELOG = REPO_ROOT / "CHANGELOG.md"
IMAGES_KEY = "artifacthub.io/images"
CHANGES_KEY = "artifacthub.io/changes"
SECURITY_KEY = "artifacthub.io/containsSecurityUpdates"
# Keep a Changelog's headings and the `kind` Artifact Hub gives each.
KINDS = {"Added": "added", "Changed": "changed", "Deprecated": "deprecated",
         "Removed": "removed", "Fixed": "fixed", "Security": "security"}


class AnnotationError(ValueError):
    """An input the annotations come from is unusable; the message says which and why."""


def changelog_section(text: str, version: str) -> list[dict[str, str]]:
    """The `- kind/description` entries of `## [<version>]`, in the changelog's order."""
    sections = re.split(r"^## ", text, flags=re.M)
    heading = re.compile(rf"\[?{re.escape(version)}\]?(\s|$)")
    body = next((s for s in sections[1:] if heading.match(s)), None)
    if body is None:
        raise AnnotationError(f"CHANGELOG.md has no section `## [{version}]` for the chart's "
                              "version")
    changes: list[dict[str, str]] = []
    kind = None
    for line in body.splitlines()[1:]:
        if line.startswith("### "):
            title = line[4:].strip()
            if title not in KINDS:
                raise AnnotationError(f"CHANGELOG.md [{version}]: `### {title}` is not one of "
                                      f"{', '.join(KINDS)}")
            kind = KINDS[title]
        elif line.startswith("- "):
            if kind is None:
                raise AnnotationError(f"CHANGELOG.md [{version}]: an entry comes before any "
                                      "`### <kind>` heading")
            changes.append({"kind": kind, "description": line[2:].strip()})
        elif line.startswith("  ") and line.strip() and changes:
            # A wrapped entry continues on indented lines.
            changes[-1]["description"] += " " + line.strip()
    if not changes:
        raise AnnotationError(f"CHANGELOG.md [{version}] lists no change")
    return changes


def image_entries(images: list[str]) -> list[dict[str, str]]:
    """Artifact Hub's `name`/`image` pairs: the repository's last element names an image,
    or its whole path when two images would share that name."""
    short = [repository(i).rsplit("/", 1)[-1] for i in images]
    return [{"name": s if short.count(s) == 1 else repository(i), "image": i}
            for s, i in zip(short, images, strict=True)]


def block(key: str, entries: list[dict[str, str]]) -> str:
    # Wrapped like the rest of Chart.yaml; YAML folds the lines back into one description.
    dumped = yaml.safe_dump(entries, sort_keys=False, width=88, allow_unicode=True)
    return f"  {key}: |\n" + "".join(f"    {line}\n" for line in dumped.splitlines())


def replace_annotation(chart_yaml: str, key: str, text: str) -> str:
    """`chart_yaml` with the annotation `key` (a one-line value or a `|` block) replaced
    by `text`, or added first under `annotations:`."""
    pattern = re.compile(rf"^  {re.escape(key)}:.*\n(?:(?:    .*)?\n)*?(?=^  \S|^\S|\Z)", re.M)
    if pattern.search(chart_yaml):
        return pattern.sub(lambda _m: text, chart_yaml, count=1)
    if not re.search(r"^annotations:\n", chart_yaml, re.M):
        raise AnnotationError("Chart.yaml has no `annotations:` mapping")
    return re.sub(r"^annotations:\n", lambda m: m.group(0) + text, chart_yaml, count=1,
                  flags=re.M)


def committed_images(chart_dir: Path = CHART_DIR) -> list[str]:
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    return [e["image"] for e in yaml.safe_load(meta["annotations"].get(IMAGES_KEY) or "[]")]


def generate(chart_dir: Path = CHART_DIR, changelog: Path = CHANGELOG,
             images: list[str] | None = None) -> str:
    """Chart.yaml with its generated annotations current (`images`: the image list to
    write; default: computed from the render, which needs every subchart)."""
    text = (chart_dir / "Chart.yaml").read_text()
    version = str(yaml.safe_load(text)["version"])
    changes = changelog_section(changelog.read_text(), version)
    security = any(c["kind"] == "security" for c in changes)
    text = replace_annotation(text, CHANGES_KEY, block(CHANGES_KEY, changes))
    text = replace_annotation(text, SECURITY_KEY, f'  {SECURITY_KEY}: "{str(security).lower()}"\n')
    if images is None:
        absent = absent_subcharts(chart_dir)
        if absent:
            raise AnnotationError("the image list needs every subchart archive; absent: "
                                  f"{', '.join(d.archive for d in absent)} (run `make deps`)")
        images = sorted({qualified(i) for i in chart_images(chart_dir=chart_dir)})
    return replace_annotation(text, IMAGES_KEY, block(IMAGES_KEY, image_entries(images)))


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack annotations", description=__doc__)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when Chart.yaml's generated annotations are stale")
    opts = parser.parse_args(args)
    # Without every subchart, --check keeps the committed image list; a write is refused
    # by generate, which names the absent archives.
    absent = absent_subcharts() if opts.check else []
    try:
        text = generate(CHART_DIR, CHANGELOG, committed_images(CHART_DIR) if absent else None)
    except (AnnotationError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if absent:
        print(f"[annotations] {IMAGES_KEY} not checked: subchart archives absent", flush=True)
    return generated.write_or_check(CHART_DIR / "Chart.yaml", text, opts.check, "annotations",
                                    root=REPO_ROOT)
