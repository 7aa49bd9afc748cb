"""The data path: Elasticsearch users/roles, the hooks that wire them, Ralph's settings."""

from __future__ import annotations

import json
import re

import jmespath
import pytest
import yaml

from lastack.paths import VALUES_DIR
from lastack.render import HelmFailedError, find, render_chart, render_manifest
from tests.conftest import mentions_key, requires_subcharts

SECRETS_HOOK = [
    "templates/hooks/secrets-rbac.yaml",
    "templates/hooks/secrets-configmap.yaml",
    "templates/hooks/secrets-job.yaml",
]
ES_URL = "https://la-stack-es-http.la-stack.svc:9200"
CA_SECRET = "la-stack-es-http-certs-public"
PROFILES = [None, VALUES_DIR / "demo.yaml", VALUES_DIR / "production.yaml"]
PROFILE_IDS = ["defaults", "demo", "production"]


def secrets_config(objects: list[dict]) -> dict:
    cm = find(objects, "ConfigMap", "la-stack-secrets-hook")[0]
    return json.loads(cm["data"]["secrets.json"])


def hook_annotations(obj: dict) -> tuple[str, int, str]:
    ann = obj["metadata"]["annotations"]
    return ann["helm.sh/hook"], int(ann["helm.sh/hook-weight"]), ann["helm.sh/hook-delete-policy"]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


SENSITIVE = re.compile(r"(PASSWORD|SECRET_KEY|TOKEN|HOSTS)$", re.IGNORECASE)


def literal_env(node: object) -> list[dict]:
    """Every container env entry with a literal `value`, anywhere in an object."""
    found: list[dict] = []
    if isinstance(node, dict):
        if "env" in node and isinstance(node["env"], list):
            found += [e for e in node["env"] if "value" in e]
        for child in node.values():
            found += literal_env(child)
    elif isinstance(node, list):
        for child in node:
            found += literal_env(child)
    return found


def restricted(pod_spec: dict) -> None:
    """Assert a Pod spec passes Pod Security `restricted` on the fields we own."""
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    for container in pod_spec["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]


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
        pod = job["spec"]["template"]["spec"]
        restricted(pod)
        assert pod["containers"][0]["command"] == ["python3", "/hooks/secrets.py"]
        assert pod["serviceAccountName"] == "la-stack-secrets-hook"
        assert job["spec"]["activeDeadlineSeconds"] > 600

    def test_should_mount_the_programs_and_the_config(self, helm):
        objects = render_chart(helm=helm, show_only=SECRETS_HOOK)
        cm = find(objects, "ConfigMap", "la-stack-secrets-hook")[0]
        assert {"secrets.py", "hooklib.py", "secrets.json"} <= set(cm["data"])
        env = env_of(find(objects, "Job")[0]["spec"]["template"]["spec"]["containers"][0])
        assert env["CONFIG_FILE"] == "/hooks/secrets.json"

    def test_should_describe_every_credential_in_its_config(self, helm):
        config = secrets_config(render_chart(helm=helm, show_only=SECRETS_HOOK))
        users = {u["secret"]: u for u in config["esUsers"]}
        assert users["la-stack-es-ralph"]["roles"] == ["la_stack_statements_writer"]
        assert users["la-stack-es-superset"]["roles"] == ["la_stack_statements_reader"]
        assert users["la-stack-es-bootstrap"]["roles"] == ["la_stack_index_bootstrap"]
        accounts = {a["username"]: a for a in config["lrsAccounts"]}
        assert accounts["moodle"]["scopes"] == ["statements/write", "statements/read/mine"]
        assert accounts["moodle"]["agent"] == {"mbox": "mailto:moodle@example.org"}
        assert accounts["admin"]["scopes"] == ["all"]
        assert config["ralph"] == {
            "envSecret": "la-stack-ralph-es", "authSecret": "la-stack-ralph-auth",
            "esUrl": ES_URL, "esUser": "la-stack-es-ralph"}

    def test_should_label_generated_secrets_as_not_helms(self, helm):
        labels = secrets_config(render_chart(helm=helm, show_only=SECRETS_HOOK))["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "la-stack-secrets-hook"
        assert labels["app.kubernetes.io/instance"] == "la-stack"

    def test_should_grant_only_create_and_named_get_update(self, helm):
        role = find(render_chart(helm=helm, show_only=SECRETS_HOOK), "Role")[0]
        verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
        assert verbs == {"create", "get", "update"}
        for rule in role["rules"]:
            assert rule["resources"] == ["secrets"]
            if rule["verbs"] != ["create"]:
                assert rule["resourceNames"], "get/update are limited to named Secrets"
        update = next(r for r in role["rules"] if r["verbs"] == ["update"])
        assert sorted(update["resourceNames"]) == ["la-stack-ralph-auth", "la-stack-ralph-es"]

    def test_should_read_an_existing_secret_instead_of_generating(self, helm):
        values = {"elasticsearch": {"users": {"writer": {"existingSecret": "my-writer"}}},
                  "eck-elasticsearch": {"auth": {"fileRealm": [
                      {"secretName": "my-writer"}, {"secretName": "la-stack-es-superset"},
                      {"secretName": "la-stack-es-bootstrap"}]}}}
        objects = render_chart(helm=helm, values=values, show_only=SECRETS_HOOK)
        config = secrets_config(objects)
        writer = next(u for u in config["esUsers"] if u["username"] == "la-stack-ralph")
        assert writer["existingSecret"] == "my-writer"
        assert config["ralph"]["esUser"] == "my-writer"
        get = next(r for r in find(objects, "Role")[0]["rules"] if r["verbs"] == ["get"])
        assert "my-writer" in get["resourceNames"]

    def test_should_not_render_when_nothing_needs_credentials(self, helm):
        values = {"eck-elasticsearch": {"enabled": False}, "ralph": {"enabled": False},
                  "moodle": {"enabled": False}, "superset": {"enabled": False}}
        objects = render_chart(helm=helm, values=values)
        assert not [o for o in objects if "secrets-hook" in o["metadata"]["name"]]


class TestIndexBootstrapHook:
    """The post-install/post-upgrade Job that installs the xAPI mapping and the index."""

    TEMPLATE = ["templates/elasticsearch/bootstrap-job.yaml"]

    def test_should_run_after_install_with_a_delete_policy(self, helm):
        job = render_chart(helm=helm, show_only=self.TEMPLATE)[0]
        phases, weight, policy = hook_annotations(job)
        assert phases == "post-install,post-upgrade"
        assert weight > 0
        assert policy == "before-hook-creation,hook-succeeded"

    def test_should_verify_tls_with_the_eck_ca(self, helm):
        pod = render_chart(helm=helm, show_only=self.TEMPLATE)[0]["spec"]["template"]["spec"]
        restricted(pod)
        env = env_of(pod["containers"][0])
        assert env["ES_URL"] == ES_URL
        ca_volume = next(v for v in pod["volumes"] if v["name"] == "es-ca")
        assert ca_volume["secret"]["secretName"] == CA_SECRET
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "es-ca")
        assert "subPath" not in mount, "a subPath mount would miss the yearly CA rotation"
        assert env["ES_CA_FILE"] == f"{mount['mountPath']}/ca.crt"

    def test_should_authenticate_as_the_bootstrap_user_from_its_secret(self, helm):
        pod = render_chart(helm=helm, show_only=self.TEMPLATE)[0]["spec"]["template"]["spec"]
        env = env_of(pod["containers"][0])
        assert env["ES_USERNAME"]["secretKeyRef"] == {"name": "la-stack-es-bootstrap",
                                                      "key": "username"}
        assert env["ES_PASSWORD"]["secretKeyRef"] == {"name": "la-stack-es-bootstrap",
                                                      "key": "password"}

    def test_should_ship_the_mapping_it_installs(self, helm):
        cm = render_chart(helm=helm, show_only=["templates/hooks/programs-configmap.yaml"])[0]
        template = json.loads(cm["data"]["statements-template.json"])
        assert "statements*" in json.dumps(template)
        assert "es_bootstrap.py" in cm["data"]

    def test_should_be_switchable_off(self, helm):
        values = {"elasticsearch": {"bootstrap": {"enabled": False}}}
        objects = render_chart(helm=helm, values=values, subcharts=())
        assert not find(objects, "Job", "la-stack-es-bootstrap")


class TestRalphEnvironment:
    """The env ConfigMap Ralph loads: Elasticsearch backend over verified TLS."""

    TEMPLATE = ["templates/ralph/env-configmap.yaml"]

    @pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
    def test_should_verify_certificates_with_the_mounted_ca(self, helm, profile):
        files = [profile] if profile else []
        data = render_chart(helm=helm, values_files=files, show_only=self.TEMPLATE)[0]["data"]
        assert data["RALPH_BACKENDS__LRS__ES__CLIENT_OPTIONS__verify_certs"] == "true"
        assert data["RALPH_BACKENDS__LRS__ES__CLIENT_OPTIONS__ca_certs"] == (
            "/usr/local/share/ca-certificates/ca.crt")
        assert data["RALPH_BACKENDS__LRS__ES__DEFAULT_INDEX"] == "statements"
        assert data["RALPH_LRS_RESTRICT_BY_SCOPES"] == "true"
        assert data["RALPH_LRS_RESTRICT_BY_AUTHORITY"] == "true"

    @pytest.mark.parametrize(("profile", "yellow"),
                             [(None, "true"), (VALUES_DIR / "production.yaml", "false")],
                             ids=["single-node", "three-nodes"])
    def test_should_allow_yellow_only_on_a_single_node(self, helm, profile, yellow):
        files = [profile] if profile else []
        data = render_chart(helm=helm, values_files=files, show_only=self.TEMPLATE)[0]["data"]
        assert data["RALPH_BACKENDS__LRS__ES__ALLOW_YELLOW_STATUS"] == yellow

    def test_should_let_users_decide_on_yellow(self, helm):
        values = {"lrs": {"backend": {"allowYellowStatus": False}}}
        data = render_chart(helm=helm, values=values, show_only=self.TEMPLATE)[0]["data"]
        assert data["RALPH_BACKENDS__LRS__ES__ALLOW_YELLOW_STATUS"] == "false"


class TestWiringPreflight:
    """Names the upstream charts cannot template are checked, with the key named."""

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"eck-elasticsearch": {"auth": {"fileRealm": [{"secretName": "other"}]}}},
             "eck-elasticsearch.auth.fileRealm"),
            ({"eck-elasticsearch": {"auth": {"roles": []}}}, "eck-elasticsearch.auth.roles"),
            ({"ralph": {"database": {"tls": {"certificatesSecret": "x"}}}},
             "ralph.database.tls"),
            ({"ralph": {"database": {"tls": {"enabled": False}}}}, "ralph.database.tls"),
            ({"eck-elasticsearch": {"fullnameOverride": "x" * 37}},
             "eck-elasticsearch.fullnameOverride"),
        ],
        ids=["user-not-in-realm", "roles-not-listed", "wrong-ca", "tls-off", "name-too-long"],
    )
    def test_should_fail_naming_the_key(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=values, validate=False)
        assert mentions_key(err.value.stderr, key)


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


@requires_subcharts("eck-elasticsearch")
class TestElasticsearchResource:
    """The Elasticsearch resource the eck-elasticsearch subchart renders from our values."""

    def es(self, helm, profile=None) -> dict:
        files = [profile] if profile else []
        objects = render_chart(helm=helm, values_files=files, subcharts=["eck-elasticsearch"])
        return find(objects, "Elasticsearch")[0]

    def test_should_be_named_so_that_services_and_ca_match(self, helm):
        assert self.es(helm)["metadata"]["name"] == "la-stack"

    def test_should_declare_the_file_realm_users_and_roles(self, helm):
        spec = self.es(helm)["spec"]
        realm = {s["secretName"] for s in spec["auth"]["fileRealm"]}
        assert realm == {"la-stack-es-ralph", "la-stack-es-superset", "la-stack-es-bootstrap"}
        assert spec["auth"]["roles"] == [{"secretName": "la-stack-es-roles"}]

    def test_should_run_an_8x_version(self, helm):
        assert self.es(helm)["spec"]["version"].startswith("8.")

    def test_should_keep_data_volumes_on_deletion(self, helm):
        assert self.es(helm)["spec"]["volumeClaimDeletePolicy"] == "DeleteOnScaledownOnly"

    def test_should_be_a_single_small_node_by_default(self, helm):
        node_sets = self.es(helm, VALUES_DIR / "demo.yaml")["spec"]["nodeSets"]
        assert sum(ns["count"] for ns in node_sets) == 1

    def test_should_have_the_production_shape(self, helm):
        spec = self.es(helm, VALUES_DIR / "production.yaml")["spec"]
        assert sum(ns["count"] for ns in spec["nodeSets"]) >= 3
        assert spec["podDisruptionBudget"]["spec"]["maxUnavailable"] == 1
        anti = jmespath.search(
            "nodeSets[0].podTemplate.spec.affinity.podAntiAffinity."
            "requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey", spec)
        assert anti == "kubernetes.io/hostname"


@requires_subcharts("ralph")
class TestRalphSubchartWiring:
    """Our values land in the upstream ralph chart's objects."""

    def deployment(self, helm) -> dict:
        objects = render_chart(helm=helm, subcharts=["ralph"])
        return find(objects, "Deployment", "la-stack-ralph")[0]

    def test_should_load_env_from_our_configmap_and_generated_secret(self, helm):
        container = self.deployment(helm)["spec"]["template"]["spec"]["containers"][0]
        refs = jmespath.search("envFrom[].[configMapRef.name, secretRef.name][]", container)
        assert [r for r in refs if r] == [
            "la-stack-ralph-lrs", "la-stack-ralph-env", "la-stack-ralph-es"]

    def test_should_mount_auth_json_and_the_whole_ca_secret(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["lrs-auth"]["secret"]["secretName"] == "la-stack-ralph-auth"
        assert volumes["db-certificates"]["secret"]["secretName"] == CA_SECRET
        mount = next(m for m in pod["containers"][0]["volumeMounts"]
                     if m["name"] == "db-certificates")
        assert mount["mountPath"] == "/usr/local/share/ca-certificates/"
        assert "subPath" not in mount

    def test_should_keep_the_logging_config_mounted(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["logging-config"]["configMap"]["name"] == "la-stack-ralph-logging"
        objects = render_chart(helm=helm, subcharts=["ralph"])
        assert find(objects, "ConfigMap", "la-stack-ralph-logging")

    def test_should_run_restricted(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        restricted(pod)

    def test_should_raise_the_ingress_body_size(self, helm):
        values = {"ralph": {"ingress": {"enabled": True}}}
        objects = render_chart(helm=helm, values=values, subcharts=["ralph"])
        ingress = find(objects, "Ingress")[0]
        size = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
        assert size == "16m"


class TestHelmTest:
    """`helm test` posts through Ralph and counts in Elasticsearch with generated accounts."""

    TEMPLATE = ["templates/tests/data-path-test.yaml"]

    def pod(self, helm) -> dict:
        return render_chart(helm=helm, show_only=self.TEMPLATE)[0]

    def test_should_be_a_test_hook(self, helm):
        annotations = self.pod(helm)["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "test"
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]

    def test_should_use_the_generated_accounts(self, helm):
        pod = self.pod(helm)["spec"]
        restricted(pod)
        env = env_of(pod["containers"][0])
        assert env["LRS_URL"] == "http://la-stack-ralph.la-stack.svc:8080/xAPI"
        assert env["LRS_PASSWORD"]["secretKeyRef"]["name"] == "la-stack-lrs-moodle"
        assert env["ES_PASSWORD"]["secretKeyRef"]["name"] == "la-stack-es-superset"
        assert env["ES_URL"] == ES_URL
        ca = next(v for v in pod["volumes"] if v["name"] == "es-ca")
        assert ca["secret"]["secretName"] == CA_SECRET

    def test_should_run_a_program_the_chart_ships(self, helm):
        cm = render_chart(helm=helm, show_only=["templates/hooks/programs-configmap.yaml"])[0]
        command = self.pod(helm)["spec"]["containers"][0]["command"]
        assert command[-1].removeprefix("/hooks/") in cm["data"]
