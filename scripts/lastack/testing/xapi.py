"""Synthetic xAPI statements shaped like the output of Moodle's logstore_xapi v5.1.0.

Learners are identified by account {homePage, name}; activities sit under their section and
course in `context.contextActivities.parent` (innermost first, the course last, of the cmi5
course type); the site is the category; `context.platform` is "Moodle"; the info extension
names the Moodle event and the plugin's transformer, as the plugin's own tests expect.
Everything is drawn from a seeded random generator with a fixed start date, so the same
arguments always give the same statements (ids too).

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

from lastack.testing.xapi_vocabulary import (
    CHOICE_RESPONSE,
    DEFAULT_START,
    DISPLAY,
    EVENTS,
    FIRST_NAMES,
    INFO_EXTENSION,
    LAST_NAMES,
    MODULE_KINDS,
    MOODLE_RELEASE,
    PLUGIN_RELEASE,
    SCENARIOS,
    SITE,
    SITE_NAME,
    TOPICS,
    TRANSFORMER,
    TYPES,
    VERBS,
)


@dataclass(frozen=True)
class Module:
    cmid: int
    kind: str
    name: str
    section: int


@dataclass(frozen=True)
class Course:
    courseid: int
    name: str
    modules: tuple[Module, ...]


def _lang(text: str) -> dict[str, str]:
    return {"en": text}


def _activity(iri: str, type_key: str, name: str) -> dict[str, Any]:
    return {"objectType": "Activity", "id": iri,
            "definition": {"type": TYPES[type_key], "name": _lang(name)}}


class MoodleLog:
    """A fictional Moodle 5.0 site whose users produce statements on demand, shaped as
    logstore_xapi v5.1.0 sends them."""

    def __init__(self, seed: int, learners: int = 200, courses: int = 12) -> None:
        self.rng = random.Random(seed)
        self.learners = [self._learner(i) for i in range(2, learners + 2)]
        self.courses = [self._course(i) for i in range(2, courses + 2)]

    def _learner(self, userid: int) -> dict[str, Any]:
        name = f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"
        return {"name": name, "account": {"homePage": SITE, "name": str(userid)}}

    def _course(self, courseid: int) -> Course:
        topic = TOPICS[(courseid - 2) % len(TOPICS)]
        modules = []
        for n in range(self.rng.randint(6, 10)):
            kind = MODULE_KINDS[(courseid + n) % len(MODULE_KINDS)]
            cmid = courseid * 100 + n
            modules.append(Module(cmid, kind, f"{topic}: {kind} {n + 1}", courseid * 10 + n // 3))
        return Course(courseid, f"Introduction to {topic}", tuple(modules))

    # --- building blocks ------------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def course_activity(self, course: Course) -> dict[str, Any]:
        return _activity(f"{SITE}/course/view.php?id={course.courseid}", "course", course.name)

    def section_activity(self, course: Course, module: Module) -> dict[str, Any]:
        number = module.section % 10
        return _activity(f"{SITE}/course/section.php?id={module.section}", "section",
                         f"{course.name} Section {number}")

    def module_activity(self, module: Module) -> dict[str, Any]:
        return _activity(f"{SITE}/mod/{module.kind}/view.php?id={module.cmid}", module.kind,
                         module.name)

    def in_course(self, course: Course, module: Module) -> list[dict[str, Any]]:
        """A module's parents, innermost first: its section, then its course."""
        return [self.section_activity(course, module), self.course_activity(course)]

    def context(self, scenario: str, parents: list[dict[str, Any]], kind: str = "",
                in_site: bool = True) -> dict[str, Any]:
        event, handler = EVENTS[scenario]
        activities: dict[str, Any] = {}
        if in_site:
            activities["category"] = [_activity(SITE, "site", SITE_NAME)]
        if parents:
            activities["parent"] = parents
        context: dict[str, Any] = {
            "platform": "Moodle",
            "language": "en",
            "extensions": {
                INFO_EXTENSION: {
                    "http://moodle.org": MOODLE_RELEASE,
                    "https://github.com/xAPI-vle/moodle-logstore_xapi": PLUGIN_RELEASE,
                    "event_name": event.format(kind=kind),
                    "event_function": TRANSFORMER + handler,
                }
            },
        }
        if activities:
            context["contextActivities"] = activities
        return context

    def pick_module(self, course: Course, kinds: tuple[str, ...]) -> Module:
        matching = [m for m in course.modules if m.kind in kinds]
        return self.rng.choice(matching or list(course.modules))

    # --- one statement --------------------------------------------------------------------

    def statement(self, timestamp: datetime) -> dict[str, Any]:
        names, weights = zip(*SCENARIOS, strict=True)
        scenario = self.rng.choices(names, weights)[0]
        learner = self.rng.choice(self.learners)
        course = self.rng.choice(self.courses)
        verb, obj, context, result = self._scenario(scenario, course)
        statement: dict[str, Any] = {
            "id": self.uuid(),
            "actor": learner,
            "verb": {"id": VERBS[verb], "display": _lang(DISPLAY[verb])},
            "object": obj,
            "timestamp": timestamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "context": context,
        }
        if result:
            statement["result"] = result
        return statement

    def _scenario(self, scenario: str, course: Course) -> tuple[str, dict, dict, dict]:
        rng = self.rng
        course_activity = self.course_activity(course)
        if scenario in ("course_viewed", "user_enrolled", "course_completed"):
            verb = {"course_viewed": "viewed", "user_enrolled": "enrolled",
                    "course_completed": "completed"}[scenario]
            return verb, course_activity, self.context(scenario, []), {}
        if scenario == "user_loggedin":
            site = _activity(SITE, "site", SITE_NAME)
            return "loggedin", site, self.context(scenario, [], in_site=False), {}
        if scenario == "module_viewed":
            module = rng.choice(course.modules)
            context = self.context(scenario, self.in_course(course, module), module.kind)
            return "viewed", self.module_activity(module), context, {}
        if scenario in ("quiz_started", "quiz_completed", "question_answered"):
            quiz = self.pick_module(course, ("quiz",))
            quiz_activity = self.module_activity(quiz)
            attempt = _activity(f"{SITE}/mod/quiz/attempt.php?attempt={rng.randint(1, 99999)}"
                                f"&cmid={quiz.cmid}", "attempt", f"{quiz.name} Attempt 1")
            parents = [quiz_activity, *self.in_course(course, quiz)]
            if scenario == "quiz_started":
                return "started", attempt, self.context(scenario, parents), {}
            if scenario == "quiz_completed":
                raw = rng.randint(0, 20)
                result = {
                    "score": {"raw": raw, "min": 0, "max": 20, "scaled": round(raw / 20, 2)},
                    "success": raw >= 10,
                    "completion": True,
                    "duration": f"PT{rng.randint(3, 55)}M{rng.randint(0, 59)}S",
                }
                return "completed", attempt, self.context(scenario, parents), result
            question, result = self._question(quiz)
            return "answered", question, self.context(scenario, [attempt, *parents]), result
        if scenario == "scorm_launched":
            module = self.pick_module(course, ("scorm",))
            sco = _activity(f"{SITE}/mod/scorm/view.php?id={module.cmid}#sco", "sco",
                            f"{module.name} Content")
            parents = [self.module_activity(module), *self.in_course(course, module)]
            return "launched", sco, self.context(scenario, parents), {}
        module = self.pick_module(course, ("assign",))  # assignment_submitted
        submission = _activity(f"{SITE}/mod/assign/view.php?id={module.cmid}#submission",
                               "submission", f"{module.name} Submission")
        parents = [self.module_activity(module), *self.in_course(course, module)]
        return "submitted", submission, self.context(scenario, parents), {}

    def _question(self, quiz: Module) -> tuple[dict, dict]:
        rng = self.rng
        number = rng.randint(1, 8)
        choices = [{"id": c, "description": _lang(f"Answer {c.upper()}")} for c in "abcd"]
        correct = rng.choice("abcd")
        given = correct if rng.random() < 0.6 else rng.choice("abcd")
        question = _activity(
            f"{SITE}/question/question.php?cmid={quiz.cmid}&id={quiz.cmid * 10 + number}",
            "question", f"{quiz.name}, question {number}")
        question["definition"].update(
            interactionType="choice",
            correctResponsesPattern=[correct],
            choices=choices,
            description=_lang(f"Question {number} of {quiz.name}"),
        )
        result = {"response": given, "success": given == correct, "completion": True,
                  "extensions": {CHOICE_RESPONSE: f"Answer {given.upper()}"}}
        return question, result


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
