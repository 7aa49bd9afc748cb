"""es_bootstrap.py against a real Elasticsearch 8.19 on loopback.

The cluster is the integ-test-zip distribution from Maven Central (see
lastack/testing/services/elasticsearch.py). It has what this hook needs: HTTPS with our own CA (as
ECK's), file-realm users with the chart's roles.yml (so 401 and 403 are real), composable
index templates, keyword/flattened/date mappings, auto_expand_replicas, cluster health. It
lacks SQL, analysis-common, ingest, ILM and the `GET /` module (a stand-in is added), so
Superset's SQL path is not exercised here.

The session ran the hook once already (as the chart's post-install Job); these cases run it
again, with the bootstrap user that the secrets hook generated.
"""

from __future__ import annotations

import json

import pytest

from lastack.net import free_port
from lastack.testing import xapi
from lastack.testing.services.hookfiles import TEMPLATE_FILE, bootstrap_config, run_hook
from tests.hooks.support import assert_one_sentence_failure

pytestmark = pytest.mark.hooks
TEMPLATE = "la-stack-statements"  # la-stack-<alias>


def strip_ignore_above(node):
    if isinstance(node, dict):
        if node.get("type") == "flattened":
            node.pop("ignore_above", None)
        for child in node.values():
            strip_ignore_above(child)
    elif isinstance(node, list):
        for child in node:
            strip_ignore_above(child)


class TestEsBootstrap:
    """The store it makes, idempotently; every failure one sentence."""

    def test_the_first_run_made_the_store(self, es_stack):
        """The chart's defaults: a template for the backing indices (without the alias), the
        first backing index behind the write alias, the helm-test index outside it, and a
        clear skip of what this distribution lacks (ILM, SLM)."""
        result = es_stack.bootstrap_run
        assert result.returncode == 0, result.stderr
        config = bootstrap_config()
        alias, first = config["alias"], f"{config['alias']}-000001"
        assert f"index template {TEMPLATE}: created" in result.stdout
        assert f"write alias {alias}: created on {first} (green)" in result.stdout
        assert f"test index {config['testIndex']}: created (green)" in result.stdout
        assert "ILM: skipped, this Elasticsearch has no index lifecycle management" in result.stdout
        assert "snapshots: off" in result.stdout
        status, body = es_stack.es.request("GET", f"/_index_template/{TEMPLATE}")
        assert status == 200
        template = body["index_templates"][0]["index_template"]
        assert template["index_patterns"] == [f"{alias}-*"]
        assert "aliases" not in template["template"]  # an alias in the template breaks rollover
        assert template["template"]["settings"]["index"] == {
            "number_of_shards": str(config["settings"]["number_of_shards"]),
            "auto_expand_replicas": config["settings"]["auto_expand_replicas"]}
        _, aliases = es_stack.es.request("GET", f"/_alias/{alias}")
        assert aliases == {first: {"aliases": {alias: {"is_write_index": True}}}}
        _, settings = es_stack.es.request("GET", f"/{first}/_settings")
        index = settings[first]["settings"]["index"]
        assert index["auto_expand_replicas"] == "0-1"
        assert index["number_of_replicas"] == "0"  # one node: no replica, so no yellow
        _, test_aliases = es_stack.es.request("GET", f"/{config['testIndex']}/_alias")
        assert test_aliases[config["testIndex"]]["aliases"] == {}

    def test_the_cluster_is_green_on_one_node(self, es_stack):
        status, health = es_stack.es.request("GET", "/_cluster/health/statements")
        assert status == 200
        assert (health["status"], health["number_of_nodes"]) == ("green", 1)

    def test_a_second_run_changes_nothing(self, es_stack):
        es = es_stack.es
        first = f"{bootstrap_config()['alias']}-000001"

        def state():
            return (es.request("GET", f"/_index_template/{TEMPLATE}"),
                    es.request("GET", "/_alias/statements"),
                    es.request("GET", f"/{first}/_settings"),
                    es.request("GET", f"/{first}/_mapping"))

        before = state()
        result = run_hook("es_bootstrap", es_stack.bootstrap_env())
        assert result.returncode == 0, result.stderr
        assert f"index template {TEMPLATE}: unchanged" in result.stdout
        assert f"write alias statements: exists, writes go to {first}" in result.stdout
        assert "test index statements.helm-test: exists, left as it is" in result.stdout
        assert state() == before
        _, indices = es.request("GET", "/_cat/indices/statements-*?format=json&h=index")
        assert [i["index"] for i in indices] == [first]  # one write index, not two

    def test_a_changed_template_file_is_written_once(self, es_stack, tmp_path):
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

    def test_a_wrong_password_fails_at_once(self, es_stack):
        result = run_hook("es_bootstrap", es_stack.bootstrap_env(ES_PASSWORD="not-the-password"))
        assert_one_sentence_failure(result, "401", "la-stack-bootstrap")
        assert "waiting:" not in result.stdout  # 401 is not retried

    def test_a_user_without_the_bootstrap_role_is_refused(self, es_stack):
        username, password = es_stack.login("t-es-superset")
        env = es_stack.bootstrap_env(ES_USERNAME=username, ES_PASSWORD=password)
        assert_one_sentence_failure(run_hook("es_bootstrap", env), "403", username)

    def test_an_unreachable_cluster_gives_up_at_the_deadline(self, es_stack):
        env = es_stack.bootstrap_env(ES_URL=f"https://127.0.0.1:{free_port()}",
                                     DEADLINE_SECONDS="4")
        result = run_hook("es_bootstrap", env)  # bounded by run_hook's own timeout
        line = assert_one_sentence_failure(result, "gave up", "DEADLINE_SECONDS")
        assert "waiting for the cluster" in line
        assert "waiting:" in result.stdout  # progress lines while retrying

    def test_an_unknown_ca_fails_at_once(self, es_stack):
        env = es_stack.bootstrap_env(ES_CA_FILE="")  # system trust store: our CA is not in it
        line = assert_one_sentence_failure(run_hook("es_bootstrap", env), "TLS verification")
        assert "certificate" in line

    @pytest.mark.parametrize(
        ("overrides", "words"),
        [
            ({"ES_URL": "ftp://127.0.0.1:9200"}, ("not an http(s) URL",)),
            ({"ES_URL": ""}, ("ES_URL",)),
            ({"TEMPLATE_FILE": "/nonexistent.json"}, ("/nonexistent.json",)),
            ({"ES_CA_FILE": "/nonexistent-ca.crt"}, ("/nonexistent-ca.crt",)),
            ({"ES_PASSWORD": ""}, ("ES_PASSWORD",)),
        ],
    )
    def test_bad_settings_are_one_sentence(self, es_stack, overrides, words):
        env = es_stack.bootstrap_env(**overrides)
        assert_one_sentence_failure(run_hook("es_bootstrap", env), *words)

    @pytest.mark.parametrize(
        ("change", "words"),
        [
            ({"alias": "Statements"}, ("alias",)),
            ({"alias": ""}, ("alias",)),
            ({"testIndex": "helm test"}, ("testIndex",)),
            ({"lifecycle": {"rollover": {}}}, ("lifecycle.rollover",)),
            ({"snapshots": {"repository": {"type": "s3"}, "policy": {"name": "p"}}},
             ("snapshots.repository.name",)),
        ],
    )
    def test_a_bad_config_is_one_sentence_naming_the_key(self, es_stack, change, words):
        env = es_stack.bootstrap_env({**bootstrap_config(), **change})
        assert_one_sentence_failure(run_hook("es_bootstrap", env), *words)

    def test_a_concrete_index_from_an_earlier_release_is_kept_and_fixed(self, es_stack):
        """An earlier release made one concrete index, whose flattened fields had no
        ignore_above: the hook keeps it (no data moves), fixes the mapping in place, and a
        statement with a 40,000-character description is then accepted."""
        es, alias = es_stack.es, "statements_legacy"
        old = json.loads(TEMPLATE_FILE.read_text())["template"]["mappings"]
        strip_ignore_above(old)
        assert es.request("PUT", f"/{alias}", {"mappings": old})[0] == 200
        statement = xapi.generate(1, seed=41)[0]
        statement["object"]["definition"]["description"] = {"en": "x" * 40_000}
        status, _ = es.request("PUT", f"/{alias}/_doc/{statement['id']}", statement)
        assert status == 400  # what happened before: the document is rejected

        result = run_hook("es_bootstrap", es_stack.bootstrap_env(
            {**bootstrap_config(), "alias": alias, "testIndex": ""}))
        assert result.returncode == 0, result.stderr
        assert f"write alias {alias}: a concrete index from an earlier release: kept" in \
            result.stdout
        assert es.request("GET", f"/_alias/{alias}")[0] == 404  # nothing was renamed
        _, mapping = es.request("GET", f"/{alias}/_mapping")
        definition = mapping[alias]["mappings"]["properties"]["object"]["properties"]["definition"]
        assert definition["properties"]["description"]["ignore_above"] == 8191
        assert es.request("PUT", f"/{alias}/_doc/{statement['id']}", statement)[0] == 201

    def test_the_documented_move_under_the_write_alias(self, es_stack):
        """The chart README's 'Moving statements under the write alias', step by step, on a
        concrete index of an earlier release: nothing is lost, old statements read through
        the alias, and the bootstrap then gives the alias a write index of its own."""
        es, alias = es_stack.es, "statements_moved"
        old = xapi.generate(50, seed=43)
        lines = []
        for statement in old:
            lines += [json.dumps({"index": {"_id": statement["id"]}}), json.dumps(statement)]
        mappings = json.loads(TEMPLATE_FILE.read_text())["template"]["mappings"]
        # One node, so no replica, as an earlier release's bootstrap created its index.
        settings = {"index": {"auto_expand_replicas": "0-1"}}
        body = {"settings": settings, "mappings": mappings}
        assert es.request("PUT", f"/{alias}", body)[0] == 200
        status, answer = es.request_raw("POST", f"/{alias}/_bulk?refresh=true",
                                        "\n".join(lines) + "\n", "application/x-ndjson")
        assert status == 200 and not answer["errors"], answer

        kept = f"{alias}-000000"
        assert es.request("PUT", f"/{alias}/_block/write")[0] == 200  # 1.
        assert es.request("POST", f"/{alias}/_clone/{kept}?wait_for_active_shards=1")[0] == 200
        status, health = es.request(  # 2. (the server gives up before the client does)
            "GET", f"/_cluster/health/{kept}?wait_for_status=green&timeout=20s")
        assert status == 200 and health["status"] == "green", health
        assert es.request("GET", f"/{kept}/_count")[1]["count"] == len(old)  # 3.
        assert es.request("DELETE", f"/{alias}")[0] == 200  # 4.
        assert es.request("POST", "/_aliases", {"actions": [{"add": {  # 5.
            "index": kept, "alias": alias, "is_write_index": False}}]})[0] == 200
        result = run_hook("es_bootstrap", es_stack.bootstrap_env(  # 6.
            {**bootstrap_config(), "alias": alias, "testIndex": ""}))
        assert result.returncode == 0, result.stderr
        first = f"{alias}-000001"
        assert f"write alias {alias}: created {first} as the write index beside" in result.stdout
        _, aliases = es.request("GET", f"/_alias/{alias}")
        assert aliases == {kept: {"aliases": {alias: {"is_write_index": False}}},
                           first: {"aliases": {alias: {"is_write_index": True}}}}
        ids = [s["id"] for s in old]
        _, found = es.request("POST", f"/{alias}/_search",
                              {"size": 100, "query": {"terms": {"id": ids}}})
        assert sorted(h["_source"]["id"] for h in found["hits"]["hits"]) == sorted(ids)
        again = run_hook("es_bootstrap", es_stack.bootstrap_env(
            {**bootstrap_config(), "alias": alias, "testIndex": ""}))
        assert f"write alias {alias}: exists, writes go to {first}" in again.stdout
