"""Synthetic xAPI statements shaped like Moodle's logstore_xapi output.

Learners are identified by account {homePage, name}; activities sit under their course in
`context.contextActivities.parent`; the site and the "Moodle" source are the grouping and
category; `context.platform` is "Moodle". Everything is drawn from a seeded random generator
with a fixed start date, so the same arguments always give the same statements (ids too).

    python -m lastack xapi --count 100 --seed 7 [--days 30] [--format jsonl|array]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SITE = "https://moodle.la-stack.invalid"
MOODLE_RELEASE = "4.5.1"
PLUGIN_RELEASE = "v5.0.1"
DEFAULT_START = datetime(2026, 9, 1, tzinfo=UTC)
INFO_EXTENSION = "http://lrs.learninglocker.net/define/extensions/info"
EXTERNAL_ID = "https://w3id.org/learning-analytics/learning-management-system/external-id"
MODULE_TYPE = "https://moodle.org/xapi/extensions/module_type"

VERBS = {
    "viewed": "http://id.tincanapi.com/verb/viewed",
    "launched": "http://adlnet.gov/expapi/verbs/launched",
    "attempted": "http://adlnet.gov/expapi/verbs/attempted",
    "answered": "http://adlnet.gov/expapi/verbs/answered",
    "completed": "http://adlnet.gov/expapi/verbs/completed",
    "submitted": "http://activitystrea.ms/schema/1.0/submit",
    "registered": "http://adlnet.gov/expapi/verbs/registered",
    "loggedin": "https://brindlewaye.com/xAPITerms/verbs/loggedin/",
}
TYPES = {
    "site": "http://id.tincanapi.com/activitytype/lms",
    "source": "http://id.tincanapi.com/activitytype/source",
    "course": "http://id.tincanapi.com/activitytype/lms/course",
    "module": "http://id.tincanapi.com/activitytype/lms/module",
    "quiz": "http://adlnet.gov/expapi/activities/assessment",
    "attempt": "http://adlnet.gov/expapi/activities/attempt",
    "question": "http://adlnet.gov/expapi/activities/question",
    "scorm": "http://adlnet.gov/expapi/activities/module",
}
MODULE_KINDS = ("page", "resource", "url", "forum", "quiz", "assign", "scorm", "h5pactivity")
TOPICS = (
    "Statistics", "Algebra", "Chemistry", "Biology", "History", "Literature", "Economics",
    "Physics", "Geography", "Philosophy", "Programming", "Music",
)  # fmt: skip
FIRST_NAMES = ("Ada", "Bram", "Chloé", "Diego", "Emma", "Farid", "Grace", "Hugo", "Inès", "Jun")
LAST_NAMES = ("Martin", "Okafor", "Dubois", "Nakamura", "Silva", "Novak", "Haddad", "Berg")
# (scenario, weight): how often each kind of event shows up in a Moodle log.
SCENARIOS = (
    ("course_viewed", 24),
    ("module_viewed", 30),
    ("quiz_attempted", 7),
    ("question_answered", 16),
    ("quiz_completed", 6),
    ("scorm_launched", 4),
    ("assignment_submitted", 5),
    ("user_loggedin", 5),
    ("user_enrolled", 2),
    ("course_completed", 1),
)
EVENT_NAMES = {
    "course_viewed": "\\core\\event\\course_viewed",
    "module_viewed": "\\mod_{kind}\\event\\course_module_viewed",
    "quiz_attempted": "\\mod_quiz\\event\\attempt_started",
    "question_answered": "\\mod_quiz\\event\\attempt_submitted",
    "quiz_completed": "\\mod_quiz\\event\\attempt_submitted",
    "scorm_launched": "\\mod_scorm\\event\\sco_launched",
    "assignment_submitted": "\\mod_assign\\event\\assessable_submitted",
    "user_loggedin": "\\core\\event\\user_loggedin",
    "user_enrolled": "\\core\\event\\user_enrolment_created",
    "course_completed": "\\core\\event\\course_completed",
}


@dataclass(frozen=True)
class Module:
    cmid: int
    kind: str
    name: str


@dataclass(frozen=True)
class Course:
    courseid: int
    name: str
    modules: tuple[Module, ...]


def _lang(text: str) -> dict[str, str]:
    return {"en": text}


def _activity(iri: str, type_key: str, name: str, extensions: dict[str, Any] | None = None) -> dict:
    definition: dict[str, Any] = {"type": TYPES[type_key], "name": _lang(name)}
    if extensions:
        definition["extensions"] = extensions
    return {"objectType": "Activity", "id": iri, "definition": definition}


class MoodleLog:
    """A fictional Moodle site whose users produce statements on demand."""

    def __init__(self, seed: int, learners: int = 200, courses: int = 12) -> None:
        self.rng = random.Random(seed)
        self.learners = [self._learner(i) for i in range(2, learners + 2)]
        self.courses = [self._course(i) for i in range(2, courses + 2)]

    def _learner(self, userid: int) -> dict[str, Any]:
        name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
        return {
            "objectType": "Agent",
            "name": name,
            "account": {"homePage": SITE, "name": str(userid)},
        }

    def _course(self, courseid: int) -> Course:
        topic = TOPICS[(courseid - 2) % len(TOPICS)]
        modules = []
        for n in range(self.rng.randint(6, 10)):
            kind = MODULE_KINDS[(courseid + n) % len(MODULE_KINDS)]
            cmid = courseid * 100 + n
            modules.append(Module(cmid, kind, f"{topic}: {kind} {n + 1}"))
        return Course(courseid, f"Introduction to {topic}", tuple(modules))

    # --- building blocks ------------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def course_activity(self, course: Course) -> dict[str, Any]:
        return _activity(
            f"{SITE}/course/view.php?id={course.courseid}",
            "course",
            course.name,
            {EXTERNAL_ID: str(course.courseid)},
        )

    def module_activity(self, module: Module) -> dict[str, Any]:
        type_key = {"quiz": "quiz", "scorm": "scorm"}.get(module.kind, "module")
        return _activity(
            f"{SITE}/mod/{module.kind}/view.php?id={module.cmid}",
            type_key,
            module.name,
            {EXTERNAL_ID: str(module.cmid), MODULE_TYPE: module.kind},
        )

    def context(self, event: str, parents: list[dict[str, Any]]) -> dict[str, Any]:
        activities: dict[str, Any] = {
            "grouping": [_activity(SITE, "site", "la-stack demo site")],
            "category": [_activity("http://moodle.org", "source", "Moodle")],
        }
        if parents:
            activities["parent"] = parents
        return {
            "platform": "Moodle",
            "language": "en",
            "contextActivities": activities,
            "extensions": {
                INFO_EXTENSION: {
                    "http://moodle.org": MOODLE_RELEASE,
                    "https://github.com/xAPI-vle/moodle-logstore_xapi": PLUGIN_RELEASE,
                    "event_name": event,
                    "event_function": event.rsplit("\\", 1)[-1],
                }
            },
        }

    def pick_module(self, course: Course, kinds: tuple[str, ...]) -> Module:
        matching = [m for m in course.modules if m.kind in kinds]
        return self.rng.choice(matching or list(course.modules))

    # --- one statement --------------------------------------------------------------------

    def statement(self, timestamp: datetime) -> dict[str, Any]:
        names, weights = zip(*SCENARIOS, strict=True)
        scenario = self.rng.choices(names, weights)[0]
        learner = self.rng.choice(self.learners)
        course = self.rng.choice(self.courses)
        verb, obj, parents, result, event = self._scenario(scenario, course)
        statement: dict[str, Any] = {
            "id": self.uuid(),
            "actor": learner,
            "verb": {"id": VERBS[verb], "display": _lang(verb)},
            "object": obj,
            "timestamp": timestamp.isoformat(timespec="seconds"),
            "context": self.context(event, parents),
        }
        if result:
            statement["result"] = result
        return statement

    def _scenario(self, scenario: str, course: Course) -> tuple[str, dict, list, dict, str]:
        rng = self.rng
        event = EVENT_NAMES[scenario]
        course_activity = self.course_activity(course)
        if scenario == "course_viewed":
            return "viewed", course_activity, [], {}, event
        if scenario == "module_viewed":
            module = rng.choice(course.modules)
            event = event.format(kind=module.kind)
            return "viewed", self.module_activity(module), [course_activity], {}, event
        if scenario in ("quiz_attempted", "quiz_completed", "question_answered"):
            quiz = self.pick_module(course, ("quiz",))
            quiz_activity = self.module_activity(quiz)
            if scenario == "quiz_attempted":
                return "attempted", quiz_activity, [course_activity], {}, event
            if scenario == "quiz_completed":
                raw = rng.randint(0, 20)
                result = {
                    "score": {"raw": raw, "min": 0, "max": 20, "scaled": round(raw / 20, 2)},
                    "success": raw >= 10,
                    "completion": True,
                    "duration": f"PT{rng.randint(3, 55)}M{rng.randint(0, 59)}S",
                }
                return "completed", quiz_activity, [course_activity], result, event
            return "answered", *self._question(quiz, course_activity, quiz_activity), event
        if scenario == "scorm_launched":
            module = self.pick_module(course, ("scorm",))
            return "launched", self.module_activity(module), [course_activity], {}, event
        if scenario == "assignment_submitted":
            module = self.pick_module(course, ("assign",))
            result = {"completion": True, "response": f"submission-{rng.randint(1, 99999)}.pdf"}
            return "submitted", self.module_activity(module), [course_activity], result, event
        if scenario == "user_loggedin":
            return "loggedin", _activity(SITE, "site", "la-stack demo site"), [], {}, event
        if scenario == "user_enrolled":
            return "registered", course_activity, [], {}, event
        return "completed", course_activity, [], {"completion": True}, event

    def _question(
        self, quiz: Module, course_activity: dict, quiz_activity: dict
    ) -> tuple[dict, list, dict]:
        rng = self.rng
        number = rng.randint(1, 8)
        choices = [{"id": c, "description": _lang(f"Answer {c.upper()}")} for c in "abcd"]
        correct = rng.choice("abcd")
        given = correct if rng.random() < 0.6 else rng.choice("abcd")
        question = _activity(
            f"{SITE}/question/question.php?cmid={quiz.cmid}&id={quiz.cmid * 10 + number}",
            "question",
            f"{quiz.name}, question {number}",
            {EXTERNAL_ID: str(quiz.cmid * 10 + number)},
        )
        question["definition"].update(
            interactionType="choice",
            correctResponsesPattern=[correct],
            choices=choices,
            description=_lang(f"Question {number} of {quiz.name}"),
        )
        result = {"response": given, "success": given == correct, "completion": True}
        return question, [quiz_activity, course_activity], result


def iter_statements(
    count: int,
    seed: int = 0,
    days: int = 30,
    start: datetime = DEFAULT_START,
    learners: int = 200,
    courses: int = 12,
) -> Iterator[dict[str, Any]]:
    """`count` statements with timestamps spread over `days` days from `start`, in time order."""
    log = MoodleLog(seed, learners, courses)
    span = max(1, days) * 86400
    offsets = sorted(log.rng.randrange(span) for _ in range(count))
    for offset in offsets:
        yield log.statement(start + timedelta(seconds=offset))


def generate(count: int, seed: int = 0, **options: Any) -> list[dict[str, Any]]:
    return list(iter_statements(count, seed, **options))


# --- a basic structural check (what any LRS rejects outright) ------------------------------


def _is_iri(value: Any) -> bool:
    return isinstance(value, str) and ":" in value and " " not in value


def _agent_problems(agent: Any, where: str) -> list[str]:
    if not isinstance(agent, dict):
        return [f"{where} is not an object"]
    ifis = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if k in agent]
    if len(ifis) != 1:
        return [f"{where} needs exactly one inverse functional identifier, has {ifis}"]
    account = agent.get("account")
    if account is not None and not (_is_iri(account.get("homePage")) and account.get("name")):
        return [f"{where}.account needs homePage (IRI) and name"]
    return []


def problems(statement: dict[str, Any]) -> list[str]:
    """What breaks the basic xAPI 1.0.3 statement structure (empty list: none found)."""
    found: list[str] = []
    try:
        uuid.UUID(statement.get("id", ""))
    except (ValueError, TypeError, AttributeError):
        found.append("id is not a UUID")
    found += _agent_problems(statement.get("actor"), "actor")
    verb = statement.get("verb") or {}
    if not _is_iri(verb.get("id")):
        found.append("verb.id is not an IRI")
    if not isinstance(verb.get("display", {}), dict):
        found.append("verb.display is not a language map")
    obj = statement.get("object") or {}
    if obj.get("objectType", "Activity") == "Activity" and not _is_iri(obj.get("id")):
        found.append("object.id is not an IRI")
    try:
        stamp = datetime.fromisoformat(statement.get("timestamp", ""))
        if stamp.tzinfo is None:
            found.append("timestamp has no time zone")
    except (TypeError, ValueError):
        found.append("timestamp is not ISO 8601")
    activities = (statement.get("context") or {}).get("contextActivities") or {}
    for key, value in activities.items():
        if key not in ("parent", "grouping", "category", "other"):
            found.append(f"contextActivities.{key} is not an xAPI key")
        elif not isinstance(value, list) or not all(_is_iri(a.get("id")) for a in value):
            found.append(f"contextActivities.{key} must be a list of activities with IRIs")
    score = (statement.get("result") or {}).get("score")
    if score and "scaled" in score and not -1 <= score["scaled"] <= 1:
        found.append("result.score.scaled is outside [-1, 1]")
    return found


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lastack xapi", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10, help="how many statements")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same statements")
    parser.add_argument("--days", type=int, default=30, help="days the timestamps spread over")
    parser.add_argument(
        "--start",
        type=lambda s: datetime.fromisoformat(s).astimezone(UTC),
        default=DEFAULT_START,
        help="first day (ISO 8601; default %(default)s)",
    )
    parser.add_argument("--format", choices=("jsonl", "array"), default="jsonl")
    options = parser.parse_args(args)
    if options.count < 0:
        parser.error("--count must not be negative")
    statements = iter_statements(options.count, options.seed, options.days, options.start)
    if options.format == "array":
        json.dump(list(statements), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for statement in statements:
            sys.stdout.write(json.dumps(statement, ensure_ascii=False) + "\n")
    return 0
