"""secrets_config.py and credentials.py, the pure logic of release_secrets.py: the config
contract, passwords and the Ralph values derived from credentials, digests.

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
from lastack.testing.services.hookfiles import import_hook
from tests.hooks.support import (
    ES_USER_SECRETS,
    SESSION_RELEASE,
    SESSION_VALUES,
    ralph_python,
    rendered_secrets_config,
    stack_config,
)

pytestmark = pytest.mark.hooks
credentials = import_hook("credentials")
secrets_config = import_hook("secrets_config")


CHART_VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
RESERVED = "p@ss:w/rd%?#[]&+= é"


def moodle_account(**changes):
    fields = {
        "secret": "s",
        "username": "moodle",
        "scopes": ("statements/write", "statements/read/mine"),
        "agent": {"mbox": "mailto:moodle@la-stack.example.org"},
    }
    fields.update(changes)
    return secrets_config.LrsAccount(**fields)


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


class TestReleaseSecrets:
    """The secrets hook's pure logic: what it derives and refuses."""

    def test_random_passwords_are_url_safe_long_and_distinct(self):
        passwords = {credentials.random_password() for _ in range(200)}
        assert len(passwords) == 200
        allowed = set(string.ascii_letters + string.digits + "-_")
        assert all(len(p) == 32 and set(p) <= allowed for p in passwords)
        assert len(credentials.random_password(6)) == 6
        with pytest.raises(ValueError):
            credentials.random_password(5)  # ECK refuses shorter file-realm passwords

    def test_hosts_get_url_encoded_credentials_that_decode_back(self):
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

    def test_bcrypt_hash_verifies_with_checkpw(self):
        hashed = credentials.bcrypt_hash(RESERVED, rounds=4)
        assert bcrypt.checkpw(RESERVED.encode(), hashed.encode())
        assert not bcrypt.checkpw(b"wrong", hashed.encode())

    def test_auth_json_lists_every_account_with_a_verifying_hash(self):
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
        with pytest.raises(secrets_config.ConfigError, match="share the username"):
            credentials.auth_json([accounts[0], accounts[0]], rounds=4)

    def test_auth_json_validates_against_ralphs_own_model(self):
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

    def test_inputs_digest_ignores_key_order_and_sees_every_change(self):
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

    def test_the_chart_shaped_config_parses(self):
        config = secrets_config.parse_config(stack_config())
        assert {(u.secret, u.existing_secret) for u in config.es_users} == {
            (secret, "") for secret in ES_USER_SECRETS.values()}
        moodle = next(a for a in config.lrs_accounts if a.username == "moodle")
        assert moodle.scopes == tuple(CHART_VALUES["lrs"]["accounts"]["moodle"]["scopes"])
        superset = next(g for g in config.generic if g.secret == "t-superset")
        assert superset.keys.items() >= {
            "SUPERSET_SECRET_KEY": 64, "LA_STACK_ADMIN_PASSWORD": 24, "REDIS_PASSWORD": 32}.items()
        assert config.ralph.es_user == ES_USER_SECRETS["writer"]

    def test_the_chart_shaped_config_parses_with_a_provided_writer_secret(self):
        values = copy.deepcopy(SESSION_VALUES)
        values["elasticsearch"]["users"]["writer"]["existingSecret"] = "my-ralph-es"
        values["eck-elasticsearch"]["auth"]["fileRealm"][0] = {"secretName": "my-ralph-es"}
        config = secrets_config.parse_config(rendered_secrets_config(values, SESSION_RELEASE))
        writer = next(u for u in config.es_users if u.existing_secret == "my-ralph-es")
        assert config.ralph.es_user == writer.secret
        minimal = secrets_config.parse_config({"labels": {secrets_config.OWNER_LABEL: "a-program"}})
        assert minimal.ralph is None and minimal.es_users == ()

    @pytest.mark.parametrize(
        ("config", "words"),
        [
            (broken(("esUsers", 1, "secret"), ""), "esUsers[1].secret"),
            (broken(("esUsers", 2, "secret"), "Bad_Name"), "not a valid Secret name"),
            (broken(("lrsAccounts", 0, "scopes"), ["example_scope"]), "example_scope"),
            (broken(("lrsAccounts", 0, "agent"), {"mbox": "mailto:a@b", "openid": "x:y"}),
             "exactly"),
            (broken(("lrsAccounts", 1, "agent"), {"mbox": "a@b"}), "mailto:"),
            (broken(("lrsAccounts", 1, "agent"), {"mbox": "mailto:a@la-stack.invalid"}),
             ".invalid"),
            (broken(("generic", 0, "keys"), {"REDIS_PASSWORD": 4}),
             "generic[0].keys.REDIS_PASSWORD"),
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
    def test_config_faults_are_named_in_one_sentence(self, config, words):
        with pytest.raises(secrets_config.ConfigError) as raised:
            secrets_config.parse_config(config)
        message = str(raised.value)
        assert words in message and message.endswith(".") and "\n" not in message

    def test_special_use_mail_domains_are_what_ralph_refuses(self):
        """Our config check and Ralph's auth.json model agree on which mbox domains fail."""
        ralph_python()
        addresses = ["a@la-stack.invalid", "a@m.local", "a@x.test", "a@la-stack.example.org"]
        result = ralph.run_python(
            "import json, sys\nfrom ralph.api.auth.basic import ServerUsersCredentials\n"
            "for mbox in json.load(sys.stdin):\n"
            "    entry = {'username': 'u', 'hash': 'h', 'scopes': ['all'],\n"
            "             'agent': {'mbox': mbox}}\n"
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
                secrets_config._agent({"mbox": f"mailto:{address}"}, "x")
                ours.append("ok")
            except secrets_config.ConfigError:
                ours.append("refused")
        assert ralph_says == ours == ["refused", "refused", "refused", "ok"]

    def test_the_charts_default_lrs_agents_pass_the_check(self):
        for name, account in CHART_VALUES["lrs"]["accounts"].items():
            secrets_config._agent({"mbox": account["mbox"]}, f"lrs.accounts.{name}")
