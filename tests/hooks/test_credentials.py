"""Pure logic of the hook programs: the secrets config contract, passwords, the Ralph values
derived from credentials, digests, backoff and the index template's digest.

auth.json is also validated by Ralph's own pydantic model, run in Ralph's venv.
"""

from __future__ import annotations

import copy
import json
import string
import urllib.parse

import bcrypt
import pytest
import yaml

from lastack.paths import CHART_DIR
from lastack.testing.services import ralph
from lastack.testing.services.hookfiles import TEMPLATE_FILE
from tests.hooks.conftest import hook_module, ralph_python, stack_config

pytestmark = pytest.mark.hooks
credentials = hook_module("credentials")
hooklib = hook_module("hooklib")
es_api = hook_module("es_api")

RESERVED = "p@ss:w/rd%?#[]&+= é"


def moodle_account(**changes):
    fields = {
        "secret": "s",
        "username": "moodle",
        "scopes": ("statements/write", "statements/read/mine"),
        "agent": {"mbox": "mailto:moodle@la-stack.example.org"},
    }
    fields.update(changes)
    return credentials.LrsAccount(**fields)


def test_random_passwords_are_url_safe_long_and_distinct():
    passwords = {credentials.random_password() for _ in range(200)}
    assert len(passwords) == 200
    allowed = set(string.ascii_letters + string.digits + "-_")
    assert all(len(p) == 32 and set(p) <= allowed for p in passwords)
    assert len(credentials.random_password(6)) == 6
    with pytest.raises(ValueError):
        credentials.random_password(5)  # ECK refuses shorter file-realm passwords


def test_hosts_get_url_encoded_credentials_that_decode_back():
    login = credentials.Credentials("la-stack:ralph", RESERVED)
    hosts = credentials.hosts_with_credentials(
        "https://es-es-http.ns.svc:9200,https://es2:9200/prefix", login
    )
    first, second = hosts.split(",")
    for url, host, port in ((first, "es-es-http.ns.svc", 9200), (second, "es2", 9200)):
        parts = urllib.parse.urlsplit(url)
        assert (parts.hostname, parts.port) == (host, port)
        assert urllib.parse.unquote(parts.username) == "la-stack:ralph"
        assert urllib.parse.unquote(parts.password) == RESERVED
    assert second.endswith("@es2:9200/prefix")
    assert "@" not in first.split("@")[0].replace("%40", "")


def test_bcrypt_hash_verifies_with_checkpw():
    hashed = credentials.bcrypt_hash(RESERVED, rounds=4)
    assert bcrypt.checkpw(RESERVED.encode(), hashed.encode())
    assert not bcrypt.checkpw(b"wrong", hashed.encode())


def test_auth_json_lists_every_account_with_a_verifying_hash():
    accounts = [
        (moodle_account(), credentials.Credentials("moodle", "pw-moodle")),
        (
            moodle_account(username="admin", scopes=("all",), agent={"mbox": "mailto:a@b.c"}),
            credentials.Credentials("admin", RESERVED),
        ),
    ]
    entries = json.loads(credentials.auth_json(accounts, rounds=4))
    assert [e["username"] for e in entries] == ["moodle", "admin"]
    assert entries[1]["scopes"] == ["all"] and entries[1]["agent"] == {"mbox": "mailto:a@b.c"}
    assert set(entries[0]) == {"username", "hash", "scopes", "agent"}
    assert bcrypt.checkpw(RESERVED.encode(), entries[1]["hash"].encode())
    with pytest.raises(credentials.ConfigError, match="share the username"):
        credentials.auth_json([accounts[0], accounts[0]], rounds=4)


def test_auth_json_validates_against_ralphs_own_model():
    python = ralph_python()
    account = moodle_account(agent={"account": {"homePage": "https://m.example", "name": "7"}})
    accounts = [(account, credentials.Credentials("moodle", "pw"))]
    document = credentials.auth_json(accounts, rounds=4)
    result = ralph.run_python(
        "import sys\nfrom ralph.api.auth.basic import ServerUsersCredentials\n"
        "users = ServerUsersCredentials.model_validate_json(sys.stdin.read())\n"
        "print(len(users.root), sorted(users[0].scopes.root))\n",
        stdin=document,
    )
    assert python and result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "['statements/read/mine',", "'statements/write']"]
    # Ralph's own model rejects the tutorial's "example_scope"; our config check does too.
    bad = document.replace("statements/write", "example_scope")
    rejected = ralph.run_python(
        "import sys\nfrom ralph.api.auth.basic import ServerUsersCredentials\n"
        "ServerUsersCredentials.model_validate_json(sys.stdin.read())\n",
        stdin=bad,
    )
    assert rejected.returncode != 0


def test_inputs_digest_ignores_key_order_and_sees_every_change():
    login = credentials.Credentials("u", "p")
    digest = credentials.inputs_digest(credentials.env_inputs("https://es:9200", login))
    same = credentials.inputs_digest({"password": "p", "username": "u", "esUrl": "https://es:9200"})
    assert digest == same and len(digest) == 64
    other = credentials.Credentials("u", "p2")
    assert digest != credentials.inputs_digest(credentials.env_inputs("https://es:9200", other))
    accounts = [(moodle_account(), login)]
    widened = [(moodle_account(scopes=("all",)), login)]
    assert credentials.inputs_digest(credentials.auth_inputs(accounts)) != (
        credentials.inputs_digest(credentials.auth_inputs(widened))
    )


def test_the_chart_shaped_config_parses():
    config = credentials.parse_config(stack_config("https://es-es-http.ns.svc:9200"))
    assert [(u.secret, u.existing_secret) for u in config.es_users] == [
        ("t-es-ralph", "my-ralph-es"), ("t-es-superset", ""), ("t-es-bootstrap", "")]
    assert config.lrs_accounts[0].scopes == ("statements/write", "statements/read/mine")
    assert config.generic[0].keys == {
        "SUPERSET_SECRET_KEY": 64, "LA_STACK_ADMIN_PASSWORD": 24, "REDIS_PASSWORD": 32}
    assert config.ralph.es_user == "t-es-ralph"
    minimal = credentials.parse_config({"labels": {credentials.OWNER_LABEL: "a-program"}})
    assert minimal.ralph is None and minimal.es_users == ()


def broken(path, value):
    config = copy.deepcopy(stack_config("https://es:9200"))
    target = config
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return config


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (broken(("esUsers", 1, "secret"), ""), "esUsers[1].secret"),
        (broken(("esUsers", 2, "secret"), "Bad_Name"), "not a valid Secret name"),
        (broken(("lrsAccounts", 0, "scopes"), ["example_scope"]), "example_scope"),
        (broken(("lrsAccounts", 0, "agent"), {"mbox": "mailto:a@b", "openid": "x:y"}), "exactly"),
        (broken(("lrsAccounts", 1, "agent"), {"mbox": "a@b"}), "mailto:"),
        (broken(("lrsAccounts", 1, "agent"), {"mbox": "mailto:a@la-stack.invalid"}), ".invalid"),
        (broken(("generic", 0, "keys"), {"REDIS_PASSWORD": 4}), "generic[0].keys.REDIS_PASSWORD"),
        (broken(("ralph", "esUser"), "nope"), "ralph.esUser"),
        (broken(("ralph", "esUrl"), "https://u:p@es:9200"), "must not carry credentials"),
        (broken(("ralph", "esUrl"), "es:9200"), "not an http(s) URL"),
        (broken(("generic", 0, "secret"), "t-es-superset"), "used by two entries"),
        (broken(("labels",), {"a": 1}), "labels"),
        (broken(("labels",), {"a": "b"}), "app.kubernetes.io/managed-by"),
        (broken(("staleLabels",), "app.kubernetes.io/instance"), "staleLabels"),
        (broken(("staleLabels",), ["app.kubernetes.io/part-of"]), "staleLabels"),
        (broken(("annotations",), {"a": 1}), "annotations"),
        (broken(("ralph", "authSecret"), "t-ralph-env"), "must differ"),
    ],
)
def test_config_faults_are_named_in_one_sentence(config, words):
    with pytest.raises(credentials.ConfigError) as raised:
        credentials.parse_config(config)
    message = str(raised.value)
    assert words in message and message.endswith(".") and "\n" not in message


def test_special_use_mail_domains_are_what_ralph_refuses():
    """Our config check and Ralph's auth.json model agree on which mbox domains fail."""
    ralph_python()
    addresses = ["a@la-stack.invalid", "a@m.local", "a@x.test", "a@la-stack.example.org"]
    result = ralph.run_python(
        "import json, sys\nfrom ralph.api.auth.basic import ServerUsersCredentials\n"
        "for mbox in json.load(sys.stdin):\n"
        "    entry = {'username': 'u', 'hash': 'h', 'scopes': ['all'], 'agent': {'mbox': mbox}}\n"
        "    try:\n"
        "        ServerUsersCredentials.model_validate([entry]); print('ok')\n"
        "    except Exception:\n"
        "        print('refused')\n",
        stdin=json.dumps([f"mailto:{a}" for a in addresses]),
    )
    ralph_says = result.stdout.split()
    ours = []
    for address in addresses:
        try:
            credentials._agent({"mbox": f"mailto:{address}"}, "x")
            ours.append("ok")
        except credentials.ConfigError:
            ours.append("refused")
    assert ralph_says == ours == ["refused", "refused", "refused", "ok"]


def test_the_charts_default_lrs_agents_pass_the_check():
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    for name, account in values["lrs"]["accounts"].items():
        credentials._agent({"mbox": account["mbox"]}, f"lrs.accounts.{name}")


def test_backoff_grows_is_capped_and_jittered():
    delay = hooklib.backoff_delays(first=1, cap=8)
    samples = [[delay(n) for _ in range(200)] for n in range(8)]
    assert all(0.2 <= d <= 8 for row in samples for d in row)
    assert max(samples[0]) <= 1 and max(samples[7]) > 4
    assert len({round(d, 3) for d in samples[5]}) > 50


def test_retry_gives_up_at_the_deadline_with_one_sentence():
    deadline = hooklib.Deadline(0.5)
    calls = []

    def flaky():
        calls.append(1)
        raise hooklib.TransientError("connection refused")

    with pytest.raises(hooklib.HookError) as raised:
        hooklib.retry(flaky, "waiting for the API", deadline, lambda n: 0.1)
    assert 2 <= len(calls) <= 10
    assert "gave up waiting for the API" in str(raised.value)
    assert "connection refused" in str(raised.value)


def test_deadline_reads_its_environment_variable(monkeypatch):
    monkeypatch.setenv("DEADLINE_SECONDS", "12")
    assert hooklib.Deadline.from_env().seconds == 12
    monkeypatch.setenv("DEADLINE_SECONDS", "soon")
    with pytest.raises(hooklib.HookError, match="DEADLINE_SECONDS"):
        hooklib.Deadline.from_env()


def test_template_digest_ignores_its_own_stamp():
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


def test_the_template_file_is_the_one_the_chart_ships():
    """The mappings only: the hook adds the index patterns and the values' settings."""
    template = json.loads(TEMPLATE_FILE.read_text())
    assert "index_patterns" not in template and "settings" not in template["template"]
    properties = template["template"]["mappings"]["properties"]
    assert properties["verb"]["properties"]["id"]["type"] == "keyword"
    assert properties["timestamp"] == {"type": "date"}
