"""Helpers every tier imports: Helm versions, subchart availability, key-naming errors, a
walk of rendered objects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lastack.chart.render import missing_subcharts_reason

# Every render-tier case runs under both supported Helm major versions.
HELM_VERSIONS = ("helm3", "helm4")
SUBCHARTS = ("eck-elasticsearch", "ralph", "superset-operator", "valkey", "moodle")


def requires_subcharts(*names: str) -> pytest.MarkDecorator:
    """Skip (with how to unskip) unless these subchart archives are vendored."""
    reason = missing_subcharts_reason(names or SUBCHARTS)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def xfails_with_subchart(name: str, defect: str) -> pytest.MarkDecorator:
    """A known defect of an upstream subchart: a strict xfail only while its archive is
    vendored. Without it the case runs on the umbrella's own objects and must pass."""
    present = missing_subcharts_reason([name]) is None
    return pytest.mark.xfail(present, strict=True,
                             reason=f"{defect} (expected only while {name} is vendored)")


def mentions_key(message: str, dotted_key: str) -> bool:
    """Whether an error names a values key, dotted (our messages) or as a JSON pointer
    (schema errors), without depending on the rest of Helm's wording."""
    return dotted_key in message or "/" + dotted_key.replace(".", "/") in message


def dicts_in(node: object) -> Iterator[dict]:
    """Every mapping anywhere in a rendered object, the object itself first."""
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from dicts_in(child)
    elif isinstance(node, list):
        for child in node:
            yield from dicts_in(child)
