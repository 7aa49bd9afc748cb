"""Course and module as columns: the chart's ingest pipeline on what Moodle really sends.

The pipeline (files/hooks/es_pipeline.py, its Painless script in files/elasticsearch) runs
here on a stand-in, said plainly: Elasticsearch 7.10.2 with its real ingest-common and
lang-painless modules (lastack.testing.services.ingest_node), because the hooks tier's 8.19 has
neither and Maven Central has neither for 8.x. The bootstrap's pipeline steps run against
that node too, over plain http and with a mapping whose `flattened` fields are unindexed
objects (the OSS distribution has no `flattened`). What the 8.19 node shows for real: the
mapping keeps la_stack out of `_source` and still aggregates on it, and the bootstrap skips
the pipeline where Painless is absent. Only an ECK-run Elasticsearch shows the pipeline on
today's Painless, behind Ralph's own writes.
"""

from __future__ import annotations

import copy
import json
import re
import urllib.request
import uuid
from pathlib import Path

import pytest

from lastack.paths import shared_dir
from lastack.testing.services.hookfiles import (
    SCRIPT_FILE,
    TEMPLATE_FILE,
    bootstrap_config,
    run_hook,
)
from tests.hooks.statement_dimensions import COURSE, OLD_COURSE, course_of, with_expected_dimensions

pytestmark = pytest.mark.hooks


FIXTURE = shared_dir() / "fixtures" / "logstore_xapi-v5.1.0" / "statements.json"


SECTION = "http://id.tincanapi.com/activitytype/section"


@pytest.fixture(scope="module")
def fixture_entries() -> list[dict]:
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} is absent: the shared fixtures folder must sit beside the "
                    "checkout (or set LA_STACK_SHARED)")
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def derived(ingest_node_server, fixture_entries) -> list[dict]:
    return ingest_node_server.run_chart_pipeline([e["statement"] for e in fixture_entries])


def oss_mappings(tmp_path: Path) -> Path:
    """The chart's mappings with `flattened` as unindexed objects: 7.10's OSS distribution
    has no `flattened` type; nothing else changes."""
    template = json.loads(TEMPLATE_FILE.read_text())

    def swap(node):
        if isinstance(node, dict):
            if node.get("type") == "flattened":
                return {"type": "object", "enabled": False}
            return {k: swap(v) for k, v in node.items()}
        return [swap(v) for v in node] if isinstance(node, list) else node

    path = tmp_path / "mappings-oss.json"
    path.write_text(json.dumps(swap(template)))
    return path


def bootstrap_on(node, tmp_path: Path, alias: str):
    config = {**bootstrap_config(), "alias": alias, "testIndex": ""}
    config_file = tmp_path / f"config-{alias}-{uuid.uuid4().hex[:6]}.json"
    config_file.write_text(json.dumps(config))
    return run_hook("es_bootstrap", {
        "ES_URL": node.url, "CONFIG_FILE": str(config_file),
        "TEMPLATE_FILE": str(oss_mappings(tmp_path)), "SCRIPT_FILE": str(SCRIPT_FILE),
        "DEADLINE_SECONDS": "60"})


def write_index(node, alias: str) -> tuple[str, dict]:
    status, body = node.request("GET", f"/_alias/{alias}")
    assert status == 200, body
    (index,) = [i for i, a in body.items() if a["aliases"][alias].get("is_write_index")]
    _, settings = node.request("GET", f"/{index}/_settings")
    return index, settings[index]["settings"]["index"]


def bulk(node, target: str, statements: list[dict]) -> None:
    lines = []
    for statement in statements:
        lines += [json.dumps({"index": {"_id": statement["id"]}}), json.dumps(statement)]
    data = ("\n".join(lines) + "\n").encode()
    request = urllib.request.Request(f"{node.url}/{target}/_bulk?refresh=true", data=data,
                                     headers={"Content-Type": "application/x-ndjson"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert not json.loads(answer.read())["errors"]


@pytest.fixture
def scratch_alias(es_stack, request):
    """A write alias of the test's own on the session's Elasticsearch, removed after it."""
    alias = f"statements_{request.node.name[12:30]}"
    yield alias
    es_stack.es.request("DELETE", f"/{alias}-*")
    es_stack.es.request("DELETE", f"/_index_template/la-stack-{alias}")


class TestEsBootstrap:
    """Its ingest pipeline: each statement's course and module."""

    def test_should_give_each_statement_the_course_it_names(self, fixture_entries, derived):
        with_course = 0
        for entry, doc in zip(fixture_entries, derived, strict=True):
            expected = course_of(entry["statement"])
            assert doc.get("la_stack", {}).get("course") == expected, entry["source"]
            with_course += expected is not None
        # 169 name it in contextActivities.parent, 8 are about the course itself; the rest
        # (badges, certificates, the site, a category) belong to no course.
        assert with_course == 177

    def test_should_name_the_module_of_every_module_event(self, fixture_entries, derived):
        checked = 0
        for entry, doc in zip(fixture_entries, derived, strict=True):
            kind = re.match(r"tests/mod_([a-z0-9]+)/", entry["source"])
            chain = entry["statement"].get("context", {}).get("contextActivities", {})
            in_section = any(p["definition"]["type"] == SECTION
                             for p in chain.get("parent", []))
            module = doc.get("la_stack", {}).get("module")
            if kind and in_section:  # a module's own event: the module is its view page
                assert module and f"/mod/{kind.group(1)}/view.php?id=" in module["id"], \
                    (entry["source"], module)
                assert module["name"] and module["type"], entry["source"]
                checked += 1
            if module:  # a core event may be about a module too (its completion)
                assert re.search(r"/mod/[a-z0-9]+/view\.php\?id=", module["id"]), entry["source"]
        assert checked >= 120

    def test_should_read_each_statement_as_a_teacher_would(self, fixture_entries, derived):
        """Course, module, verb word, funnel step and activity name: the plain reading."""
        expected = with_expected_dimensions(derived)
        for entry, doc, wanted in zip(fixture_entries, derived, expected, strict=True):
            assert doc["la_stack"] == wanted["la_stack"], entry["source"]

    def test_should_show_names_not_iris(self, fixture_entries, derived):
        for entry, doc in zip(fixture_entries, derived, strict=True):
            words = doc["la_stack"]
            assert not words["verb"]["name"].startswith("http"), entry["source"]
            if entry["statement"]["object"].get("definition", {}).get("name"):
                assert not words["object"]["name"].startswith("http"), entry["source"]
            kind = words["object"].get("type")
            assert kind is None or not set("/:#") & set(kind), (entry["source"], kind)
        kinds = {(e["statement"]["object"].get("definition", {}).get("type"),
                  d["la_stack"]["object"].get("type"))
                 for e, d in zip(fixture_entries, derived, strict=True)}
        assert {("http://adlnet.gov/expapi/activities/cmi.interaction", "question"),
                ("http://adlnet.gov/expapi/activities/attempt", "quiz attempt"),
                ("https://w3id.org/xapi/acrossx/activities/face-to-face-discussion",
                 "face to face discussion"),
                (COURSE, "course")} <= kinds

    def test_should_leave_the_statement_itself_as_it_was(self, fixture_entries, derived):
        for entry, doc in zip(fixture_entries, derived, strict=True):
            assert {k: v for k, v in doc.items() if k != "la_stack"} == entry["statement"]

    def test_should_take_the_statements_language_then_english(self, ingest_node_server):
        def course(names: dict, language: str | None = None) -> dict:
            context = {"contextActivities": {"parent": [{"id": "http://m/course/view.php?id=9",
                       "definition": {"type": OLD_COURSE, "name": names}}]}}
            if language:
                context["language"] = language
            (doc,) = ingest_node_server.run_chart_pipeline([{"object": {"id": "x"},
                                                             "context": context}])
            return doc["la_stack"]["course"]

        assert course({"en": "Algebra", "fr": "Algèbre"}, "fr")["name"] == "Algèbre"
        assert course({"fr": "Algèbre", "en": "Algebra"}, "de")["name"] == "Algebra"
        assert course({"fr": "Algèbre", "de": "Algebra I"})["name"] == "Algebra I"
        assert course({}) == {"id": "http://m/course/view.php?id=9",
                              "name": "http://m/course/view.php?id=9"}

    def test_should_store_statements_it_cannot_read(self, ingest_node_server):
        odd = [{"object": 5, "context": {"contextActivities": {"parent": "course"}}},
               {"object": {"id": 7, "definition": []},
                "context": {"contextActivities": {"parent": [None, {"id": 3}]}}},
               {"object": {"id": "c", "definition": {"type": COURSE, "name": {"en": 1}}}}]
        docs = ingest_node_server.run_chart_pipeline(copy.deepcopy(odd))
        assert [{k: v for k, v in d.items() if k != "la_stack"} for d in docs] == odd
        assert [d.get("la_stack") for d in docs] == [None, None, {
            "course": {"id": "c", "name": "c"}, "object": {"name": "c", "type": "course"}}]

    def test_should_install_it_as_the_write_indexs_default_pipeline(
        self, ingest_node_server, tmp_path, fixture_entries
    ):
        runs = [bootstrap_on(ingest_node_server, tmp_path, "dims") for _ in range(2)]
        for run in runs:
            assert run.returncode == 0, run.stderr
        assert "ingest pipeline dims-dimensions: created" in runs[0].stdout
        assert "ingest pipeline dims-dimensions: unchanged" in runs[1].stdout
        assert "rolled over" not in runs[1].stdout
        index, settings = write_index(ingest_node_server, "dims")
        assert (index, settings["default_pipeline"]) == ("dims-000001", "dims-dimensions")

        statements = [{"id": str(uuid.uuid4()), **e["statement"]} for e in fixture_entries]
        bulk(ingest_node_server, "dims", statements)
        status, found = ingest_node_server.request("POST", "/dims/_search", {
            "size": 1000, "aggs": {"c": {"terms": {"field": "la_stack.course.name"}}}})
        assert status == 200, found
        by_id = {hit["_id"]: hit["_source"] for hit in found["hits"]["hits"]}
        assert by_id == {s["id"]: s for s in statements}, "_source is the statement as sent"
        counts = {}
        for statement in statements:
            course = course_of(statement)
            if course:
                counts[course["name"]] = counts.get(course["name"], 0) + 1
        shown = {b["key"]: b["doc_count"] for b in found["aggregations"]["c"]["buckets"]}
        assert shown == counts

    def test_should_roll_an_older_write_index_over_onto_it(self, ingest_node_server, tmp_path):
        status, body = ingest_node_server.request(
            "PUT", "/older-000001", {"aliases": {"older": {"is_write_index": True}}})
        assert status == 200, body
        run = bootstrap_on(ingest_node_server, tmp_path, "older")
        assert run.returncode == 0, run.stderr
        assert "older-000001 predates it: rolled over to older-000002" in run.stdout
        index, settings = write_index(ingest_node_server, "older")
        assert (index, settings.get("default_pipeline")) == ("older-000002", "older-dimensions")
        _, members = ingest_node_server.request("GET", "/_alias/older")
        assert set(members) == {"older-000001", "older-000002"}, "the older statements stay"

    # On the hooks tier's 8.19 (no ingest modules): what the mapping itself does.

    def test_should_skip_the_pipeline_and_say_so(self, es_stack, scratch_alias):
        run = run_hook("es_bootstrap", es_stack.bootstrap_env(
            {**bootstrap_config(), "alias": scratch_alias, "testIndex": ""}))
        assert run.returncode == 0, run.stderr
        assert "ingest pipeline: skipped, this Elasticsearch runs no Painless" in run.stdout
        first = f"{scratch_alias}-000001"
        _, settings = es_stack.es.request("GET", f"/{first}/_settings")
        assert "default_pipeline" not in settings[first]["settings"]["index"]

    def test_should_index_la_stack_outside_the_source(self, es_stack, scratch_alias):
        run = run_hook("es_bootstrap", es_stack.bootstrap_env(
            {**bootstrap_config(), "alias": scratch_alias, "testIndex": ""}))
        assert run.returncode == 0, run.stderr
        statement = {"id": str(uuid.uuid4()), "verb": {"id": "http://adlnet.gov/expapi/verbs/x"}}
        status, body = es_stack.es.request(
            "PUT", f"/{scratch_alias}/_doc/{statement['id']}?refresh=true",
            {**statement, "la_stack": {"course": {"id": "c1", "name": "Algebra"}}})
        assert status == 201, body
        status, found = es_stack.es.request("POST", f"/{scratch_alias}/_search", {
            "aggs": {"c": {"terms": {"field": "la_stack.course.name"}}}})
        assert status == 200, found
        assert [h["_source"] for h in found["hits"]["hits"]] == [statement]
        assert [(b["key"], b["doc_count"]) for b in found["aggregations"]["c"]["buckets"]] \
            == [("Algebra", 1)]
