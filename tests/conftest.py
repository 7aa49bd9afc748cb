"""Shared pytest configuration: Helm versions, subchart availability, tier markers."""

from __future__ import annotations

import pytest

from lastack.render import missing_subcharts_reason

# Every render-tier case runs under both supported Helm major versions.
HELM_VERSIONS = ("helm3", "helm4")
SUBCHARTS = ("eck-elasticsearch", "ralph", "superset", "moodle")


def requires_subcharts(*names: str) -> pytest.MarkDecorator:
    """Skip (with how to unskip) unless these subchart archives are vendored."""
    reason = missing_subcharts_reason(names or SUBCHARTS)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(params=HELM_VERSIONS)
def helm(request: pytest.FixtureRequest) -> str:
    """The Helm binary name (`helm3` or `helm4`) a case renders with."""
    return request.param


def mentions_key(message: str, dotted_key: str) -> bool:
    """Whether an error names a values key, dotted (our messages) or as a JSON pointer
    (schema errors), without depending on the rest of Helm's wording."""
    return dotted_key in message or "/" + dotted_key.replace(".", "/") in message
