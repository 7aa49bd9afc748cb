"""The vocabulary of Moodle's logstore_xapi v5.1.0 that the statement generator speaks:
verbs, activity types, events and their transformers, and the made-up site's names."""

from __future__ import annotations

from datetime import UTC, datetime

SITE = "https://moodle.la-stack.invalid"
SITE_NAME = "la-stack demo site"
MOODLE_RELEASE = "5.0.4 (Build: 20251013)"
PLUGIN_RELEASE = "v5.1.0"
DEFAULT_START = datetime(2026, 9, 1, tzinfo=UTC)
INFO_EXTENSION = "http://lrs.learninglocker.net/define/extensions/info"
CHOICE_RESPONSE = "http://learninglocker.net/xapi/cmi/choice/response"
TRANSFORMER = "\\src\\transformer\\events\\"

# What logstore_xapi v5.1.0 sends for the events below (its tests' expected statements).
VERBS = {
    "viewed": "http://id.tincanapi.com/verb/viewed",
    "started": "http://activitystrea.ms/schema/1.0/start",
    "answered": "http://adlnet.gov/expapi/verbs/answered",
    "completed": "http://adlnet.gov/expapi/verbs/completed",
    "launched": "http://adlnet.gov/expapi/verbs/launched",
    "submitted": "http://activitystrea.ms/schema/1.0/submit",
    "enrolled": "https://xapi.edlm/profiles/edlm-lms/concepts/verbs/enrolled",
    "loggedin": "https://xapi.edlm/profiles/edlm-lms/concepts/verbs/login",
}
# verb.display as the plugin writes it.
DISPLAY = {"viewed": "Viewed", "started": "Started", "answered": "Answered",
           "completed": "Completed", "launched": "Launched", "submitted": "Submitted",
           "enrolled": "Enrolled", "loggedin": "Logged In"}
EDLM = "https://xapi.edlm/profiles/edlm-lms/concepts/activity-types/"
TYPES = {
    "site": "http://id.tincanapi.com/activitytype/lms",
    "section": "http://id.tincanapi.com/activitytype/section",
    "course": "https://w3id.org/xapi/cmi5/activitytype/course",
    "quiz": "http://adlnet.gov/expapi/activities/assessment",
    "attempt": "http://adlnet.gov/expapi/activities/attempt",
    "question": "http://adlnet.gov/expapi/activities/cmi.interaction",
    "page": "https://w3id.org/xapi/acrossx/activities/page",
    "resource": "http://id.tincanapi.com/activitytype/resource",
    "url": "http://adlnet.gov/expapi/activities/link",
    "forum": EDLM + "forum",
    "assign": EDLM + "assignment",
    "submission": EDLM + "submission",
    "scorm": "http://adlnet.gov/expapi/activities/module",
    "sco": EDLM + "scorm-content-object",
    "book": "http://id.tincanapi.com/activitytype/book",
}
MODULE_KINDS = ("page", "resource", "url", "forum", "quiz", "assign", "scorm", "book")
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
    ("quiz_started", 7),
    ("question_answered", 16),
    ("quiz_completed", 6),
    ("scorm_launched", 4),
    ("assignment_submitted", 5),
    ("user_loggedin", 5),
    ("user_enrolled", 2),
    ("course_completed", 1),
)
# scenario: (Moodle event, the plugin's transformer that handles it)
EVENTS = {
    "course_viewed": ("\\core\\event\\course_viewed", "core\\course_viewed"),
    "module_viewed": ("\\mod_{kind}\\event\\course_module_viewed", "all\\course_module_viewed"),
    "quiz_started": ("\\mod_quiz\\event\\attempt_started", "mod_quiz\\attempt_started"),
    "question_answered": ("\\mod_quiz\\event\\attempt_submitted",
                          "mod_quiz\\attempt_submitted\\handler"),
    "quiz_completed": ("\\mod_quiz\\event\\attempt_submitted",
                       "mod_quiz\\attempt_submitted\\handler"),
    "scorm_launched": ("\\mod_scorm\\event\\sco_launched", "mod_scorm\\sco_launched"),
    "assignment_submitted": ("\\mod_assign\\event\\assessable_submitted",
                             "mod_assign\\assignment_submitted"),
    "user_loggedin": ("\\core\\event\\user_loggedin", "core\\user_loggedin"),
    "user_enrolled": ("\\core\\event\\user_enrolment_created",
                      "core\\user_enrolment_created"),
    "course_completed": ("\\core\\event\\course_completed", "core\\course_completed"),
}
