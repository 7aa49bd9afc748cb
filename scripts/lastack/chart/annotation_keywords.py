"""One annotation's body, `<k>: <v>[; <k>: <v>]...`: draft-07 keywords with YAML flow
values (the grammar around it: `lastack.chart.annotations`)."""

from __future__ import annotations

from typing import Any

import yaml

# Draft-07 keywords an annotation may set; anything else is a typo worth failing on.
KEYWORDS = frozenset({
    "$comment", "$ref", "additionalItems", "additionalProperties", "allOf", "anyOf", "const",
    "contains", "contentEncoding", "contentMediaType", "default", "definitions",
    "dependencies", "description", "else", "enum", "examples", "exclusiveMaximum",
    "exclusiveMinimum", "format", "if", "items", "maxItems", "maxLength", "maxProperties",
    "maximum", "minItems", "minLength", "minProperties", "minimum", "multipleOf", "not",
    "oneOf", "pattern", "patternProperties", "properties", "propertyNames", "readOnly",
    "required", "then", "title", "type", "uniqueItems", "writeOnly",
})
EXTRA_KEYWORDS = frozenset({"nullable"})


class AnnotationError(ValueError):
    """values.yaml cannot be turned into a schema; the message names the line."""


def fail(source: str, line: int, message: str) -> AnnotationError:
    return AnnotationError(f"{source}:{line}: {message}")


def _split_top_level(body: str) -> list[str]:
    """Split `k: v; k: v` on the `;` that sit outside brackets and quotes."""
    parts, depth, quote, start, prev = [], 0, "", 0, ":"
    for i, ch in enumerate(body):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"" and prev in ":,[{;":
            quote = ch  # only a quote that opens a value: `Ralph's` is plain text
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == ";" and depth == 0:
            parts.append(body[start:i])
            start = i + 1
        if not ch.isspace():
            prev = ch
    parts.append(body[start:])
    return [p.strip() for p in parts if p.strip()]


def parse_keywords(body: str, source: str, line: int) -> dict[str, Any]:
    """`k: v; k: v` → {k: v}, each value read as YAML flow; errors name the line."""
    if not body or not body.strip():
        raise fail(source, line, "empty @schema annotation (expected `key: value`)")
    out: dict[str, Any] = {}
    for part in _split_top_level(body):
        key, sep, raw = part.partition(":")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise fail(source, line, f"malformed annotation {part!r} (expected `key: value`)")
        if key not in KEYWORDS | EXTRA_KEYWORDS:
            raise fail(source, line, f"unknown schema keyword {key!r}")
        try:
            value = yaml.safe_load(raw.strip())
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or "invalid YAML"
            raise fail(source, line, f"value of {key!r} is not valid YAML flow: {problem}")\
                from None
        if key in out:
            raise fail(source, line, f"keyword {key!r} given twice")
        if key == "$ref" and not str(value).startswith("#"):
            raise fail(source, line, "only local $ref (starting with '#') is allowed")
        out[key] = value
    return out
