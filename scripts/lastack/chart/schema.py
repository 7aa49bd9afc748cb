"""Generate `values.schema.json` (JSON Schema draft-07) from the annotated `values.yaml`.

`values.yaml` is the single source of truth: types come from the default values,
everything else from its annotations (their grammar: `lastack.chart.annotations`).

Inference from the default: bool → boolean, int → integer, float → number, str → string
(but a Kubernetes quantity with a unit, like `50m` or `64Mi`, → string or number),
list → array (`items` typed when every element is a scalar of one type; lists of maps get
`items: {type: object}`), map → object with one property per key. A null default leaves the
type open unless `type:` is annotated, in which case `"null"` is added to it. Objects we
own are closed (`additionalProperties: false`) when their default is non-empty, so a typo
is rejected; `global` and the subchart sections (the dependencies of Chart.yaml, by alias
or name) and everything below them stay open, because Helm merges upstream defaults and
globals into them before it validates. An annotated `additionalProperties: true` opens the
key's whole subtree the same way (for Kubernetes-shaped maps such as `resources`); an
annotated `false` closes only that object. Empty maps are open objects.

The generator fails, naming the line, on a malformed annotation, an unknown keyword, a
description or annotation that is not directly above a key, an invalid sub-schema, an
`examples` entry that its own sub-schema rejects, or a default that the schema rejects.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from lastack.chart import generated
from lastack.chart.annotations import AnnotationError, KeyDoc, ParsedValues, parse_values
from lastack.paths import CHART_DIR, REPO_ROOT

SCHEMA_FILE = "values.schema.json"
DRAFT = "http://json-schema.org/draft-07/schema#"

_SCALAR_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))

# A Kubernetes quantity with a unit ("50m", "64Mi", "1e3"): Helm users also write plain
# numbers for these (`cpu: 1`, `--set ...cpu=2`), so such defaults accept both.
_QUANTITY = re.compile(
    r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)$")


def infer_type(value: Any) -> str | list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) and _QUANTITY.match(value):
        return ["string", "number"]
    for py_type, name in _SCALAR_TYPES:
        if isinstance(value, py_type):
            return name
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"  # dates and other YAML scalars arrive as strings in Helm


def _with_null(type_: Any) -> list[str]:
    types = [type_] if isinstance(type_, str) else list(type_)
    types = [t for t in dict.fromkeys(types) if t != "null"]
    return types + ["null"]


def _items_for(value: list) -> dict[str, Any] | None:
    kinds = {json.dumps(infer_type(v)) for v in value}
    if len(kinds) == 1 and "null" not in kinds:
        return {"type": json.loads(kinds.pop())}
    return None


class _Builder:
    def __init__(self, parsed: ParsedValues, open_paths: set[tuple[str, ...]]) -> None:
        self.parsed = parsed
        self.open_paths = open_paths

    def node(self, path: tuple[str, ...], value: Any, is_open: bool) -> dict[str, Any]:
        doc = self.parsed.docs.get(path)
        keywords = dict(doc.keywords) if doc else {}
        # An annotated `additionalProperties: true` opens the whole subtree, like a subchart's.
        is_open = (is_open or path in self.open_paths
                   or keywords.get("additionalProperties") is True)
        schema: dict[str, Any] = {}
        if doc and doc.description:
            schema["description"] = doc.description
        inferred = infer_type(value)
        if inferred:
            schema["type"] = inferred
        if isinstance(value, dict):
            props = {k: self.node(path + (str(k),), v, is_open) for k, v in value.items()}
            if props:
                schema["properties"] = props
                schema["additionalProperties"] = is_open
            required = sorted(k for k, sub in props.items() if sub.pop("x-required", False))
            if required:
                schema["required"] = required
        elif isinstance(value, list):
            items = _items_for(value) if value else None
            if items:
                schema["items"] = items
        elif inferred is not None:
            schema["default"] = value
        if isinstance(value, list | dict) and not value:
            schema["default"] = value
        self._apply(schema, keywords, value)
        if doc and doc.rules:
            schema["allOf"] = schema.get("allOf", []) + doc.rules
        if doc:
            self._check(schema, value, doc)
        return schema

    @staticmethod
    def _apply(schema: dict[str, Any], keywords: dict[str, Any], value: Any) -> None:
        nullable = keywords.pop("nullable", None)
        required = keywords.pop("required", None)
        if isinstance(required, list):
            schema["required"] = sorted(set(schema.get("required", [])) | set(required))
        elif required:
            schema["x-required"] = True
        extra_props = keywords.pop("properties", None)
        if isinstance(extra_props, dict):
            schema["properties"] = {**schema.get("properties", {}), **extra_props}
        elif extra_props is not None:
            keywords["properties"] = extra_props  # let the meta-schema check report it
        schema.update(keywords)
        if "type" in schema and (nullable or (value is None and "type" in keywords)):
            schema["type"] = _with_null(schema["type"])

    def _check(self, schema: dict[str, Any], value: Any, doc: KeyDoc) -> None:
        lines = doc.schema_lines or [doc.line]
        where = lines[0]  # the first annotation line: editors can jump to it
        probe = {k: v for k, v in schema.items() if k != "x-required"}
        try:
            jsonschema.Draft7Validator.check_schema(probe)
        except jsonschema.SchemaError as err:
            raise AnnotationError(
                f"{self.parsed.source}:{where}: invalid schema for "
                f"{'.'.join(doc.path)}: {err.message}") from None
        # The shared definitions beside it, so that an example can follow a `$ref`.
        validator = jsonschema.Draft7Validator({**probe, "$defs": self.parsed.definitions})
        for example in probe.get("examples", []):
            error = jsonschema.exceptions.best_match(validator.iter_errors(example))
            if error:
                raise AnnotationError(
                    f"{self.parsed.source}:{where}: example {example!r} of "
                    f"{'.'.join(doc.path)} does not match its schema: {error.message}")


def build_schema(parsed: ParsedValues, open_sections: set[str] | frozenset[str] = frozenset()
                 ) -> dict[str, Any]:
    """The draft-07 schema of `parsed`; `open_sections` are top-level keys left open."""
    open_paths = {("global",)} | {(name,) for name in open_sections}
    builder = _Builder(parsed, open_paths)
    values = dict(parsed.values)
    values.setdefault("global", {})  # Helm hands `global` to every chart: always declare it
    body = builder.node((), values, False)
    body.pop("default", None)
    body.pop("description", None)
    schema = {"$schema": DRAFT, "title": "Values of the la-stack chart", **body}
    schema["additionalProperties"] = False
    if parsed.root_rules:
        schema["allOf"] = schema.get("allOf", []) + parsed.root_rules
    if parsed.definitions:
        schema["$defs"] = parsed.definitions
    _check_refs(parsed, schema, schema)
    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as err:
        raise AnnotationError(f"{parsed.source}: invalid root rule: {err.message}") from None
    _check_defaults(parsed, schema)
    return schema


def _check_refs(parsed: ParsedValues, node: Any, root: dict[str, Any], where: str = "") -> None:
    """Every local `$ref` points at a sub-schema of the document (a misspelt definition
    would otherwise fail only when a value reaches it); `where` is the schema path so far."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _check_refs(parsed, item, root, f"{where}/{index}")
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        target: Any = root
        for part in ref.removeprefix("#").strip("/").split("/") if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            raise AnnotationError(f"{parsed.source}: $ref {ref!r} at {where or '/'} points at "
                                  "no sub-schema (a definition is missing or misspelt)")
    for key, value in node.items():
        _check_refs(parsed, value, root, f"{where}/{key}")


def _check_defaults(parsed: ParsedValues, schema: dict[str, Any]) -> None:
    """The defaults must satisfy their own schema; name the key's line when they do not."""
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft7Validator(schema).iter_errors(parsed.values))
    if error is None:
        return
    path = tuple(str(p) for p in error.absolute_path)
    line = parsed.line_of(path)
    where = f"{parsed.source}:{line}" if line else parsed.source
    dotted = ".".join(path) or "(root)"
    raise AnnotationError(f"{where}: the default of {dotted} breaks its schema: {error.message}")


def dump(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def subchart_sections(chart_dir: Path = CHART_DIR) -> set[str]:
    """Top-level values keys that belong to subcharts (alias, else name)."""
    meta = yaml.safe_load((chart_dir / "Chart.yaml").read_text()) or {}
    return {d.get("alias") or d["name"] for d in meta.get("dependencies") or []}


def generate(chart_dir: Path = CHART_DIR) -> str:
    """The text of values.schema.json for the chart in `chart_dir`."""
    values_file = chart_dir / "values.yaml"
    parsed = parse_values(values_file.read_text(), source=str(values_file.name))
    return dump(build_schema(parsed, subchart_sections(chart_dir)))


def main(args: list[str]) -> int:
    return generated.main(args, "schema", "write values.schema.json from values.yaml", "schema",
                          CHART_DIR / SCHEMA_FILE, lambda: generate(CHART_DIR), (AnnotationError,),
                          REPO_ROOT)
