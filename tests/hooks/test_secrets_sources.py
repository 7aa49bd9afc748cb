"""release_secrets.py, run as the hook Job runs it, against the Kubernetes API stand-in.

The stand-in (kube_standin.py) serves the Secret endpoints on loopback until the live tier
provides a real API server: bearer token, GET 200/404, POST 201/409 AlreadyExists, PUT with
resourceVersion (409 Conflict when stale), LIST/PATCH/DELETE forbidden, plus races and
outages on demand. Here: sources are created once and never modified, provided Secrets are
only read, races are resolved in favour of the other writer, every failure is one sentence,
and the config the chart renders is fully applied (the derived Secrets and the metadata:
test_secrets_derived.py, test_secrets_metadata.py). The config is the chart's render
(tests/hooks/support.py, stack_config).
"""

from __future__ import annotations

import base64
import json
import re
import string

import bcrypt
import pytest

from lastack.testing.services.hookfiles import run_hook
from tests.hooks.secrets_support import config, generated, run, snapshot, sources
from tests.hooks.support import (
    account_of,
    assert_one_sentence_failure,
    entry,
    kube_env,
    ralph_python,
    rendered_secrets_config,
)

pytestmark = pytest.mark.hooks


class TestReleaseSecrets:
    """Source Secrets: created once, never modified, provided ones only read; every failure
    one sentence."""

    def test_first_run_creates_every_secret_with_the_right_shape(self, kube, tmp_path):
        cfg = config()
        result = run(kube, tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert set(kube.secrets) == generated(cfg)
        for name in ("t-es-ralph", "t-es-superset", "t-es-bootstrap"):
            assert kube.secrets[name]["type"] == "kubernetes.io/basic-auth"
            assert set(kube.decoded(name)) == {"username", "password", "roles"}
        assert kube.decoded("t-es-ralph")["roles"] == "la_stack_statements_writer"
        assert kube.decoded("t-lrs-moodle")["username"] == "moodle"
        assert set(kube.decoded("t-lrs-moodle")) == {"username", "password"}
        generic = kube.decoded("t-superset")
        assert kube.secrets["t-superset"]["type"] == "Opaque"
        assert {key: len(value) for key, value in generic.items()} == (
            entry(cfg, "generic", "t-superset")["keys"])
        url_safe = set(string.ascii_letters + string.digits + "-_")
        for name in sources(cfg):
            password = kube.decoded(name)["password"]
            assert len(password) >= 6 and set(password) <= url_safe
        for body in kube.secrets.values():
            assert body["metadata"]["labels"]["app.kubernetes.io/part-of"] == "la-stack"
        # Only named GET/POST/PUT calls: the Role needs no list, patch or delete.
        assert {method for method, _ in kube.calls} <= {"GET", "POST"}
        assert all(re.search(r"/secrets(/[a-z0-9.-]+)?$", path) for _, path in kube.calls)
        assert not [c for c in kube.calls if c[0] == "GET" and c[1].endswith("/secrets")]
        assert "Secret t-es-ralph: created" in result.stdout

    def test_an_existing_source_is_never_modified_and_is_what_ralph_gets(self, kube, tmp_path):
        kube.put_secret(
            "t-lrs-moodle",
            {"username": "moodle-legacy", "password": "kept-password", "note": "mine"},
            "kubernetes.io/basic-auth",
        )
        before = snapshot(kube)["t-lrs-moodle"]
        assert run(kube, tmp_path).returncode == 0
        assert kube.secrets["t-lrs-moodle"] == before
        assert not [c for c in kube.writes() if c[1].endswith("/t-lrs-moodle")]
        moodle = account_of(json.loads(kube.decoded("t-ralph-auth")["auth.json"]),
                            "moodle-legacy")
        assert bcrypt.checkpw(b"kept-password", moodle["hash"].encode())

    def test_existing_secret_is_read_and_nothing_is_generated_for_it(self, kube, tmp_path):
        kube.put_secret("byo-es", {"username": "ralph-byo", "password": "p@ss:w/rd"})
        cfg = config()
        entry(cfg, "esUsers", "t-es-ralph")["existingSecret"] = "byo-es"
        result = run(kube, tmp_path, cfg)
        assert result.returncode == 0, result.stderr
        assert "t-es-ralph" not in kube.secrets
        assert not [c for c in kube.writes() if "byo-es" in c[1]]
        hosts = kube.decoded("t-ralph-env")["RALPH_BACKENDS__LRS__ES__HOSTS"]
        assert hosts.startswith("https://ralph-byo:p%40ss%3Aw%2Frd@")
        assert "provided (existingSecret)" in result.stdout

    def test_a_provided_secret_missing_a_key_is_one_sentence(self, kube, tmp_path):
        cfg = config()
        superset = entry(cfg, "generic", "t-superset")
        kube.put_secret("byo-superset", {key: "x" * length for key, length
                                         in superset["keys"].items() if key != "REDIS_PASSWORD"})
        superset["existingSecret"] = "byo-superset"
        result = run(kube, tmp_path, cfg)
        assert_one_sentence_failure(result, "byo-superset", "REDIS_PASSWORD")

    def test_an_absent_provided_secret_is_one_sentence(self, kube, tmp_path):
        cfg = config()
        cfg["lrsAccounts"][1]["existingSecret"] = "nowhere"
        assert_one_sentence_failure(run(kube, tmp_path, cfg), "nowhere", "does not exist")

    def test_a_create_race_keeps_the_other_writers_secret(self, kube, tmp_path):
        theirs = {
            "username": base64.b64encode(b"moodle").decode(),
            "password": base64.b64encode(b"their-password").decode(),
        }
        kube.race_create["t-lrs-moodle"] = {"type": "kubernetes.io/basic-auth", "data": theirs}
        result = run(kube, tmp_path)
        assert result.returncode == 0, result.stderr
        assert kube.decoded("t-lrs-moodle")["password"] == "their-password"
        moodle = account_of(json.loads(kube.decoded("t-ralph-auth")["auth.json"]), "moodle")
        assert bcrypt.checkpw(b"their-password", moodle["hash"].encode())
        assert "created meanwhile by someone else" in result.stdout

    def test_a_transient_outage_is_waited_out(self, kube, tmp_path):
        kube.unavailable = 3
        result = run(kube, tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("waiting:") == 3

    def test_rbac_refusal_is_one_sentence(self, kube, tmp_path):
        kube.forbid.add(("get", "t-lrs-admin"))
        line = assert_one_sentence_failure(run(kube, tmp_path), "t-lrs-admin", "403")
        assert "may not get" in line

    def test_a_bad_token_is_one_sentence(self, kube, tmp_path):
        env = kube_env(kube, config(), tmp_path)
        (tmp_path / "token").write_text("expired\n")
        assert_one_sentence_failure(run_hook("release_secrets", env), "401")

    def test_an_unreachable_api_gives_up_at_the_deadline(self, kube, tmp_path):
        result = run(kube, tmp_path, K8S_API_URL="http://127.0.0.1:9", DEADLINE_SECONDS="3")
        assert_one_sentence_failure(result, "gave up", "DEADLINE_SECONDS")
        assert "waiting:" in result.stdout  # it retried until the deadline

    def test_an_invalid_config_is_one_sentence(self, kube, tmp_path):
        cfg = config()
        cfg["lrsAccounts"][0]["scopes"] = ["example_scope"]
        assert_one_sentence_failure(run(kube, tmp_path, cfg), "example_scope")
        (tmp_path / "broken.json").write_text("{")
        result = run(kube, tmp_path, CONFIG_FILE=str(tmp_path / "broken.json"))
        assert_one_sentence_failure(result, "not valid JSON")
        assert_one_sentence_failure(run_hook("release_secrets", {}), "CONFIG_FILE")
        assert kube.secrets == {}

    def test_it_runs_with_the_hook_images_python_and_bcrypt(self, kube, tmp_path):
        """The Job runs in Ralph's image: its interpreter and its bcrypt (4.1) must do."""
        env = kube_env(kube, config(), tmp_path)
        result = run_hook("release_secrets", env, python=ralph_python())
        assert result.returncode == 0, result.stderr
        entries = json.loads(kube.decoded("t-ralph-auth")["auth.json"])
        admin = account_of(entries, "admin")
        assert bcrypt.checkpw(kube.decoded("t-lrs-admin")["password"].encode(),
                              admin["hash"].encode())

    # The chart's own secrets.json is a config the program accepts and fully applies.

    def test_should_create_every_secret_the_chart_describes(self, kube, tmp_path):
        config = rendered_secrets_config()
        result = run_hook("release_secrets", kube_env(kube, config, tmp_path))
        assert result.returncode == 0, result.stderr
        expected = {e["secret"] for key in ("esUsers", "lrsAccounts", "generic")
                    for e in config[key]}
        expected |= {config["ralph"]["envSecret"], config["ralph"]["authSecret"]}
        assert expected <= set(kube.secrets)
        hosts = kube.decoded(config["ralph"]["envSecret"])["RALPH_BACKENDS__LRS__ES__HOSTS"]
        assert hosts.startswith("https://la-stack-ralph:")
        assert hosts.endswith("@la-stack-es-http.la-stack.svc:9200")
        moodle_db = kube.decoded("la-stack-mariadb")
        assert set(moodle_db) == {"mariadb-root-password", "mariadb-password"}
