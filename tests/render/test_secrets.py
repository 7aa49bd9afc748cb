"""The secrets hook: the pre-install Job that generates every missing credential, its
config, its rights, and what the manifests therefore never carry."""

from __future__ import annotations

import json
import re

import jmespath
import pytest
import yaml

from lastack.chart.render import find, render_chart, render_manifest
from tests.helpers import dicts_in, requires_subcharts
from tests.render.support import (
    ES_URL,
    PROFILE_IDS,
    PROFILES,
    env_of,
    hook_annotations,
    restricted,
    secrets_config,
)

SECRETS_HOOK = [
    "templates/secrets/secrets-rbac.yaml",
    "templates/secrets/secrets-configmap.yaml",
    "templates/secrets/secrets-job.yaml",
]
SENSITIVE = re.compile(r"(PASSWORD|SECRET_KEY|TOKEN|HOSTS)$", re.IGNORECASE)


def literal_env(node: object) -> list[dict]:
    """Every container env entry with a literal `value`, anywhere in an object."""
    return [e for d in dicts_in(node) if isinstance(d.get("env"), list)
            for e in d["env"] if "value" in e]


def secrets_read(pod: dict) -> set[str]:
    """Every Secret a Pod spec reads: volumes, envFrom and env of every container."""
    return set(jmespath.search(
        "[volumes[].secret.secretName, volumes[].projected.sources[].secret.name,"
        " [containers, initContainers][][].envFrom[].secretRef.name,"
        " [containers, initContainers][][].env[].valueFrom.secretKeyRef.name][][]",
        pod) or []) - {None}


class TestSecretsHook:
    """The pre-install/pre-upgrade Job that generates every missing credential."""

    def test_should_order_its_objects_before_the_job(self, helm):
        objects = render_chart(helm=helm, show_only=SECRETS_HOOK)
        job = find(objects, "Job")[0]
        phases, job_weight, policy = hook_annotations(job)
        assert phases == "pre-install,pre-upgrade"
        assert policy == "before-hook-creation,hook-succeeded"
        for obj in objects:
            if obj is job:
                continue
            obj_phases, weight, obj_policy = hook_annotations(obj)
            assert obj_phases == phases
            assert weight < job_weight, f"{obj['kind']} must exist before the Job runs"
            assert obj_policy == policy

    def test_should_run_the_secrets_program_as_restricted_non_root(self, helm):
        job = find(render_chart(helm=helm, show_only=SECRETS_HOOK), "Job")[0]
        pod = jmespath.search("spec.template.spec", job)
        restricted(pod)
        assert jmespath.search("containers[0].command", pod) == [
            "python3", "/hooks/release_secrets.py"]
        assert pod["serviceAccountName"] == "la-stack-secrets-hook"
        assert jmespath.search("spec.activeDeadlineSeconds", job) > 600

    def test_should_mount_the_programs_and_the_config(self, helm):
        objects = render_chart(helm=helm, show_only=SECRETS_HOOK)
        cm = find(objects, "ConfigMap", "la-stack-secrets-hook")[0]
        assert {"release_secrets.py", "hooklib.py", "secrets.json"} <= set(cm["data"])
        env = env_of(find(objects, "Job")[0]["spec"]["template"]["spec"]["containers"][0])
        assert env["CONFIG_FILE"] == "/hooks/secrets.json"

    def test_should_describe_every_credential_in_its_config(self, helm):
        config = secrets_config(render_chart(helm=helm, show_only=SECRETS_HOOK))
        def roles(secret: str) -> list[str]:
            return jmespath.search(f"esUsers[?secret=='{secret}'].roles | [0]", config)

        def account(username: str) -> dict:
            return jmespath.search(f"lrsAccounts[?username=='{username}'] | [0]", config)

        assert roles("la-stack-es-ralph") == ["la_stack_statements_writer"]
        assert roles("la-stack-es-superset") == ["la_stack_statements_reader"]
        assert roles("la-stack-es-bootstrap") == ["la_stack_index_bootstrap"]
        assert account("moodle")["scopes"] == ["statements/write", "statements/read/mine"]
        assert account("moodle")["agent"] == {"mbox": "mailto:moodle@example.org"}
        assert account("admin")["scopes"] == ["all"]
        assert config["ralph"] == {
            "envSecret": "la-stack-ralph-es", "authSecret": "la-stack-ralph-auth",
            "esUrl": ES_URL, "esUser": "la-stack-es-ralph", "deployments": ["la-stack-ralph"]}

    def test_should_label_generated_secrets_as_not_helms(self, helm):
        labels = secrets_config(render_chart(helm=helm, show_only=SECRETS_HOOK))["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "la-stack-secrets-hook"

    @pytest.mark.parametrize("release", ["la-stack", "lrs"])
    def test_should_keep_generated_secrets_out_of_argo_cd_tracking(self, helm, release):
        """Argo CD's label tracking claims what carries app.kubernetes.io/instance: <app>;
        the generated Secrets say their release another way, and are never pruned."""
        objects = render_chart(helm=helm, name=release, show_only=SECRETS_HOOK,
                               values={"moodle": {"mariadb": {"auth": {
                                   "existingSecret": f"{release}-mariadb"}}}})
        config = json.loads(find(objects, "ConfigMap")[0]["data"]["secrets.json"])
        assert "app.kubernetes.io/instance" not in jmespath.search("labels", config)
        assert jmespath.search('labels."la-stack.io/release"', config) == release
        assert jmespath.search("staleLabels", config) == ["app.kubernetes.io/instance"]
        assert jmespath.search('annotations."argocd.argoproj.io/compare-options"',
                               config) == "IgnoreExtraneous"
        assert jmespath.search('annotations."argocd.argoproj.io/sync-options"',
                               config) == "Prune=false"

    def test_should_grant_only_create_and_named_get_update(self, helm):
        objects = render_chart(helm=helm, show_only=SECRETS_HOOK)
        role = find(objects, "Role")[0]
        verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
        assert verbs == {"create", "get", "update", "patch"}
        for rule in role["rules"]:
            expected = ["deployments"] if rule["verbs"] == ["patch"] else ["secrets"]
            assert rule["resources"] == expected
            if rule["verbs"] != ["create"]:
                assert rule["resourceNames"], "get/update/patch are limited to named objects"
        # Update: the derived Secrets, and the generated ones (their labels and annotations
        # are kept current); never a Secret the user provides.
        config = secrets_config(objects)
        generated = {e["secret"] for key in ("esUsers", "lrsAccounts", "generic")
                     for e in config[key] if not e["existingSecret"]}
        update = next(r for r in role["rules"] if r["verbs"] == ["update"])
        assert set(update["resourceNames"]) == generated | {
            "la-stack-ralph-auth", "la-stack-ralph-es"}

    def test_should_read_an_existing_secret_instead_of_generating(self, helm):
        values = {"elasticsearch": {"users": {"writer": {"existingSecret": "my-writer"}}},
                  "eck-elasticsearch": {"auth": {"fileRealm": [
                      {"secretName": "my-writer"}, {"secretName": "la-stack-es-superset"},
                      {"secretName": "la-stack-es-bootstrap"}]}}}
        objects = render_chart(helm=helm, values=values, show_only=SECRETS_HOOK)
        config = secrets_config(objects)
        writer = next(u for u in config["esUsers"] if u["username"] == "la-stack-ralph")
        assert writer["existingSecret"] == "my-writer"
        # The hook finds the writer by its entry's `secret`, and reads it from existingSecret.
        assert jmespath.search("ralph.esUser", config) == writer["secret"] != "my-writer"
        rules = find(objects, "Role")[0]["rules"]
        get = next(r for r in rules if r["verbs"] == ["get"])
        assert "my-writer" in get["resourceNames"]
        update = next(r for r in rules if r["verbs"] == ["update"])
        assert "my-writer" not in update["resourceNames"]

    def test_should_not_render_when_nothing_needs_credentials(self, helm):
        values = {"eck-elasticsearch": {"enabled": False}, "ralph": {"enabled": False},
                  "moodle": {"enabled": False}, "superset": {"enabled": False},
                  "valkey": {"enabled": False}}
        objects = render_chart(helm=helm, values=values)
        assert not [o for o in objects if "secrets-hook" in jmespath.search("metadata.name", o)]


@requires_subcharts("ralph")
class TestRolloutRights:
    """The secrets hook may patch exactly the Deployments that read a Secret it derives."""

    HOOK = "[?metadata.labels.\"app.kubernetes.io/component\"=='secrets-hook']"

    def objects(self, helm, name="la-stack", values=None) -> list[dict]:
        values = {"moodle": {"mariadb": {"auth": {"existingSecret": f"{name}-mariadb"}}},
                  **(values or {})}
        return render_chart(helm=helm, name=name, values=values,
                            subcharts=["ralph", "moodle", "eck-elasticsearch"])

    def config(self, objects: list[dict]) -> dict:
        (cm,) = jmespath.search(f"{self.HOOK} | [?kind=='ConfigMap']", objects)
        return json.loads(jmespath.search('data."secrets.json"', cm))

    def readers(self, objects: list[dict], config: dict) -> set[str]:
        derived = set(jmespath.search("ralph.[envSecret, authSecret]", config))
        return {jmespath.search("metadata.name", d) for d in find(objects, "Deployment")
                if secrets_read(jmespath.search("spec.template.spec", d)) & derived}

    def patch_rules(self, objects: list[dict]) -> list[dict]:
        return jmespath.search(
            f"{self.HOOK} | [?kind=='Role'].rules[] | [?verbs==['patch']]", objects)

    @pytest.mark.parametrize("release", ["la-stack", "lrs"])
    def test_should_patch_only_the_deployments_reading_a_derived_secret(self, helm, release):
        objects = self.objects(helm, release)
        config = self.config(objects)
        readers = self.readers(objects, config)
        assert readers == {f"{release}-ralph"}
        (rule,) = self.patch_rules(objects)
        assert rule["apiGroups"] == ["apps"]
        assert set(rule["resourceNames"]) == readers
        assert set(jmespath.search("ralph.deployments", config)) == readers

    def test_should_follow_the_ralph_charts_fullname_override(self, helm):
        objects = self.objects(helm, values={"ralph": {"fullnameOverride": "lrs-api"}})
        readers = self.readers(objects, self.config(objects))
        assert readers == {"lrs-api"}
        assert self.patch_rules(objects)[0]["resourceNames"] == ["lrs-api"]

    def test_should_patch_nothing_without_ralph(self, helm):
        objects = render_chart(helm=helm, values={"ralph": {"enabled": False}},
                               show_only=SECRETS_HOOK)
        assert self.patch_rules(objects) == []


class TestNoCredentialInManifests:
    """Nothing the chart renders (our templates) carries a credential; Argo CD-safe."""

    @pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
    def test_should_render_no_password_or_hash(self, helm, profile):
        files = [profile] if profile else []
        for obj in render_chart(helm=helm, values_files=files, subcharts=()):
            if obj["kind"] == "Secret":
                assert obj["metadata"]["name"] == "la-stack-es-roles", "only roles.yml"
            assert not re.search(r"\$2[aby]\$\d\d\$", yaml.safe_dump(obj)), "no bcrypt hash"
            for env in literal_env(obj):
                assert not SENSITIVE.search(env["name"]), f"{env['name']} must come from a Secret"

    def test_should_render_identically_twice(self, helm):
        first = render_manifest(helm=helm, use_cache=False, subcharts=())
        assert first == render_manifest(helm=helm, use_cache=False, subcharts=())
