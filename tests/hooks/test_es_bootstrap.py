"""es_bootstrap.py against a real Elasticsearch 8.19 on loopback.

The cluster is the integ-test-zip distribution from Maven Central (see
lastack/services/elasticsearch.py). It has what this hook needs: HTTPS with our own CA (as
ECK's), file-realm users with the chart's roles.yml (so 401 and 403 are real), composable
index templates, keyword/flattened/date mappings, auto_expand_replicas, cluster health. It
lacks SQL, analysis-common, ingest, ILM and the `GET /` module (a stand-in is added), so
Superset's SQL path is not exercised here.

The session ran the hook once already (as the chart's post-install Job); these cases run it
again, with the bootstrap user that the secrets hook generated.
"""

from __future__ import annotations

import json
import time

import pytest

from lastack import xapi
from lastack.services.processes import free_port
from tests.hooks.conftest import TEMPLATE_FILE, assert_one_sentence_failure, run_hook

pytestmark = pytest.mark.hooks
TEMPLATE = "la-stack-statements"


def test_the_first_run_created_template_and_index(es_stack):
    result = es_stack.bootstrap_run
    assert result.returncode == 0, result.stderr
    assert f"index template {TEMPLATE}: created" in result.stdout
    assert "index statements: created (green)" in result.stdout
    status, body = es_stack.es.request("GET", f"/_index_template/{TEMPLATE}")
    assert status == 200
    template = body["index_templates"][0]["index_template"]
    assert template["index_patterns"] == ["statements*"]
    assert template["_meta"]["managed_by"] == "la-stack"
    status, settings = es_stack.es.request("GET", "/statements/_settings")
    index = settings["statements"]["settings"]["index"]
    assert index["auto_expand_replicas"] == "0-1"
    assert index["number_of_replicas"] == "0"  # one node: no replica, so no yellow


def test_the_cluster_is_green_on_one_node(es_stack):
    status, health = es_stack.es.request("GET", "/_cluster/health/statements")
    assert status == 200
    assert (health["status"], health["number_of_nodes"]) == ("green", 1)


def test_a_second_run_changes_nothing(es_stack):
    es = es_stack.es
    before = (
        es.request("GET", f"/_index_template/{TEMPLATE}"),
        es.request("GET", "/statements/_settings"),
        es.request("GET", "/statements/_mapping"),
    )
    result = run_hook("es_bootstrap", es_stack.bootstrap_env())
    assert result.returncode == 0, result.stderr
    assert f"index template {TEMPLATE}: unchanged" in result.stdout
    assert "index statements: exists, left as it is" in result.stdout
    after = (
        es.request("GET", f"/_index_template/{TEMPLATE}"),
        es.request("GET", "/statements/_settings"),
        es.request("GET", "/statements/_mapping"),
    )
    assert after == before


def test_a_changed_template_file_is_written_once(es_stack, tmp_path):
    changed = json.loads(TEMPLATE_FILE.read_text())
    changed["_meta"]["note"] = "a newer chart"
    path = tmp_path / "template.json"
    path.write_text(json.dumps(changed))
    try:
        first = run_hook("es_bootstrap", es_stack.bootstrap_env(TEMPLATE_FILE=str(path)))
        second = run_hook("es_bootstrap", es_stack.bootstrap_env(TEMPLATE_FILE=str(path)))
        assert f"index template {TEMPLATE}: updated" in first.stdout
        assert f"index template {TEMPLATE}: unchanged" in second.stdout
        _, body = es_stack.es.request("GET", f"/_index_template/{TEMPLATE}")
        assert body["index_templates"][0]["index_template"]["_meta"]["note"] == "a newer chart"
    finally:
        restored = run_hook("es_bootstrap", es_stack.bootstrap_env())
        assert f"index template {TEMPLATE}: updated" in restored.stdout


@pytest.fixture(scope="module")
def mapped(es_stack):
    """500 generated statements bulk-indexed into a fresh index the hook created."""
    index = "statements-mapping"
    result = run_hook("es_bootstrap", es_stack.bootstrap_env(ES_INDEX=index))
    assert result.returncode == 0, result.stderr
    assert f"index {index}: created" in result.stdout
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


def test_generated_statements_map_as_designed(mapped):
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


def test_no_mapping_explosion(mapped):
    """Extension keys are URLs full of dots; unflattened, each would add nested fields."""
    _, mapping = mapped
    assert count_fields(mapping) < 200
    choices = field_at(mapping, "object.definition")["properties"]["choices"]["properties"]
    assert choices["description"]["type"] == "flattened"  # a language map inside an array


def test_dashboards_can_aggregate_on_the_keyword_fields(mapped, es_stack):
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
    assert xapi.VERBS["viewed"] in verbs
    assert answer["aggregations"]["courses"]["buckets"]


def test_a_wrong_password_fails_at_once(es_stack):
    start = time.monotonic()
    result = run_hook("es_bootstrap", es_stack.bootstrap_env(ES_PASSWORD="not-the-password"))
    assert time.monotonic() - start < 15  # 401 is not retried
    assert_one_sentence_failure(result, "401", "la-stack-bootstrap")


def test_a_user_without_the_bootstrap_role_is_refused(es_stack):
    username, password = es_stack.login("t-es-superset")
    env = es_stack.bootstrap_env(ES_USERNAME=username, ES_PASSWORD=password)
    assert_one_sentence_failure(run_hook("es_bootstrap", env), "403", username)


def test_an_unreachable_cluster_gives_up_at_the_deadline(es_stack):
    env = es_stack.bootstrap_env(ES_URL=f"https://127.0.0.1:{free_port()}", DEADLINE_SECONDS="4")
    start = time.monotonic()
    result = run_hook("es_bootstrap", env)
    assert time.monotonic() - start < 20
    line = assert_one_sentence_failure(result, "gave up", "DEADLINE_SECONDS")
    assert "waiting for the cluster" in line
    assert "waiting:" in result.stdout  # progress lines while retrying


def test_an_unknown_ca_fails_at_once(es_stack):
    env = es_stack.bootstrap_env(ES_CA_FILE="")  # system trust store: our CA is not in it
    line = assert_one_sentence_failure(run_hook("es_bootstrap", env), "TLS verification")
    assert "certificate" in line


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"ES_URL": "ftp://127.0.0.1:9200"}, ("not an http(s) URL",)),
        ({"ES_URL": ""}, ("ES_URL",)),
        ({"ES_INDEX": "xapi"}, ("ES_INDEX", "statements*")),
        ({"TEMPLATE_FILE": "/nonexistent.json"}, ("/nonexistent.json",)),
        ({"ES_CA_FILE": "/nonexistent-ca.crt"}, ("/nonexistent-ca.crt",)),
        ({"ES_PASSWORD": ""}, ("ES_PASSWORD",)),
    ],
)
def test_bad_settings_are_one_sentence(es_stack, overrides, words):
    env = es_stack.bootstrap_env(**overrides)
    assert_one_sentence_failure(run_hook("es_bootstrap", env), *words)
