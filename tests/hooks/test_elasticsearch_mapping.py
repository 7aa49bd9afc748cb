"""What es_bootstrap.py sends: the index template's mappings on generated statements (a
real Elasticsearch), and the template, ILM and SLM bodies as pure functions of the
chart's config."""

from __future__ import annotations

import copy
import json

import pytest

from lastack.testing import xapi
from lastack.testing.services.hookfiles import (
    TEMPLATE_FILE,
    bootstrap_config,
    import_hook,
    run_hook,
)
from lastack.testing.xapi_vocabulary import VERBS

pytestmark = pytest.mark.hooks
es_api = import_hook("es_api")


@pytest.fixture(scope="module")
def mapped(es_stack):
    """500 generated statements bulk-indexed into a fresh index the hook created."""
    alias = "statements_mapping"
    result = run_hook("es_bootstrap", es_stack.bootstrap_env(
        {**bootstrap_config(), "alias": alias, "testIndex": ""}))
    assert result.returncode == 0, result.stderr
    index = f"{alias}-000001"
    assert f"write alias {alias}: created on {index}" in result.stdout
    lines = []
    for statement in xapi.generate(500, seed=11):
        lines += [json.dumps({"index": {"_id": statement["id"]}}), json.dumps(statement)]
    body = "\n".join(lines) + "\n"
    status, answer = es_stack.es.request_raw(
        "POST", f"/{index}/_bulk?refresh=true", body, "application/x-ndjson"
    )
    assert status == 200 and not answer["errors"], answer
    _, mapping = es_stack.es.request("GET", f"/{index}/_mapping")
    return index, mapping[index]["mappings"]


def field_at(mapping, dotted):
    node = {"properties": mapping["properties"]}
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


def count_fields(node):
    total = 0
    for child in (node.get("properties") or {}).values():
        total += 1 + count_fields(child) + len(child.get("fields") or {})
    return total


class TestEsBootstrap:
    """The statements' mapping and the bodies of the store."""

    def test_generated_statements_map_as_designed(self, mapped):
        _, mapping = mapped
        keyword_fields = (
            "id", "verb.id", "object.id", "object.objectType", "object.definition.type",
            "actor.account.name", "actor.account.homePage",
            "context.contextActivities.parent.id", "context.contextActivities.grouping.id",
            "context.contextActivities.category.id", "context.platform",
        )  # fmt: skip
        for dotted in keyword_fields:
            assert field_at(mapping, dotted)["type"] == "keyword", dotted
        for dotted in ("verb.id", "object.id", "actor.account.name"):  # Ralph queries `<f>.keyword`
            assert field_at(mapping, dotted)["fields"]["keyword"]["type"] == "keyword"
        flattened = (
            "context.extensions", "object.definition.extensions", "object.definition.name",
            "verb.display", "context.contextActivities.parent.definition.name",
        )  # fmt: skip
        for dotted in flattened:
            assert field_at(mapping, dotted)["type"] == "flattened", dotted
        assert field_at(mapping, "timestamp")["type"] == "date"
        assert field_at(mapping, "result.score.scaled")["type"] == "double"
        assert field_at(mapping, "actor.name")["type"] == "text"

    def test_no_mapping_explosion(self, mapped):
        """Extension keys are URLs full of dots; unflattened, each would add nested fields."""
        _, mapping = mapped
        assert count_fields(mapping) < 200
        choices = field_at(mapping, "object.definition")["properties"]["choices"]["properties"]
        assert choices["description"]["type"] == "flattened"  # a language map inside an array

    def test_dashboards_can_aggregate_on_the_keyword_fields(self, mapped, es_stack):
        index, _ = mapped
        query = {
            "size": 0,
            "aggs": {
                "verbs": {"terms": {"field": "verb.id"}},
                "courses": {"terms": {"field": "context.contextActivities.parent.id"}},
                "engine": {"terms": {"field": "context.extensions.event_function"}},
            },
            "query": {"range": {"timestamp": {"gte": "2026-09-01", "lt": "2026-10-01"}}},
        }
        status, answer = es_stack.es.request("POST", f"/{index}/_search", query)
        assert status == 200, answer
        assert answer["hits"]["total"]["value"] == 500
        verbs = {b["key"] for b in answer["aggregations"]["verbs"]["buckets"]}
        assert VERBS["viewed"] in verbs
        assert answer["aggregations"]["courses"]["buckets"]

    def test_template_digest_ignores_its_own_stamp(self):
        template = json.loads(TEMPLATE_FILE.read_text())
        stamped = es_api.with_digest(template)
        digest = stamped["_meta"][es_api.DIGEST_META_KEY]
        assert digest == es_api.digest(template) == es_api.digest(stamped)
        assert es_api.DIGEST_META_KEY not in template["_meta"]  # the input is not mutated
        changed = copy.deepcopy(template)
        changed["template"]["mappings"]["dynamic"] = False
        assert es_api.digest(changed) != digest
        assert es_api.stored_digest(stamped["_meta"]) == digest
        assert es_api.stored_digest(None) is None

    def test_the_template_file_is_the_one_the_chart_ships(self):
        """The mappings only: the hook adds the index patterns and the values' settings."""
        template = json.loads(TEMPLATE_FILE.read_text())
        assert "index_patterns" not in template and "settings" not in template["template"]
        properties = template["template"]["mappings"]["properties"]
        assert properties["verb"]["properties"]["id"]["type"] == "keyword"
        assert properties["timestamp"] == {"type": "date"}

    # What the hook sends, as pure functions of the chart's config.

    es_bootstrap = import_hook("es_bootstrap")

    es_lifecycle = import_hook("es_lifecycle")

    def test_the_template_has_the_settings_and_never_the_alias(self):
        config = bootstrap_config()
        mappings = json.loads(TEMPLATE_FILE.read_text())
        body = self.es_bootstrap.index_template(mappings, config, ilm=True)
        assert body["index_patterns"] == ["statements-*"]
        assert "aliases" not in body["template"]
        assert body["template"]["settings"]["index"] == {
            **config["settings"], "lifecycle": {"name": "statements",
                                                "rollover_alias": "statements"}}
        without = self.es_bootstrap.index_template(mappings, config, ilm=False)
        assert "lifecycle" not in without["template"]["settings"]["index"]

    def test_the_ilm_policy_rolls_over_and_deletes_after_a_snapshot(self):
        lifecycle = {"rollover": {"max_age": "30d"}, "deleteAfter": "1825d"}
        policy = self.es_lifecycle.ilm_policy(lifecycle, "nightly")["policy"]
        assert policy["phases"]["hot"]["actions"]["rollover"] == {"max_age": "30d"}
        assert policy["phases"]["delete"] == {"min_age": "1825d", "actions": {
            "wait_for_snapshot": {"policy": "nightly"}, "delete": {}}}
        kept = self.es_lifecycle.ilm_policy({**lifecycle, "deleteAfter": ""}, None)
        assert set(kept["policy"]["phases"]) == {"hot"}

    def test_the_slm_policy_snapshots_the_alias_and_its_indices(self):
        body = self.es_lifecycle.slm_policy(
            {"name": "nightly", "schedule": "0 30 1 * * ?",
             "retention": {"expireAfter": "30d", "minCount": 5, "maxCount": 50}},
            "la-stack", "statements")
        assert body["config"]["indices"] == ["statements", "statements-*"]
        assert body["retention"] == {"expire_after": "30d", "min_count": 5, "max_count": 50}
        assert body["name"] == "<nightly-{now/d}>" and body["repository"] == "la-stack"
