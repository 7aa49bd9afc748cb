"""The ingest pipeline that reads each statement as a teacher would (stdlib only).

Statements name their course only inside `context.contextActivities`, arrays that
Elasticsearch SQL cannot read, and their names only in language maps (flattened, which it
cannot read either). The pipeline `<alias>-dimensions` runs the Painless script
`statements-dimensions.painless` on every statement the backing indices receive (their
`index.default_pipeline`) and writes `la_stack.course.{id,name}`,
`la_stack.module.{id,name,type}`, `la_stack.verb.{name,stage}` and
`la_stack.object.{name,type}`. The mapping indexes those fields and keeps them out of
`_source`, so Ralph still returns the statement exactly as it was sent. A statement the
script cannot read is stored all the same, marked `la_stack.failed`.
"""

from __future__ import annotations

from typing import Any

from es_api import EsApi
from hooklib import fail

COURSE_TYPES = (
    "https://w3id.org/xapi/cmi5/activitytype/course",  # logstore_xapi since v4.8.0
    "http://id.tincanapi.com/activitytype/lms/course",  # before it: kept for history
)
SECTION_TYPE = "http://id.tincanapi.com/activitytype/section"
# Activity types whose last IRI word says little to a teacher (logstore_xapi v5.1.0's).
TYPE_WORDS = {
    "http://adlnet.gov/expapi/activities/cmi.interaction": "question",
    "http://adlnet.gov/expapi/activities/assessment": "quiz",
    "http://adlnet.gov/expapi/activities/attempt": "quiz attempt",
    "http://id.tincanapi.com/activitytype/lms": "site",
    "https://w3id.org/xapi/cmi5/activitytype/course": "course",
    "http://id.tincanapi.com/activitytype/lms/course": "course",
    "http://activitystrea.ms/schema/1.0/review#slot": "question review",
}
# The completion funnel: which verbs say a learner viewed, attempted or completed something.
STAGES = {
    "http://id.tincanapi.com/verb/viewed": "1 viewed",
    "http://adlnet.gov/expapi/verbs/attempted": "2 attempted",
    "http://adlnet.gov/expapi/verbs/answered": "2 attempted",
    "http://adlnet.gov/expapi/verbs/launched": "2 attempted",
    "http://activitystrea.ms/start": "2 attempted",
    "http://activitystrea.ms/schema/1.0/start": "2 attempted",
    "http://activitystrea.ms/submit": "2 attempted",
    "http://activitystrea.ms/schema/1.0/submit": "2 attempted",
    "http://adlnet.gov/expapi/verbs/completed": "3 completed",
}
SCRIPT_PROCESSOR = "script"


def read_script(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as error:
        fail(f"the pipeline script {path} cannot be read: {error.strerror}.")


def pipeline_name(alias: str) -> str:
    return f"{alias}-dimensions"


def pipeline_body(script: str) -> dict[str, Any]:
    return {
        "description": "managed by la-stack: the course and module of each xAPI statement, "
                       "under la_stack (indexed, not in _source)",
        "processors": [{
            "script": {
                "tag": "la-stack-dimensions",
                "lang": "painless",
                "source": script,
                "params": {"course_types": list(COURSE_TYPES), "section_type": SECTION_TYPE,
                           "type_words": TYPE_WORDS, "stages": STAGES},
                # A statement is never refused for its shape: it is stored, marked.
                "on_failure": [{"set": {"field": "la_stack.failed", "value": True}}],
            },
        }],
    }  # fmt: skip


def script_processor_everywhere(api: EsApi) -> bool:
    """Whether every ingest node runs Painless scripts (the ingest-common and lang-painless
    modules of every Elasticsearch ECK runs; distributions without them exist)."""
    body = api.ok("GET", "/_nodes/ingest?filter_path=nodes.*.ingest.processors.type",
                  what="listing the ingest processors").body or {}
    nodes = (body.get("nodes") or {}).values()
    kinds = [{p.get("type") for p in (n.get("ingest") or {}).get("processors") or []}
             for n in nodes]  # fmt: skip
    return bool(kinds) and all(SCRIPT_PROCESSOR in k for k in kinds)


def write_index_pipeline(api: EsApi, index: str) -> str:
    """The `index.default_pipeline` of an index ("" when it has none)."""
    body = api.ok("GET", f"/{index}/_settings/index.default_pipeline",
                  what=f"reading the settings of {index}").body or {}
    return str(((body.get(index) or {}).get("settings") or {}).get("index", {})
               .get("default_pipeline", ""))


def ensure_pipeline(api: EsApi, name: str, body: dict[str, Any]) -> str:
    path = f"/_ingest/pipeline/{name}"
    current = api.call("GET", path)
    if current.status == 200:
        # Compared whole: pipelines take `_meta` only since Elasticsearch 7.14.
        if (current.body or {}).get(name) == body:
            return "unchanged"
    elif current.status != 404:
        fail(f"reading ingest pipeline {name} failed: {current.status} "
             f"{current.error_reason()}.")
    api.ok("PUT", path, body, f"writing ingest pipeline {name}")
    return "created" if current.status == 404 else "updated"
