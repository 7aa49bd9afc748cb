"""What the charts must show per course, activity and verb, read off the statements
themselves: the expected side of the tests of the chart's ingest pipeline and of its charts.
Each reading is the plain one a teacher would make of the statement, written without the
pipeline's script or its tables."""

from __future__ import annotations

import copy

COURSE = "https://w3id.org/xapi/cmi5/activitytype/course"
OLD_COURSE = "http://id.tincanapi.com/activitytype/lms/course"
SECTION = "http://id.tincanapi.com/activitytype/section"
# The funnel's steps, by the words Moodle's verbs display.
STEPS = {"Viewed": "1 viewed", "Completed": "3 completed",
         **dict.fromkeys(("Answered", "Submitted", "Started", "Launched", "Attempted"),
                         "2 attempted")}


def type_of(activity: dict) -> str | None:
    return activity.get("definition", {}).get("type")


def named(activity: dict) -> dict:
    return {"id": activity["id"],
            "name": activity.get("definition", {}).get("name", {}).get("en", activity["id"])}


def course_of(statement: dict) -> dict | None:
    """The context activity typed as a course (either IRI), else the object when it is
    the course."""
    activities = statement.get("context", {}).get("contextActivities", {})
    for activity in activities.get("parent", []) + activities.get("grouping", []):
        if type_of(activity) in (COURSE, OLD_COURSE):
            return named(activity)
    if type_of(statement["object"]) in (COURSE, OLD_COURSE):
        return named(statement["object"])
    return None


def module_of(statement: dict) -> dict | None:
    """The activity right under the course section: the parent before the section, or the
    object when the section is its first parent and it is not the course itself."""
    parents = statement.get("context", {}).get("contextActivities", {}).get("parent", [])
    sections = [i for i, p in enumerate(parents) if type_of(p) == SECTION]
    if not sections:
        return None
    if sections[0] > 0:
        module = parents[sections[0] - 1]
    elif statement["object"].get("id") != (course_of(statement) or {}).get("id"):
        module = statement["object"]
    else:
        return None
    return {**named(module), "type": type_of(module)}


def verb_of(statement: dict) -> dict:
    display = statement["verb"].get("display", {}).get("en")
    word = display or statement["verb"]["id"].rsplit("/", 1)[-1]
    return {"name": word, **({"stage": STEPS[word]} if word in STEPS else {})}


def with_expected_dimensions(statements: list[dict]) -> list[dict]:
    """The statements with la_stack as read off them: what the charts must count. The kind
    of activity (la_stack.object.type) is the one a statement carries, a word from the
    pipeline's table that test_elasticsearch_dimensions.py checks on its own."""
    out = []
    for statement in statements:
        expected = {k: v for k, v in copy.deepcopy(statement).items() if k != "la_stack"}
        derived: dict = {"verb": verb_of(statement)}
        thing = statement["object"]
        if isinstance(thing.get("id"), str):
            kind = statement.get("la_stack", {}).get("object", {}).get("type")
            derived["object"] = {"name": named(thing)["name"], "type": kind}
        for key, found in (("course", course_of(statement)), ("module", module_of(statement))):
            if found:
                derived[key] = found
        expected["la_stack"] = derived
        out.append(expected)
    return out
