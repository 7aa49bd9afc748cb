"""What Moodle really sends, replayed as a course: the plugin's own statements (the shared
logstore_xapi v5.1.0 fixture) done by many learners over the days of a term, so that
pictures of the dashboards look like a course while every statement keeps the plugin's shape.
Only the actor, the time and the ids an LRS would assign change."""

from __future__ import annotations

import copy
import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lastack.paths import shared_dir

FIXTURE = Path("fixtures") / "logstore_xapi-v5.1.0" / "statements.json"
TERM_START = datetime(2026, 9, 7, tzinfo=UTC)  # a Monday
SITE = "http://www.example.org"  # the fixture's own site


def fixture_statements() -> list[dict[str, Any]] | None:
    """The fixture's statements, or None when the shared folder is not beside the checkout."""
    path = shared_dir() / FIXTURE
    if not path.exists():
        return None
    return [entry["statement"] for entry in json.loads(path.read_text())]


def replay(statements: list[dict[str, Any]], learners: int = 24, days: int = 28,
           seed: int = 7) -> list[dict[str, Any]]:
    """Each learner, on about two days in three, does one to six of `statements`."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for day in range(days):
        for learner in range(1, learners + 1):
            if rng.random() < 0.35:
                continue
            for statement in rng.sample(statements, rng.randint(1, 6)):
                moment = TERM_START + timedelta(days=day, hours=rng.randint(8, 20),
                                                minutes=rng.randint(0, 59))
                when = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                done = copy.deepcopy(statement)
                done.update(id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                            actor={"objectType": "Agent", "name": f"Learner {learner}",
                                   "account": {"homePage": SITE, "name": str(learner)}},
                            timestamp=when, stored=when)
                out.append(done)
    return out
