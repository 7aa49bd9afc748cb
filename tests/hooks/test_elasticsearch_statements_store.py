"""The statements store with the chart's settings, on a real Elasticsearch and a real Ralph:
what Moodle really sends (the expected output of logstore_xapi v5.1.0's own tests), a value
long enough to reject a document, conflicting ids, rollover, least privilege, snapshots.

Elasticsearch is the integ-test-zip distribution: it has aliases, the rollover API and `fs`
snapshot repositories, but no ILM and no SLM, so the bootstrap skips those (checked here).
Only ECK's default distribution shows the ILM policy acting (rollover at its thresholds,
the delete phase after `deleteAfter`) and SLM taking and expiring snapshots on schedule;
here rollover is triggered by hand with the privileges ILM would act with.
"""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from lastack.paths import shared_dir
from lastack.testing.services.hookfiles import bootstrap_config, run_hook
from tests.hooks.support import ROLLED_ALIAS, TEST_INDEX
from tests.hooks.xapi_reads import STATEMENTS, read_all

pytestmark = pytest.mark.hooks


FIXTURE = shared_dir() / "fixtures" / "logstore_xapi-v5.1.0" / "statements.json"


LONG_TEXT = 40_000  # characters: a wiki page or forum post, stripped of HTML


@pytest.fixture(scope="module")
def moodle_statements() -> list[dict]:
    if not FIXTURE.exists():
        pytest.skip(f"{FIXTURE} is absent: the shared fixtures folder must sit beside the "
                    "checkout (or set LA_STACK_SHARED)")
    return [entry["statement"] for entry in json.loads(FIXTURE.read_text())]


def fresh(statements: list[dict]) -> list[dict]:
    """Copies as another Moodle event would send them (the plugin sends no id)."""
    return copy.deepcopy(statements)


def search_ids(es, target: str, ids: list[str]) -> dict[str, list[dict]]:
    """{id: [hits]} of these ids across every index behind `target`."""
    es.request("POST", f"/{target}/_refresh")
    status, body = es.request("POST", f"/{target}/_search", {
        "size": 10_000, "query": {"terms": {"id": ids}}, "_source": True})
    assert status == 200, body
    found: dict[str, list[dict]] = {}
    for hit in body["hits"]["hits"]:
        found.setdefault(hit["_source"]["id"], []).append(hit)
    return found


@pytest.fixture(scope="module")
def rolled(es_stack):
    """A write alias of its own (the `rolled` LRS account's target), bootstrapped with the
    chart's settings and an `fs` snapshot repository."""
    config = {**bootstrap_config(), "alias": ROLLED_ALIAS, "testIndex": "",
              "snapshots": {"repository": {"name": "la-stack-fs", "type": "fs", "settings": {
                  "location": str(es_stack.es.snapshot_dir / "la-stack")}},
                            "policy": {"name": "nightly", "schedule": "0 30 1 * * ?"}}}
    result = run_hook("es_bootstrap", es_stack.bootstrap_env(config))
    assert result.returncode == 0, result.stderr
    return config, result


class TestEsBootstrap:
    """The store es_bootstrap.py made, written and read through Ralph."""

    # logstore_xapi's statements through Ralph into the write alias, each stored once.

    def test_the_plugins_statements_are_stored_once(self, ralph_server, es_stack,
                                                    moodle_statements):
        batch = fresh(moodle_statements)
        status, ids = ralph_server.request("POST", STATEMENTS, batch,
                                           auth=es_stack.login("t-lrs-moodle"))
        assert status == 200, ids
        assert len(ids) == len(set(ids)) == len(moodle_statements)
        stored = search_ids(es_stack.es, "statements", ids)
        assert sorted(stored) == sorted(ids)
        assert all(len(hits) == 1 for hits in stored.values())
        for sent, statement_id in zip(batch, ids, strict=True):
            (hit,) = stored[statement_id]
            assert hit["_source"]["object"] == sent["object"]
            assert hit["_source"]["context"] == sent["context"]

    def test_a_very_long_text_does_not_fail_its_batch(self, ralph_server, es_stack,
                                                      moodle_statements):
        """A `flattened` value over 32,766 bytes used to reject the document, and Ralph then
        answered 500 after writing the others; with ignore_above it is kept whole."""
        batch = fresh(moodle_statements[:20])
        text = " ".join(f"word{i}" for i in range(LONG_TEXT))[:LONG_TEXT]
        batch[3]["object"]["definition"]["description"] = {"en": text}
        status, ids = ralph_server.request("POST", STATEMENTS, batch,
                                           auth=es_stack.login("t-lrs-moodle"))
        assert status == 200, ids
        stored = search_ids(es_stack.es, "statements", ids)
        assert sorted(stored) == sorted(ids) and all(len(h) == 1 for h in stored.values())
        (long_one,) = stored[ids[3]]
        assert long_one["_source"]["object"]["definition"]["description"]["en"] == text

    def test_a_conflicting_statement_is_a_409_and_changes_nothing(self, ralph_server,
                                                                   es_stack, moodle_statements):
        """Re-posting an id with other content right after the first write: the write is
        visible to Ralph's duplicate check before its answer (REFRESH_AFTER_WRITE=wait_for),
        so the LRS answers 409 instead of overwriting the stored statement."""
        moodle = es_stack.login("t-lrs-moodle")
        for original in fresh(moodle_statements[:5]):
            original["id"] = str(uuid.uuid4())
            status, _ = ralph_server.request("POST", STATEMENTS, [original], auth=moodle)
            assert status == 200
            changed = copy.deepcopy(original)
            changed["verb"] = {"id": "http://adlnet.gov/expapi/verbs/completed",
                               "display": {"en": "completed"}}
            status, body = ralph_server.request("POST", STATEMENTS, [changed], auth=moodle)
            assert status == 409, body
            (hit,) = search_ids(es_stack.es, "statements", [original["id"]])[original["id"]]
            assert hit["_source"]["verb"] == original["verb"]

    def test_the_helm_test_account_writes_outside_the_alias(self, ralph_server, es_stack,
                                                            moodle_statements):
        status, ids = ralph_server.request("POST", STATEMENTS, fresh(moodle_statements[:2]),
                                           auth=es_stack.login("t-lrs-helm-test"))
        assert status == 200, ids
        assert sorted(search_ids(es_stack.es, TEST_INDEX, ids)) == sorted(ids)
        assert search_ids(es_stack.es, "statements", ids) == {}

    # In order: write, roll over, write again, read across, conflict across, snapshot,
    # lose everything, restore, then a retention-like delete and a bootstrap re-run.

    def test_the_repository_is_registered_and_slm_skipped(self, rolled, es_stack):
        config, result = rolled
        assert "snapshot repository la-stack-fs: created, verified by 1 node(s)" in result.stdout
        assert "SLM policy nightly: skipped" in result.stdout
        again = run_hook("es_bootstrap", es_stack.bootstrap_env(config))
        assert "snapshot repository la-stack-fs: unchanged, verified by 1 node(s)" in \
            again.stdout, again.stdout + again.stderr

    def test_the_writer_may_neither_roll_over_nor_create_indices(self, rolled, es_stack):
        user, password = es_stack.login("t-es-ralph")
        for method, path in (("POST", f"/{ROLLED_ALIAS}/_rollover"),
                             ("PUT", f"/{ROLLED_ALIAS}-000009")):
            status, body = es_stack.es.request(method, path, {}, user=user, password=password)
            assert status == 403, (path, body)

    def test_writes_reads_and_conflicts_span_a_rollover(self, rolled, ralph_server, es_stack,
                                                        moodle_statements):
        es, account = es_stack.es, es_stack.login("t-lrs-rolled")
        status, before = ralph_server.request("POST", STATEMENTS, fresh(moodle_statements[:60]),
                                              auth=account)
        assert status == 200, before
        # ILM would do this at a threshold, as the bootstrap user (the policy's writer).
        user, password = es_stack.login("t-es-bootstrap")
        status, body = es.request("POST", f"/{ROLLED_ALIAS}/_rollover", {},
                                  user=user, password=password)
        assert status == 200 and body["rolled_over"], body
        old, new = body["old_index"], body["new_index"]
        assert (old, new) == (f"{ROLLED_ALIAS}-000001", f"{ROLLED_ALIAS}-000002")
        status, after = ralph_server.request("POST", STATEMENTS, fresh(moodle_statements[60:130]),
                                             auth=account)
        assert status == 200, after
        assert sorted(search_ids(es, new, after)) == sorted(after)
        assert search_ids(es, new, before) == {}

        listed = {s["id"] for s in read_all(ralph_server, {"limit": 100}, account)}
        assert listed == set(before) | set(after)  # pages cross both backing indices

        (stored,) = search_ids(es, ROLLED_ALIAS, [before[0]])[before[0]]
        changed = copy.deepcopy(stored["_source"])
        changed["verb"] = {"id": "http://adlnet.gov/expapi/verbs/voided",
                           "display": {"en": "voided"}}
        for key in ("stored", "authority"):
            changed.pop(key)
        status, answer = ralph_server.request("POST", STATEMENTS, [changed], auth=account)
        assert status == 409, answer
        assert [h["_index"] for h in search_ids(es, ROLLED_ALIAS, [before[0]])[before[0]]] \
            == [old]

    def test_a_snapshot_restores_the_indices_and_the_alias(self, rolled, ralph_server,
                                                           es_stack):
        es = es_stack.es
        es.request("POST", f"/{ROLLED_ALIAS}/_refresh")
        _, counted = es.request("GET", f"/{ROLLED_ALIAS}/_count")
        _, aliases = es.request("GET", f"/_alias/{ROLLED_ALIAS}")
        user, password = es_stack.login("t-es-bootstrap")
        status, body = es.request(
            "PUT", "/_snapshot/la-stack-fs/before-the-loss?wait_for_completion=true",
            {"indices": f"{ROLLED_ALIAS}-*", "include_global_state": False},
            user=user, password=password)
        assert status == 200 and body["snapshot"]["state"] == "SUCCESS", body

        status, _ = es.request("DELETE", f"/{ROLLED_ALIAS}-000001,{ROLLED_ALIAS}-000002")  # a loss
        assert status == 200
        assert es.request("GET", f"/_alias/{ROLLED_ALIAS}")[0] == 404
        status, body = es.request(
            "POST", "/_snapshot/la-stack-fs/before-the-loss/_restore?wait_for_completion=true",
            {"indices": f"{ROLLED_ALIAS}-*", "include_aliases": True})
        assert status == 200, body
        assert es.request("GET", f"/_alias/{ROLLED_ALIAS}")[1] == aliases
        assert es.request("GET", f"/{ROLLED_ALIAS}/_count")[1]["count"] == counted["count"]
        listed = read_all(ralph_server, {"limit": 100}, es_stack.login("t-lrs-rolled"))
        assert len(listed) == counted["count"]

    def test_a_rerun_after_rollover_never_recreates_the_first_index(self, rolled, es_stack):
        config, _ = rolled
        es = es_stack.es
        assert es.request("DELETE", f"/{ROLLED_ALIAS}-000001")[0] == 200  # as retention would
        result = run_hook("es_bootstrap", es_stack.bootstrap_env(config))
        assert result.returncode == 0, result.stderr
        assert f"write alias {ROLLED_ALIAS}: exists, writes go to {ROLLED_ALIAS}-000002" in \
            result.stdout
        assert es.request("GET", f"/{ROLLED_ALIAS}-000001")[0] == 404
