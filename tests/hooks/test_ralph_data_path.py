"""The data path end to end: Ralph from PyPI, wired only by what the hooks produced.

Ralph runs with the chart's environment (lastack.testing.services.ralph.chart_env): its ES hosts
value is release_secrets.py's ralph-env Secret (a user-provided writer password full of reserved
characters, URL-encoded), its auth.json is release_secrets.py's ralph-auth Secret, TLS is verified
with the cluster's CA, and it writes to the index es_bootstrap created. Elasticsearch is the
integ-test-zip distribution (see test_elasticsearch_bootstrap.py for what it lacks).
"""

from __future__ import annotations

import json
import urllib.parse

import pytest

from lastack.testing import xapi
from lastack.testing.xapi_vocabulary import VERBS
from tests.hooks.support import account_of
from tests.hooks.xapi_reads import STATEMENTS, read_all

pytestmark = pytest.mark.hooks


BATCH = xapi.generate(1000, seed=21)


def es_count(es_stack, query=None) -> int:
    es_stack.es.request("POST", "/statements/_refresh")
    status, body = es_stack.es.request(
        "POST", "/statements/_count", {"query": query} if query else None
    )
    assert status == 200, body
    return body["count"]


@pytest.fixture(scope="module")
def moodle_login(es_stack):
    return es_stack.login("t-lrs-moodle")


def moodle_mbox(es_stack) -> str:
    """The agent the session's config gives the moodle account (Ralph's authority)."""
    return account_of(es_stack.config["lrsAccounts"], "moodle")["agent"]["mbox"]


@pytest.fixture(scope="module")
def posted(ralph_server, es_stack, moodle_login):
    """One batch of 1,000 Moodle statements, posted as logstore_xapi would."""
    before = es_count(es_stack)
    status, ids = ralph_server.request("POST", STATEMENTS, BATCH, auth=moodle_login)
    assert status == 200, ids
    return before, ids


class TestRalphDataPath:
    """Ralph as the chart runs it, on what the hooks made."""

    def test_the_heartbeat_sees_elasticsearch(self, ralph_server):
        status, body = ralph_server.get("/__heartbeat__")
        assert status == 200 and body == {"database": "ok"}

    def test_the_heartbeat_passes_while_elasticsearch_is_yellow(self, ralph_server, es_stack):
        """Ralph's heartbeat is its liveness probe (fixed by the ralph chart): with the chart's
        default environment it must pass on a yellow cluster, as during an ECK rolling restart.
        Here one node cannot place the replica of an index that asks for one."""
        index = "la-stack-yellow-probe"
        status, body = es_stack.es.request("PUT", f"/{index}", {
            "settings": {"number_of_shards": 1, "number_of_replicas": 1}})
        assert status == 200, body
        try:
            _, health = es_stack.es.request(
                "GET", "/_cluster/health?wait_for_status=yellow&timeout=30s")
            assert health["status"] == "yellow", health
            status, body = ralph_server.get("/__heartbeat__")
            assert status == 200, body
        finally:
            es_stack.es.request("DELETE", f"/{index}")

    def test_the_hosts_value_carries_the_encoded_password(self, es_stack):
        hosts = es_stack.secret("t-ralph-env")["RALPH_BACKENDS__LRS__ES__HOSTS"]
        parts = urllib.parse.urlsplit(hosts)
        assert urllib.parse.unquote(parts.password) == es_stack.login("t-es-ralph")[1]
        assert "%40" in hosts and "%2F" in hosts and "%23" in hosts  # @ / # encoded

    def test_a_batch_is_stored_in_elasticsearch(self, posted, es_stack):
        before, ids = posted
        assert ids == [s["id"] for s in BATCH]
        assert es_count(es_stack) == before + len(BATCH)
        _, stored = es_stack.es.request("GET", f"/statements/_doc/{BATCH[0]['id']}")
        source = stored["_source"]
        assert source["authority"]["mbox"] == moodle_mbox(es_stack)
        assert source["verb"] == BATCH[0]["verb"] and "stored" in source

    def test_moodle_reads_back_its_own_statements(self, posted, ralph_server, moodle_login,
                                                  es_stack):
        def page():
            return ralph_server.get(f"{STATEMENTS}?limit=100", auth=moodle_login)

        # REFRESH_AFTER_WRITE=wait_for: Ralph answered the POST once its writes were searchable.
        status, body = page()
        assert len(body["statements"]) == 100
        assert status == 200
        assert {s["authority"]["mbox"] for s in body["statements"]} == {
            moodle_mbox(es_stack)
        }
        assert body["more"]  # 1,000 statements: there is a next page

    def test_ralphs_filters_work_on_la_stacks_mapping(self, posted, ralph_server, es_stack,
                                                      moodle_login):
        """Ralph filters on `<field>.keyword`; the template keeps those sub-fields. Paging goes
        through point-in-time searches, which the writer role must allow. Other modules of the
        session post with the same account too, so: every match of this batch is found, and
        everything found matches the filter."""
        answered = {s["id"] for s in BATCH if s["verb"]["id"] == VERBS["answered"]}
        assert len(answered) > 100  # more than one page
        found = read_all(ralph_server, {"verb": VERBS["answered"]}, moodle_login)
        assert answered <= {s["id"] for s in found}
        assert {s["verb"]["id"] for s in found} == {VERBS["answered"]}

        learner = BATCH[0]["actor"]
        agent = json.dumps({"account": learner["account"], "objectType": "Agent"})
        found = read_all(ralph_server, {"agent": agent}, moodle_login)
        assert {s["id"] for s in BATCH if s["actor"]["account"] == learner["account"]} <= {
            s["id"] for s in found}
        assert all(s["actor"]["account"] == learner["account"] for s in found)

    def test_admin_and_dashboards_read_everything(self, posted, ralph_server, es_stack):
        for account in ("t-lrs-admin", "t-lrs-dashboards"):
            status, body = ralph_server.get(f"{STATEMENTS}?limit=5", auth=es_stack.login(account))
            assert status == 200 and len(body["statements"]) == 5, account

    def test_a_read_only_account_cannot_post(self, ralph_server, es_stack):
        """Scopes are enforced (LRS_RESTRICT_BY_SCOPES). The pinned Ralph answers a missing scope
        with 401, not the 403 the xAPI spec suggests; the detail names the scope."""
        status, body = ralph_server.request(
            "POST", STATEMENTS, xapi.generate(1, seed=22), auth=es_stack.login("t-lrs-dashboards")
        )
        assert status == 401, body
        assert body["detail"] == 'Access not authorized to scope: "statements/write".'

    @pytest.mark.parametrize("who", ["wrong password", "unknown user", "no credentials"])
    def test_bad_credentials_are_401(self, ralph_server, moodle_login, who):
        auth = {
            "wrong password": (moodle_login[0], moodle_login[1] + "x"),
            "unknown user": ("nobody", moodle_login[1]),
            "no credentials": None,
        }[who]
        status, _ = ralph_server.request("POST", STATEMENTS, xapi.generate(1, seed=23), auth=auth)
        assert status == 401

    def test_duplicate_statements_follow_ralphs_rules(self, ralph_server, es_stack, moodle_login):
        """What Moodle's retries meet (openfun/ralph#345, fixed in #389):
        - the same id twice in one batch: 400 and nothing of the batch is stored;
        - a batch that was already stored, sent again: 204, nothing written twice;
        - a batch mixing stored and new statements: 200 listing only the new ids;
        - a stored id sent with different content: 409."""
        fresh = xapi.generate(3, seed=24)
        ids = [s["id"] for s in fresh]
        by_id = {"terms": {"_id": ids}}

        status, _ = ralph_server.request(
            "POST", STATEMENTS, [fresh[0], fresh[1], fresh[0]], auth=moodle_login
        )
        assert status == 400
        assert es_count(es_stack, by_id) == 0

        status, stored = ralph_server.request("POST", STATEMENTS, fresh[:2], auth=moodle_login)
        assert status == 200 and stored == ids[:2]
        assert es_count(es_stack, by_id) == 2

        status, _ = ralph_server.request("POST", STATEMENTS, fresh[:2], auth=moodle_login)
        assert status == 204

        status, stored = ralph_server.request("POST", STATEMENTS, fresh, auth=moodle_login)
        assert status == 200 and stored == ids[2:]
        assert es_count(es_stack, by_id) == 3

        changed = json.loads(json.dumps(fresh[0]))
        changed["verb"] = {"id": VERBS["completed"], "display": {"en": "completed"}}
        status, _ = ralph_server.request("POST", STATEMENTS, [changed], auth=moodle_login)
        assert status == 409

    def test_the_writer_user_cannot_create_other_indices(self, es_stack):
        """Least privilege: Ralph's ES user writes statements* only, into existing indices."""
        username, password = es_stack.login("t-es-ralph")
        status, body = es_stack.es.request("PUT", "/other", {}, user=username, password=password)
        assert status == 403, body
