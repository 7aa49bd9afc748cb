"""Small inline values files through the values.schema.json generator, for its tests."""

from __future__ import annotations

import textwrap

import jsonschema

from lastack.chart.annotations import parse_values
from lastack.chart.schema import build_schema


def generate(text: str, open_sections: frozenset[str] = frozenset()) -> dict:
    return build_schema(parse_values(textwrap.dedent(text)), open_sections)


def prop(schema: dict, dotted: str) -> dict:
    for key in dotted.split("."):
        schema = schema["properties"][key]
    return schema


def is_valid(schema: dict, values: dict) -> bool:
    return jsonschema.Draft7Validator(schema).is_valid(values)
