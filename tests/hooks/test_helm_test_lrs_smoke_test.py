"""lrs_smoke_test.py, the program `helm test` runs: it posts through the real Ralph and
counts in the real Elasticsearch (TLS verified with the cluster's CA), using the
accounts the secrets hook generated."""

from __future__ import annotations

import pytest

from lastack.testing.services.hookfiles import run_hook
from tests.hooks.support import TEST_INDEX, assert_one_sentence_failure

pytestmark = pytest.mark.hooks


class TestLrsSmokeTest:
    """The program `helm test` runs, against the real data path."""

    def env(self, es_stack, ralph_server, moodle_login=None, reader_login=None) -> dict:
        # As the chart's test Pod: its own LRS account, whose target is the helm-test index.
        lrs_user, lrs_password = moodle_login or es_stack.login("t-lrs-helm-test")
        es_user, es_password = reader_login or es_stack.login("t-es-superset")
        return {
            "LRS_URL": f"{ralph_server.url}/xAPI", "LRS_USERNAME": lrs_user,
            "LRS_PASSWORD": lrs_password, "ES_URL": es_stack.es.url,
            "ES_USERNAME": es_user, "ES_PASSWORD": es_password,
            "ES_CA_FILE": str(es_stack.es.ca_file), "ES_INDEX": TEST_INDEX,
            "DEADLINE_SECONDS": "60",
        }

    def test_should_pass_through_ralph_into_elasticsearch(self, es_stack, ralph_server):
        result = run_hook("lrs_smoke_test", self.env(es_stack, ralph_server))
        assert result.returncode == 0, result.stderr
        assert "Elasticsearch counts the statement once" in result.stdout

    def test_should_name_a_rejected_lrs_account(self, es_stack, ralph_server):
        env = self.env(es_stack, ralph_server, moodle_login=("helm-test", "wrong-password"))
        result = run_hook("lrs_smoke_test", env)
        assert "Ralph rejected the helm-test LRS account" in assert_one_sentence_failure(result)

    def test_should_name_a_rejected_reader(self, es_stack, ralph_server):
        env = self.env(es_stack, ralph_server, reader_login=("la-stack-superset", "wrong"))
        result = run_hook("lrs_smoke_test", env)
        assert "rejected the reader user" in assert_one_sentence_failure(result)
