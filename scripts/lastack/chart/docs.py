"""Render the chart's README.md from README.md.mustache, Chart.yaml and the values.

The values table comes from the same parse as the schema (`lastack.chart.schema`): types from
the generated schema, descriptions from the `# --` comments, defaults from values.yaml.
Output depends only on the repository's files, so `--check` can compare it byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import chevron
import yaml

from lastack.chart import generated
from lastack.chart import schema as schema_mod
from lastack.chart.annotations import AnnotationError, parse_values
from lastack.chart.chart_values import pins_in
from lastack.paths import CHART_DIR, REPO_ROOT
from lastack.tools.controlplane_build import CNPG_VERSION, ECK_VERSION
from lastack.tools.toolchain import KUBERNETES_VERSION

TEMPLATE_FILE = "README.md.mustache"
README_FILE = "README.md"
# The operator release the README tells users to install first; the preflight message in
# templates/_helpers.tpl names the same version (a test keeps them equal).
ECK_OPERATOR_VERSION = ECK_VERSION
# Defaults longer than this are summarised, so a table row stays readable.
MAX_DEFAULT = 60


def code(text: str) -> str:
    """A Markdown code span that survives a table cell (pipes escaped, backticks fenced)."""
    text = text.replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(text: str) -> str:
    """Prose for a table cell: no raw newlines, no bare pipes."""
    paragraphs = [p.replace("\n", " ") for p in text.split("\n\n")]
    return "<br><br>".join(paragraphs).replace("|", "\\|")


def key_segment(key: str) -> str:
    # Dots inside a key are escaped the way `helm --set` expects them.
    return key.replace(".", "\\.")


def format_default(value: Any) -> str:
    if isinstance(value, list) and value and len(json.dumps(value)) > MAX_DEFAULT:
        return code(f"[…{len(value)} item{'s' if len(value) != 1 else ''}]")
    if isinstance(value, dict) and value and len(json.dumps(value)) > MAX_DEFAULT:
        return code(f"{{…{len(value)} key{'s' if len(value) != 1 else ''}}}")
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    if len(text) > MAX_DEFAULT:
        text = text[: MAX_DEFAULT - 1] + "…"
    return code(text)


def format_type(sub: dict[str, Any]) -> str:
    type_ = sub.get("type")
    if type_ is None:
        return "any"
    types = [type_] if isinstance(type_, str) else list(type_)
    items = sub.get("items")
    if "array" in types and isinstance(items, dict) and isinstance(items.get("type"), str):
        types = [f"{items['type']}[]" if t == "array" else t for t in types]
    return " or ".join(types)


def describe(sub: dict[str, Any]) -> str:
    text = sub.get("description", "")
    if "enum" in sub:
        allowed = ", ".join(code(json.dumps(v, ensure_ascii=False)) for v in sub["enum"])
        text = f"{text} One of {allowed}.".strip()
    return cell(text)


def _row(path: tuple[str, ...], sub: dict[str, Any], default: str) -> dict[str, str]:
    return {"key": code(".".join(key_segment(k) for k in path)), "type": format_type(sub),
            "default": default, "description": describe(sub)}


def _rows(path: tuple[str, ...], value: Any, sub: dict[str, Any]) -> list[dict[str, str]]:
    if not (isinstance(value, dict) and value):
        return [_row(path, sub, format_default(value))]
    # A described object keeps its own row, so nested groups are explained in the table.
    rows = [_row(path, sub, "")] if sub.get("description") and len(path) > 1 else []
    props = sub.get("properties", {})
    for key, child in value.items():
        rows += _rows(path + (str(key),), child, props.get(str(key), {}))
    return rows


def values_sections(values: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    """One section per top-level key, in values.yaml order, each with its flattened rows."""
    sections = []
    for key, value in values.items():
        sub = schema["properties"].get(key, {})
        if isinstance(value, dict) and value:
            rows = _rows((key,), value, sub)
        else:
            rows = [_row((key,), sub, format_default(value))]
        sections.append({"name": key, "description": cell(sub.get("description", "")),
                         "rows": rows})
    return sections


def helm_timeout(values: dict[str, Any]) -> str:
    """The `--timeout` of the README's commands, for the default values: the chart's
    `la-stack.helmTimeout` (NOTES prints it for the installed values; a test keeps the two
    equal). Helm waits for each hook Job up to it: the longest Job deadline (program
    deadline + 60 s), one minute more, in whole minutes."""
    deadlines = [values["hooks"]["deadlineSeconds"]]
    if values["superset"]["enabled"] and values["supersetWiring"]["enabled"]:
        deadlines.append(values["supersetWiring"]["deadlineSeconds"])
    longest = max(deadlines) + 60
    return f"{-(-longest // 60) + 1}m"


def context(chart_dir: Path = CHART_DIR) -> dict[str, Any]:
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text())
    parsed = parse_values((chart_dir / "values.yaml").read_text())
    schema = schema_mod.build_schema(parsed, schema_mod.subchart_sections(chart_dir))
    deps = [{"name": d["name"], "alias": d.get("alias") or d["name"],
             "version": str(d["version"]), "repository": d["repository"],
             "condition": d.get("condition", "")}
            for d in meta.get("dependencies") or []]
    return {
        "name": meta["name"], "version": str(meta["version"]),
        "appVersion": str(meta.get("appVersion", "")),
        "kubeVersion": str(meta.get("kubeVersion", "")),
        "description": " ".join(str(meta.get("description", "")).split()),
        "dependencies": deps, "eckOperatorVersion": ECK_OPERATOR_VERSION,
        "cnpgVersion": CNPG_VERSION, "cnpgBranch": CNPG_VERSION.rsplit(".", 1)[0],
        "supersetImage": "{repository}:{tag}".format(**parsed.values["superset"]["image"]),
        "supersetDrivers": " ".join(pins_in(parsed.values["superset"]["bootstrapScript"])),
        "testedKubernetesVersion": KUBERNETES_VERSION,
        "helmTimeout": helm_timeout(parsed.values),
        "sections": values_sections(parsed.values, schema),
    }


def generate(chart_dir: Path = CHART_DIR) -> str:
    template = (chart_dir / TEMPLATE_FILE).read_text()
    text = chevron.render(template, context(chart_dir))
    return text.rstrip("\n") + "\n"


def main(args: list[str]) -> int:
    return generated.main(
        args, "docs", "write the chart README from its template and values", "README",
        CHART_DIR / README_FILE, lambda: generate(CHART_DIR), (AnnotationError,),
        REPO_ROOT)
