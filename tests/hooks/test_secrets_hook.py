"""release_secrets.py, run as the hook Job runs it, against the Kubernetes API stand-in.

The stand-in (kube_standin.py) serves the Secret endpoints on loopback until the live tier
provides a real API server: bearer token, GET 200/404, POST 201/409 AlreadyExists, PUT with
resourceVersion (409 Conflict when stale), LIST/PATCH/DELETE forbidden, plus races and
outages on demand. What is checked: sources are created once and never modified, provided
Secrets are only read, Ralph's derived Secrets change only when their inputs change, races
are resolved in favour of the other writer, and every failure is one sentence.
"""

from __future__ import annotations

import base64
import json
import re
import string

import bcrypt
import pytest

from tests.hooks.conftest import (
    assert_one_sentence_failure,
    kube_env,
    ralph_python,
    run_hook,
    stack_config,
)
from tests.hooks.kube_standin import KubeStandIn

pytestmark = pytest.mark.hooks
ES_URL = "https://la-stack-es-http.la-stack.svc:9200"
DIGEST = "la-stack.io/inputs-sha256"
LRS_SOURCES = ("t-lrs-moodle", "t-lrs-admin", "t-lrs-dashboards", "t-lrs-helm-test",
               "t-lrs-rolled")
SOURCES = ("t-es-superset", "t-es-bootstrap", *LRS_SOURCES)


def config(**changes):
    """The session's chart-shaped config, without the provided Secret unless asked."""
    result = stack_config(ES_URL)
    result["esUsers"][0]["existingSecret"] = ""
    result.update(changes)
    return result


def run(kube: KubeStandIn, tmp_path, cfg=None, **env):
    return run_hook("release_secrets", {**kube_env(kube, cfg or config(), tmp_path), **env})


def snapshot(kube: KubeStandIn):
    return json.loads(json.dumps(kube.secrets))


def test_first_run_creates_every_secret_with_the_right_shape(kube, tmp_path):
    result = run(kube, tmp_path)
    assert result.returncode == 0, result.stderr
    assert set(kube.secrets) == {
        "t-es-ralph",
        *SOURCES,
        "t-superset",
        "t-ralph-env",
        "t-ralph-auth",
    }
    for name in ("t-es-ralph", "t-es-superset", "t-es-bootstrap"):
        assert kube.secrets[name]["type"] == "kubernetes.io/basic-auth"
        assert set(kube.decoded(name)) == {"username", "password", "roles"}
    assert kube.decoded("t-es-ralph")["roles"] == "la_stack_statements_writer"
    assert kube.decoded("t-lrs-moodle")["username"] == "moodle"
    assert set(kube.decoded("t-lrs-moodle")) == {"username", "password"}
    generic = kube.decoded("t-superset")
    assert kube.secrets["t-superset"]["type"] == "Opaque"
    assert {key: len(value) for key, value in generic.items()} == {
        "SUPERSET_SECRET_KEY": 64, "LA_STACK_ADMIN_PASSWORD": 24, "REDIS_PASSWORD": 32}
    url_safe = set(string.ascii_letters + string.digits + "-_")
    for name in SOURCES:
        password = kube.decoded(name)["password"]
        assert len(password) >= 6 and set(password) <= url_safe
    for body in kube.secrets.values():
        assert body["metadata"]["labels"]["app.kubernetes.io/part-of"] == "la-stack"
    # Only named GET/POST/PUT calls: the Role needs no list, patch or delete.
    assert {method for method, _ in kube.calls} <= {"GET", "POST"}
    assert all(re.search(r"/secrets(/[a-z0-9.-]+)?$", path) for _, path in kube.calls)
    assert not [c for c in kube.calls if c[0] == "GET" and c[1].endswith("/secrets")]
    assert "Secret t-es-ralph: created" in result.stdout


def earlier_release_config() -> dict:
    """The config as versions before the Argo CD fix rendered it: the release's instance
    label, no Argo CD annotations."""
    cfg = config()
    cfg["labels"] = {"app.kubernetes.io/part-of": "la-stack", "app.kubernetes.io/instance": "t",
                     "app.kubernetes.io/managed-by": "la-stack-secrets-hook"}
    del cfg["annotations"], cfg["staleLabels"]
    return cfg


class TestArgoCdMetadata:
    """Generated Secrets are not tracked as the Application's and are never pruned."""

    def test_should_give_every_generated_secret_the_configured_metadata(self, kube, tmp_path):
        cfg = config()
        assert run(kube, tmp_path, cfg).returncode == 0
        for name, body in kube.secrets.items():
            meta = body["metadata"]
            assert cfg["labels"].items() <= meta["labels"].items(), name
            assert not set(cfg["staleLabels"]) & set(meta["labels"]), name
            assert cfg["annotations"].items() <= meta["annotations"].items(), name

    def test_should_fix_an_earlier_releases_secrets_without_touching_their_data(
            self, kube, tmp_path):
        assert run(kube, tmp_path, earlier_release_config()).returncode == 0
        before = snapshot(kube)
        cfg = config()
        result = run(kube, tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert set(kube.secrets) == set(before)
        for name, body in kube.secrets.items():
            assert body["data"] == before[name]["data"], f"{name} changed its data"
            meta = body["metadata"]
            assert "app.kubernetes.io/instance" not in meta["labels"], name
            assert meta["labels"]["la-stack.io/release"] == cfg["labels"]["la-stack.io/release"]
            assert cfg["annotations"].items() <= meta["annotations"].items(), name
        # The derived Secrets keep their digest, so Ralph's bcrypt hashes did not rotate.
        for name in ("t-ralph-env", "t-ralph-auth"):
            assert (kube.secrets[name]["metadata"]["annotations"][DIGEST]
                    == before[name]["metadata"]["annotations"][DIGEST])
        assert "labels and annotations brought up to date" in result.stdout
        kube.calls.clear()
        assert run(kube, tmp_path, cfg).returncode == 0
        assert kube.writes() == []

    def test_should_leave_the_metadata_of_a_secret_it_did_not_make(self, kube, tmp_path):
        kube.put_secret("t-lrs-admin", {"username": "admin", "password": "users-own"},
                        "kubernetes.io/basic-auth")
        kube.secrets["t-lrs-admin"]["metadata"]["labels"] = {"app.kubernetes.io/instance": "t"}
        before = snapshot(kube)["t-lrs-admin"]
        assert run(kube, tmp_path).returncode == 0
        assert kube.secrets["t-lrs-admin"] == before


class TestRenamedCredentials:
    """Earlier versions named some generated Secrets `la-stack-…` for every release; an
    upgrade that now names them after the release must not generate new credentials."""

    def renamed(self):
        """The config of this version, and the earlier one's Superset Secret in the cluster."""
        cfg = config()
        cfg["generic"][0] = {**cfg["generic"][0], "secret": "t-superset-renamed", "formerly": {
            "secret": "t-superset", "key": "supersetWiring.credentialsSecret"}}
        return cfg

    def test_should_stop_before_writing_and_name_the_value(self, kube, tmp_path):
        assert run(kube, tmp_path, earlier_release_config()).returncode == 0
        before = snapshot(kube)
        kube.calls.clear()
        result = run(kube, tmp_path, self.renamed())
        assert_one_sentence_failure(result)
        assert ("set supersetWiring.credentialsSecret to t-superset to keep its credentials"
                in result.stderr)
        assert kube.writes() == [] and snapshot(kube) == before

    def test_should_go_on_when_the_old_name_is_another_releases(self, kube, tmp_path):
        assert run(kube, tmp_path).returncode == 0
        kube.secrets["t-superset"]["metadata"]["labels"]["la-stack.io/release"] = "other"
        result = run(kube, tmp_path, self.renamed())
        assert result.returncode == 0, result.stderr
        assert set(kube.decoded("t-superset-renamed")) == {
            "SUPERSET_SECRET_KEY", "LA_STACK_ADMIN_PASSWORD", "REDIS_PASSWORD"}

    def test_should_go_on_once_the_new_name_exists(self, kube, tmp_path):
        assert run(kube, tmp_path, earlier_release_config()).returncode == 0
        kube.put_secret("t-superset-renamed", kube.decoded("t-superset"), "Opaque")
        before = snapshot(kube)["t-superset-renamed"]["data"]
        result = run(kube, tmp_path, self.renamed())
        assert result.returncode == 0, result.stderr
        assert kube.secrets["t-superset-renamed"]["data"] == before


def test_derived_secrets_hold_ralphs_values(kube, tmp_path):
    assert run(kube, tmp_path).returncode == 0
    writer = kube.decoded("t-es-ralph")
    hosts = kube.decoded("t-ralph-env")["RALPH_BACKENDS__LRS__ES__HOSTS"]
    assert (
        hosts == f"https://la-stack-ralph:{writer['password']}@la-stack-es-http.la-stack.svc:9200"
    )
    entries = json.loads(kube.decoded("t-ralph-auth")["auth.json"])
    accounts = config()["lrsAccounts"]
    assert [e["username"] for e in entries] == [a["username"] for a in accounts]
    for entry, source in zip(entries, LRS_SOURCES, strict=True):
        assert bcrypt.checkpw(kube.decoded(source)["password"].encode(), entry["hash"].encode())
    assert entries[0]["agent"] == {"mbox": "mailto:moodle@la-stack.example.org"}
    # Ralph's per-account target: only where the config names one.
    assert [e.get("target") for e in entries] == [a.get("target") for a in accounts]
    for name in ("t-ralph-env", "t-ralph-auth"):
        assert re.fullmatch(r"[0-9a-f]{64}", kube.secrets[name]["metadata"]["annotations"][DIGEST])


def test_a_second_run_writes_nothing(kube, tmp_path):
    assert run(kube, tmp_path).returncode == 0
    before = snapshot(kube)
    kube.calls.clear()
    result = run(kube, tmp_path)
    assert result.returncode == 0, result.stderr
    assert kube.writes() == []
    assert snapshot(kube) == before  # same passwords, same bcrypt hashes
    assert "Secret t-ralph-env: unchanged" in result.stdout
    assert "Secret t-ralph-auth: unchanged" in result.stdout


def test_an_existing_source_is_never_modified_and_is_what_ralph_gets(kube, tmp_path):
    kube.put_secret(
        "t-lrs-moodle",
        {"username": "moodle-legacy", "password": "kept-password", "note": "mine"},
        "kubernetes.io/basic-auth",
    )
    before = snapshot(kube)["t-lrs-moodle"]
    assert run(kube, tmp_path).returncode == 0
    assert kube.secrets["t-lrs-moodle"] == before
    assert not [c for c in kube.writes() if c[1].endswith("/t-lrs-moodle")]
    moodle = json.loads(kube.decoded("t-ralph-auth")["auth.json"])[0]
    assert moodle["username"] == "moodle-legacy"
    assert bcrypt.checkpw(b"kept-password", moodle["hash"].encode())


def test_existing_secret_is_read_and_nothing_is_generated_for_it(kube, tmp_path):
    kube.put_secret("byo-es", {"username": "ralph-byo", "password": "p@ss:w/rd"})
    cfg = config()
    cfg["esUsers"][0]["existingSecret"] = "byo-es"
    result = run(kube, tmp_path, cfg)
    assert result.returncode == 0, result.stderr
    assert "t-es-ralph" not in kube.secrets
    assert not [c for c in kube.writes() if "byo-es" in c[1]]
    hosts = kube.decoded("t-ralph-env")["RALPH_BACKENDS__LRS__ES__HOSTS"]
    assert hosts.startswith("https://ralph-byo:p%40ss%3Aw%2Frd@")
    assert "provided (existingSecret)" in result.stdout


def test_a_provided_secret_missing_a_key_is_one_sentence(kube, tmp_path):
    kube.put_secret("byo-superset", {"SUPERSET_SECRET_KEY": "x" * 64,
                                     "LA_STACK_ADMIN_PASSWORD": "y" * 24})
    cfg = config()
    cfg["generic"][0]["existingSecret"] = "byo-superset"
    result = run(kube, tmp_path, cfg)
    assert_one_sentence_failure(result, "byo-superset", "REDIS_PASSWORD")


def test_an_absent_provided_secret_is_one_sentence(kube, tmp_path):
    cfg = config()
    cfg["lrsAccounts"][1]["existingSecret"] = "nowhere"
    assert_one_sentence_failure(run(kube, tmp_path, cfg), "nowhere", "does not exist")


def test_derived_secrets_change_only_with_their_inputs(kube, tmp_path):
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


def test_a_derived_secret_not_made_by_the_hook_is_not_overwritten(kube, tmp_path):
    kube.put_secret("t-ralph-auth", {"auth.json": "[]"})
    before = snapshot(kube)["t-ralph-auth"]
    result = run(kube, tmp_path)
    assert_one_sentence_failure(result, "t-ralph-auth", DIGEST)
    assert kube.secrets["t-ralph-auth"] == before


def test_a_create_race_keeps_the_other_writers_secret(kube, tmp_path):
    theirs = {
        "username": base64.b64encode(b"moodle").decode(),
        "password": base64.b64encode(b"their-password").decode(),
    }
    kube.race_create["t-lrs-moodle"] = {"type": "kubernetes.io/basic-auth", "data": theirs}
    result = run(kube, tmp_path)
    assert result.returncode == 0, result.stderr
    assert kube.decoded("t-lrs-moodle")["password"] == "their-password"
    moodle = json.loads(kube.decoded("t-ralph-auth")["auth.json"])[0]
    assert bcrypt.checkpw(b"their-password", moodle["hash"].encode())
    assert "created meanwhile by someone else" in result.stdout


def test_an_update_conflict_is_re_read_and_retried(kube, tmp_path):
    assert run(kube, tmp_path).returncode == 0
    kube.race_update.add("t-ralph-env")
    moved = config()
    moved["ralph"]["esUrl"] = "https://elsewhere:9200"
    result = run(kube, tmp_path, moved)
    assert result.returncode == 0, result.stderr
    puts = [c for c in kube.calls if c[0] == "PUT" and c[1].endswith("/t-ralph-env")]
    assert len(puts) == 2  # the stale one (409), then the one after re-reading
    assert "elsewhere" in kube.decoded("t-ralph-env")["RALPH_BACKENDS__LRS__ES__HOSTS"]


def test_a_transient_outage_is_waited_out(kube, tmp_path):
    kube.unavailable = 3
    result = run(kube, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("waiting:") == 3


def test_rbac_refusal_is_one_sentence(kube, tmp_path):
    kube.forbid.add(("get", "t-lrs-admin"))
    line = assert_one_sentence_failure(run(kube, tmp_path), "t-lrs-admin", "403")
    assert "may not get" in line


def test_a_bad_token_is_one_sentence(kube, tmp_path):
    env = kube_env(kube, config(), tmp_path)
    (tmp_path / "token").write_text("expired\n")
    assert_one_sentence_failure(run_hook("release_secrets", env), "401")


def test_an_unreachable_api_gives_up_at_the_deadline(kube, tmp_path):
    result = run(kube, tmp_path, K8S_API_URL="http://127.0.0.1:9", DEADLINE_SECONDS="3")
    assert_one_sentence_failure(result, "gave up", "DEADLINE_SECONDS")
    assert "waiting:" in result.stdout  # it retried until the deadline


def test_an_invalid_config_is_one_sentence(kube, tmp_path):
    cfg = config()
    cfg["lrsAccounts"][0]["scopes"] = ["example_scope"]
    assert_one_sentence_failure(run(kube, tmp_path, cfg), "example_scope")
    (tmp_path / "broken.json").write_text("{")
    result = run(kube, tmp_path, CONFIG_FILE=str(tmp_path / "broken.json"))
    assert_one_sentence_failure(result, "not valid JSON")
    assert_one_sentence_failure(run_hook("release_secrets", {}), "CONFIG_FILE")
    assert kube.secrets == {}


def test_it_runs_with_the_hook_images_python_and_bcrypt(kube, tmp_path):
    """The Job runs in Ralph's image: its interpreter and its bcrypt (4.1) must do."""
    env = kube_env(kube, config(), tmp_path)
    result = run_hook("release_secrets", env, python=ralph_python())
    assert result.returncode == 0, result.stderr
    entries = json.loads(kube.decoded("t-ralph-auth")["auth.json"])
    assert bcrypt.checkpw(
        kube.decoded("t-lrs-admin")["password"].encode(), entries[1]["hash"].encode()
    )


RESTARTED_AT = "la-stack.io/restartedAt"
PENDING = "la-stack.io/rollout-pending"


class TestRollout:
    """A rewritten derived Secret rolls exactly the Deployments that read it, once."""

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
