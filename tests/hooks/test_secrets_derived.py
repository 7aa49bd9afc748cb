"""release_secrets.py on Ralph's two derived Secrets: their values, rewritten only when
their inputs change, and the Deployments that read them rolled once."""

from __future__ import annotations

import json
import re

import bcrypt
import pytest

from tests.hooks.secrets_support import DIGEST, config, run, snapshot
from tests.hooks.support import account_of, assert_one_sentence_failure

pytestmark = pytest.mark.hooks


RESTARTED_AT = "la-stack.io/restartedAt"


PENDING = "la-stack.io/rollout-pending"


class TestReleaseSecrets:
    """Ralph's env and auth.json Secrets, and their readers."""

    def test_derived_secrets_hold_ralphs_values(self, kube, tmp_path):
        assert run(kube, tmp_path).returncode == 0
        writer = kube.decoded("t-es-ralph")
        hosts = kube.decoded("t-ralph-env")["RALPH_BACKENDS__LRS__ES__HOSTS"]
        assert (
            hosts == f"https://la-stack-ralph:{writer['password']}@la-stack-es-http.la-stack.svc:9200"
        )
        entries = json.loads(kube.decoded("t-ralph-auth")["auth.json"])
        accounts = config()["lrsAccounts"]
        assert [e["username"] for e in entries] == [a["username"] for a in accounts]
        for entry, source in zip(entries, [a["secret"] for a in accounts], strict=True):
            assert bcrypt.checkpw(kube.decoded(source)["password"].encode(), entry["hash"].encode())
        assert account_of(entries, "moodle")["agent"] == account_of(accounts, "moodle")["agent"]
        # Ralph's per-account target: only where the config names one.
        assert [e.get("target") for e in entries] == [a.get("target") for a in accounts]
        for name in ("t-ralph-env", "t-ralph-auth"):
            digest = kube.secrets[name]["metadata"]["annotations"][DIGEST]
            assert re.fullmatch(r"[0-9a-f]{64}", digest)

    def test_a_second_run_writes_nothing(self, kube, tmp_path):
        assert run(kube, tmp_path).returncode == 0
        before = snapshot(kube)
        kube.calls.clear()
        result = run(kube, tmp_path)
        assert result.returncode == 0, result.stderr
        assert kube.writes() == []
        assert snapshot(kube) == before  # same passwords, same bcrypt hashes
        assert "Secret t-ralph-env: unchanged" in result.stdout
        assert "Secret t-ralph-auth: unchanged" in result.stdout

    def test_derived_secrets_change_only_with_their_inputs(self, kube, tmp_path):
        assert run(kube, tmp_path).returncode == 0
        auth_before = snapshot(kube)["t-ralph-auth"]
        env_version = kube.version("t-ralph-env")
        moved = config()
        moved["ralph"]["esUrl"] = "https://other-es-http.la-stack.svc:9200"
        result = run(kube, tmp_path, moved)
        assert result.returncode == 0, result.stderr
        assert "Secret t-ralph-env: updated" in result.stdout
        assert kube.version("t-ralph-env") != env_version
        assert "other-es-http" in kube.decoded("t-ralph-env")["RALPH_BACKENDS__LRS__ES__HOSTS"]
        assert kube.secrets["t-ralph-auth"] == auth_before  # its hashes did not rotate

        widened = moved
        widened["lrsAccounts"][0]["scopes"] = ["statements/write", "statements/read"]
        result = run(kube, tmp_path, widened)
        assert "Secret t-ralph-auth: updated" in result.stdout
        entries = json.loads(kube.decoded("t-ralph-auth")["auth.json"])
        assert entries[0]["scopes"] == ["statements/write", "statements/read"]

    def test_a_derived_secret_not_made_by_the_hook_is_not_overwritten(self, kube, tmp_path):
        kube.put_secret("t-ralph-auth", {"auth.json": "[]"})
        before = snapshot(kube)["t-ralph-auth"]
        result = run(kube, tmp_path)
        assert_one_sentence_failure(result, "t-ralph-auth", DIGEST)
        assert kube.secrets["t-ralph-auth"] == before

    def test_an_update_conflict_is_re_read_and_retried(self, kube, tmp_path):
        assert run(kube, tmp_path).returncode == 0
        kube.race_update.add("t-ralph-env")
        moved = config()
        moved["ralph"]["esUrl"] = "https://elsewhere:9200"
        result = run(kube, tmp_path, moved)
        assert result.returncode == 0, result.stderr
        puts = [c for c in kube.calls if c[0] == "PUT" and c[1].endswith("/t-ralph-env")]
        assert len(puts) == 2  # the stale one (409), then the one after re-reading
        assert "elsewhere" in kube.decoded("t-ralph-env")["RALPH_BACKENDS__LRS__ES__HOSTS"]

    # A rewritten derived Secret rolls exactly the Deployments that read it, once.

    def cfg(self, **ralph):
        result = config()
        result["ralph"].update({"deployments": ["t-ralph"], **ralph})
        return result

    def installed(self, kube, tmp_path):
        kube.put_deployment("t-ralph")
        kube.put_deployment("t-superset")
        assert run(kube, tmp_path, self.cfg()).returncode == 0
        kube.calls.clear()

    def patches(self, kube):
        return [c for c in kube.calls if c[0] == "PATCH"]

    def with_new_account(self):
        result = self.cfg()
        result["lrsAccounts"].append(
            {"secret": "t-lrs-campus", "username": "campus", "scopes": ["statements/write"],
             "agent": {"mbox": "mailto:campus@la-stack.example.org"}, "existingSecret": ""})
        return result

    def test_should_roll_nothing_on_install(self, kube, tmp_path):
        self.installed(kube, tmp_path)
        assert RESTARTED_AT not in kube.pod_template_annotations("t-ralph")
        assert kube.deployments["t-ralph"]["metadata"]["generation"] == 1

    def test_should_roll_nothing_when_nothing_changed(self, kube, tmp_path):
        self.installed(kube, tmp_path)
        result = run(kube, tmp_path, self.cfg())
        assert result.returncode == 0, result.stderr
        assert self.patches(kube) == [] and kube.writes() == []
        assert kube.pod_template_annotations("t-ralph") == {}

    def test_should_roll_ralph_and_only_ralph_for_a_new_account(self, kube, tmp_path):
        self.installed(kube, tmp_path)
        superset_before = json.loads(json.dumps(kube.deployments["t-superset"]))
        result = run(kube, tmp_path, self.with_new_account())
        assert result.returncode == 0, result.stderr
        assert "Secret t-ralph-auth: updated" in result.stdout
        restarted = kube.pod_template_annotations("t-ralph")[RESTARTED_AT]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", restarted)
        assert kube.deployments["t-ralph"]["metadata"]["generation"] == 2
        assert kube.deployments["t-superset"] == superset_before
        assert [c[1].rsplit("/", 1)[1] for c in self.patches(kube)] == ["t-ralph"]
        assert PENDING not in kube.secrets["t-ralph-auth"]["metadata"]["annotations"]

        kube.calls.clear()
        again = run(kube, tmp_path, self.with_new_account())
        assert again.returncode == 0, again.stderr
        assert self.patches(kube) == [], "the same inputs roll nothing a second time"

    def test_should_roll_ralph_when_its_elasticsearch_hosts_change(self, kube, tmp_path):
        self.installed(kube, tmp_path)
        result = run(kube, tmp_path, self.cfg(esUrl="https://other-es-http.la-stack.svc:9200"))
        assert result.returncode == 0, result.stderr
        assert "Deployment t-ralph: rolled, t-ralph-env changed" in result.stdout
        assert RESTARTED_AT in kube.pod_template_annotations("t-ralph")

    def test_should_roll_on_the_next_run_when_the_patch_failed(self, kube, tmp_path):
        self.installed(kube, tmp_path)
        kube.forbid.add(("patch", "t-ralph"))
        failed = run(kube, tmp_path, self.with_new_account())
        assert_one_sentence_failure(failed, "may not patch Deployment t-ralph", "403")
        assert kube.secrets["t-ralph-auth"]["metadata"]["annotations"][PENDING] == "true"

        kube.forbid.clear()
        result = run(kube, tmp_path, self.with_new_account())
        assert result.returncode == 0, result.stderr
        assert "Secret t-ralph-auth: unchanged" in result.stdout
        assert RESTARTED_AT in kube.pod_template_annotations("t-ralph")
        assert PENDING not in kube.secrets["t-ralph-auth"]["metadata"]["annotations"]

    def test_should_say_so_when_the_deployment_does_not_exist_yet(self, kube, tmp_path):
        assert run(kube, tmp_path, self.cfg()).returncode == 0
        result = run(kube, tmp_path, self.with_new_account())
        assert result.returncode == 0, result.stderr
        assert "Deployment t-ralph: does not exist yet, nothing to roll" in result.stdout
        assert PENDING not in kube.secrets["t-ralph-auth"]["metadata"]["annotations"]

    def test_should_refuse_a_deployment_name_that_is_not_one(self, kube, tmp_path):
        result = run(kube, tmp_path, self.cfg(deployments=["Ralph Deployment"]))
        assert_one_sentence_failure(result, "ralph.deployments")
