"""What the charts must count per course, read off the statements themselves (the expected
side of the tests of the chart's ingest pipeline and of its per-course charts)."""

from __future__ import annotations

import copy

COURSE = "https://w3id.org/xapi/cmi5/activitytype/course"
OLD_COURSE = "http://id.tincanapi.com/activitytype/lms/course"


def course_of(statement: dict) -> dict | None:
    """What a teacher calls the statement's course, read off the statement: the context
    activity typed as a course (either IRI), else the object when it is the course."""
    activities = statement.get("context", {}).get("contextActivities", {})
    for activity in activities.get("parent", []) + activities.get("grouping", []):
        if activity.get("definition", {}).get("type") in (COURSE, OLD_COURSE):
            return named(activity)
    thing = statement["object"]
    if thing.get("definition", {}).get("type") in (COURSE, OLD_COURSE):
        return named(thing)
    return None


def named(activity: dict) -> dict:
    return {"id": activity["id"],
            "name": activity["definition"].get("name", {}).get("en", activity["id"])}


def with_expected_dimensions(statements: list[dict]) -> list[dict]:
    """The statements with la_stack.course set by course_of: what the charts must count."""
    out = []
    for statement in statements:
        expected = {k: v for k, v in copy.deepcopy(statement).items() if k != "la_stack"}
        course = course_of(statement)
        if course:
            expected["la_stack"] = {"course": course}
        out.append(expected)
    return out
