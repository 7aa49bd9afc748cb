"""The plugin's statements replayed as a course (lastack.testing.replay), for the screenshots."""

from __future__ import annotations

from collections import Counter

import pytest

from lastack.testing import replay
from lastack.testing.xapi_checks import problems


@pytest.fixture(scope="module")
def fixture() -> list[dict]:
    statements = replay.fixture_statements()
    if statements is None:
        pytest.skip(f"{replay.FIXTURE} is absent: the shared fixtures folder must sit beside "
                    "the checkout (or set LA_STACK_SHARED)")
    return statements


def test_should_keep_every_statement_as_the_plugin_sent_it(fixture):
    replayed = replay.replay(fixture, learners=5, days=3)
    moved = {"id", "actor", "timestamp", "stored"}
    originals = [{k: v for k, v in s.items() if k not in moved} for s in fixture]
    for statement in replayed:
        assert {k: v for k, v in statement.items() if k not in moved} in originals
        assert problems(statement) == []


def test_should_spread_learners_and_days_the_same_way_each_time(fixture):
    replayed = replay.replay(fixture)
    assert replayed == replay.replay(fixture)
    learners = Counter(s["actor"]["account"]["name"] for s in replayed)
    days = Counter(s["timestamp"][:10] for s in replayed)
    assert (len(learners), len(days)) == (24, 28)
    assert len({s["id"] for s in replayed}) == len(replayed)
