"""An existing Moodle (`moodle.enabled: false`): its LRS account and the setup script it runs."""

from __future__ import annotations

import base64
import json
import stat
import subprocess
from pathlib import Path

import jmespath
import pytest
import yaml

from lastack.chart.render import HelmFailedError, find, render_chart
from lastack.paths import CHART_DIR, VALUES_DIR
from tests.helpers import mentions_key
from tests.render.support import secrets_config

MOODLE_FILES = CHART_DIR / "files" / "moodle"
CHART_VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
EXTERNAL = {"moodle": {"enabled": False},
            "lrs": {"sources": {"campus": {"mbox": "mailto:moodle@campus.example.org"}},
                    "ingress": {"enabled": True, "host": "lrs.example.org",
                                "tls": {"secretName": "lrs-tls"}}}}
PRODUCTION = VALUES_DIR / "production.yaml"
# Secrets that ECK writes; every other Secret a Pod names must be one the hook generates.
ECK_SECRETS = {"la-stack-es-http-certs-public", "la-stack-es-elastic-user"}


def generated_secrets(config: dict) -> set[str]:
    entries = [e for key in ("esUsers", "lrsAccounts", "generic") for e in config[key]]
    names = {e["existingSecret"] or e["secret"] for e in entries}
    return names | {config["ralph"]["envSecret"], config["ralph"]["authSecret"]}


def secrets_pods_name(objects: list[dict]) -> set[str]:
    pods = [o["spec"]["template"]["spec"] if o["kind"] == "Job" else o["spec"]
            for o in objects if o["kind"] in {"Job", "Pod"}]
    names = jmespath.search(
        "[].[containers[].env[].valueFrom.secretKeyRef.name, volumes[].secret.secretName][][]",
        pods)
    return set(names)

STANDIN_KUBECTL = """#!/bin/sh
# Stand-in for kubectl: answers the one read the setup script makes, records its arguments.
echo "$*" >> "$KUBECTL_CALLS"
[ "$*" = "-n la-stack get secret la-stack-lrs-campus -o jsonpath={.data.password}" ] || exit 1
printf %s "$LRS_PASSWORD_B64"
"""


class TestExistingMoodle:
    """`moodle.enabled: false` and a Moodle outside the cluster named in `lrs.sources`."""

    @pytest.fixture(params=["values", "production"])
    def objects(self, request, helm) -> list[dict]:
        if request.param == "production":
            return render_chart(helm=helm, values_files=[PRODUCTION], subcharts=())
        return render_chart(helm=helm, values=EXTERNAL, subcharts=())

    def test_should_generate_the_sources_lrs_account(self, objects):
        accounts = {a["username"]: a for a in secrets_config(objects)["lrsAccounts"]}
        assert accounts["campus"] == {
            "secret": "la-stack-lrs-campus", "username": "campus", "existingSecret": "",
            "scopes": ["statements/write", "statements/read/mine"],
            "agent": {"mbox": "mailto:moodle@campus.example.org"}}
        role = find(objects, "Role", "la-stack-secrets-hook")[0]
        get = jmespath.search("rules[?verbs == ['get']].resourceNames[]", role)
        assert "la-stack-lrs-campus" in get

    def test_should_leave_no_moodle_object_behind(self, objects):
        config = secrets_config(objects)
        named = {e["secret"] for key in ("lrsAccounts", "generic") for e in config[key]}
        assert not {"la-stack-lrs-moodle", "la-stack-moodle", "la-stack-mariadb"} & named
        assert not find(objects, "ConfigMap", "la-stack-moodle-xapi")
        assert not [o for o in objects if "moodle" in o["metadata"]["name"]
                    and o["kind"] in {"Secret", "NetworkPolicy", "Deployment", "Service"}]

    def test_should_name_only_secrets_that_will_exist(self, objects):
        expected = generated_secrets(secrets_config(objects)) | ECK_SECRETS
        assert secrets_pods_name(objects) <= expected

    def test_should_expose_ralph_over_tls(self, objects):
        ingress = find(objects, "Ingress", "la-stack-lrs")[0]
        assert jmespath.search("spec.tls[0].hosts", ingress) == ["lrs.example.org"]
        assert jmespath.search("spec.rules[0].http.paths[0].path", ingress) == "/xAPI"

    def test_should_point_the_setup_at_the_public_endpoint(self, objects):
        setup = find(objects, "ConfigMap", "la-stack-moodle-setup")[0]
        assert set(setup["data"]) == {"campus.sh"}
        script = jmespath.search('data."campus.sh"', setup)
        assert '"endpoint": "https://lrs.example.org/xAPI/"' in script

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"lrs": {"sources": {"admin": {"mbox": "mailto:a@campus.example.org"}}}},
             "lrs.sources.admin.username"),
            ({"lrs": {"sources": {"campus": {}}}}, "lrs.sources.campus"),
            ({"lrs": {"sources": {"Campus": {"mbox": "mailto:a@campus.example.org"}}}},
             "lrs.sources"),
        ],
        ids=["username-taken", "no-mbox", "bad-name"],
    )
    def test_should_fail_naming_the_key(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values={**values, "moodle": {"enabled": False}},
                         validate=False, subcharts=())
        assert mentions_key(err.value.stderr, key)


class TestMoodleSetupScript:
    """The script NOTES print writes what the Moodle administrator runs, password from the
    Secret (through a stand-in kubectl: only a cluster has the Secret)."""

    def run(self, helm, tmp_path: Path, password: str) -> subprocess.CompletedProcess:
        setup = render_chart(helm=helm, values=EXTERNAL,
                             show_only=["templates/moodle/setup-configmap.yaml"])[0]
        (tmp_path / "bin").mkdir()
        kubectl = tmp_path / "bin" / "kubectl"
        kubectl.write_text(STANDIN_KUBECTL)
        kubectl.chmod(0o755)
        env = {"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
               "KUBECTL_CALLS": str(tmp_path / "calls"),
               "LRS_PASSWORD_B64": base64.b64encode(password.encode()).decode()}
        return subprocess.run(["sh", "-c", setup["data"]["campus.sh"]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=30, check=False)

    def test_should_write_the_chart_programs_config_and_password(self, helm, tmp_path):
        result = self.run(helm, tmp_path, "pa$$ word\\n")
        assert result.returncode == 0, result.stderr
        folder = tmp_path / "moodle-setup-campus"
        for program in ("xapi_wiring.php", "xapi_setup.php"):
            assert (folder / program).read_bytes() == (MOODLE_FILES / program).read_bytes()
        setup = json.loads((folder / "setup.json").read_text())
        assert setup["endpoint"] == "https://lrs.example.org/xAPI/"
        assert setup["username"] == "campus"
        assert setup["plugin"]["treeSha256"] == CHART_VALUES["logstoreXapi"]["plugin"]["treeSha256"]
        assert (folder / "lrs-password").read_text() == "pa$$ word\\n"
        assert stat.S_IMODE((folder / "lrs-password").stat().st_mode) == 0o600
        assert "xapi_setup.php --moodle=" in result.stdout

    def test_should_fail_in_one_sentence_without_the_secret(self, helm, tmp_path):
        result = self.run(helm, tmp_path, "")
        assert result.returncode != 0
        assert result.stderr.strip().splitlines() == [
            "error: the LRS password could not be read from Secret la-stack-lrs-campus in "
            "namespace la-stack."]
