"""The data path: Elasticsearch users/roles, the hooks that wire them, Ralph's settings."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import jmespath
import pytest
import yaml

from lastack.chart.render import HelmFailedError, find, render_chart, render_manifest
from lastack.paths import VALUES_DIR
from tests.helpers import mentions_key, requires_subcharts

SECRETS_HOOK = [
    "templates/hooks/secrets-rbac.yaml",
    "templates/hooks/secrets-configmap.yaml",
    "templates/hooks/secrets-job.yaml",
]
ES_URL = "https://la-stack-es-http.la-stack.svc:9200"
CA_SECRET = "la-stack-es-http-certs-public"
PROGRAMS = "templates/hooks/programs-configmap.yaml"
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


def dicts_in(node: object) -> Iterator[dict]:
    """Every mapping anywhere in a rendered object, the object itself first."""
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from dicts_in(child)
    elif isinstance(node, list):
        for child in node:
            yield from dicts_in(child)


def literal_env(node: object) -> list[dict]:
    """Every container env entry with a literal `value`, anywhere in an object."""
    return [e for d in dicts_in(node) if isinstance(d.get("env"), list)
            for e in d["env"] if "value" in e]


def flattened_fields(node: object) -> list[dict]:
    """Every mapping (field or dynamic template) of type flattened, anywhere in a body."""
    return [d for d in dicts_in(node) if d.get("type") == "flattened"]


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
        assert pod["containers"][0]["command"] == ["python3", "/hooks/release_secrets.py"]
        assert pod["serviceAccountName"] == "la-stack-secrets-hook"
        assert job["spec"]["activeDeadlineSeconds"] > 600

    def test_should_mount_the_programs_and_the_config(self, helm):
        objects = render_chart(helm=helm, show_only=SECRETS_HOOK)
        cm = find(objects, "ConfigMap", "la-stack-secrets-hook")[0]
        assert {"release_secrets.py", "hooklib.py", "secrets.json"} <= set(cm["data"])
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
        assert config["ralph"]["esUser"] == "my-writer"
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

    def test_should_ship_the_mapping_and_the_config_it_reads(self, helm):
        pod = render_chart(helm=helm, show_only=self.TEMPLATE)[0]["spec"]["template"]["spec"]
        env = env_of(pod["containers"][0])
        cm = render_chart(helm=helm, show_only=[PROGRAMS])[0]
        for key in ("CONFIG_FILE", "TEMPLATE_FILE", "SCRIPT_FILE"):
            assert env[key].removeprefix("/hooks/") in cm["data"], key
        assert "ctx.la_stack" in cm["data"]["statements-dimensions.painless"]
        assert "es_bootstrap.py" in cm["data"]
        mappings = json.loads(cm["data"]["statements-template.json"])
        assert jmespath.search("template.mappings.properties.verb.properties.id.type",
                               mappings) == "keyword"

    def test_should_index_the_derived_course_outside_the_source(self, helm):
        """What the ingest pipeline derives is indexed for SQL but never returned by Ralph."""
        cm = render_chart(helm=helm, show_only=[PROGRAMS])[0]
        mappings = json.loads(cm["data"]["statements-template.json"])["template"]["mappings"]
        assert "la_stack" in jmespath.search("_source.excludes", mappings)
        derived = jmespath.search("properties.la_stack.properties", mappings)
        assert jmespath.search("[course.properties.*.type, module.properties.*.type][]",
                               derived) == ["keyword"] * 5

    def test_should_cap_every_flattened_field_so_no_value_rejects_a_statement(self, helm):
        """Elasticsearch rejects a flattened value over 32,766 bytes unless the field sets
        ignore_above; 8191 UTF-16 units is the most that always fits."""
        cm = render_chart(helm=helm, show_only=[PROGRAMS])[0]
        fields = flattened_fields(json.loads(cm["data"]["statements-template.json"]))
        assert len(fields) > 10
        assert all(0 < f.get("ignore_above", 0) <= 8191 for f in fields), fields


class TestStatementsStore:
    """es-bootstrap.json: what the bootstrap hook makes of `elasticsearch.*`."""

    def config(self, helm, values=None) -> dict:
        (cm,) = render_chart(helm=helm, values=values, show_only=[PROGRAMS])
        return json.loads(cm["data"]["es-bootstrap.json"])

    def test_should_put_the_defaults_in_the_template_settings(self, helm):
        config = self.config(helm)
        assert jmespath.search("settings", config) == {"number_of_shards": 1,
                                                       "auto_expand_replicas": "0-1"}
        assert jmespath.search("lifecycle.rollover", config) == {
            "max_primary_shard_size": "50gb", "max_age": "30d"}
        assert jmespath.search("lifecycle.deleteAfter", config) == ""
        assert "snapshots" not in config

    def test_should_take_sizing_and_retention_from_values(self, helm):
        values = {"elasticsearch": {"statements": {
            "primaryShards": 3, "autoExpandReplicas": "1-2", "bestCompression": True,
            "rollover": {"maxPrimaryShardSize": "30gb", "maxAge": "7d"},
            "deleteAfter": "1825d"}}}
        config = self.config(helm, values)
        assert config["settings"] == {"number_of_shards": 3, "auto_expand_replicas": "1-2",
                                      "codec": "best_compression"}
        assert config["lifecycle"] == {"rollover": {"max_primary_shard_size": "30gb",
                                                    "max_age": "7d"}, "deleteAfter": "1825d"}

    def test_should_wire_one_alias_to_ralph_superset_and_the_hook(self, helm):
        values = {"elasticsearch": {"index": "statements_site"}}
        objects = render_chart(helm=helm, values=values, subcharts=())
        config = json.loads(find(objects, "ConfigMap", "la-stack-hook-programs")[0]["data"][
            "es-bootstrap.json"])
        ralph = find(objects, "ConfigMap", "la-stack-ralph-env")[0]["data"]
        wiring = json.loads(find(objects, "ConfigMap", "la-stack-superset-wiring")[0]["data"][
            "wiring.json"])
        assert config["alias"] == ralph["RALPH_BACKENDS__LRS__ES__DEFAULT_INDEX"] == \
            wiring["index"] == "statements_site"
        assert config["testIndex"] == "statements_site.helm-test"

    @pytest.mark.parametrize("index", ["xapi", "Statements", "statements.old"])
    def test_should_refuse_an_alias_the_roles_do_not_grant(self, helm, index):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values={"elasticsearch": {"index": index}})
        assert mentions_key(err.value.stderr, "elasticsearch.index")

    def test_should_register_the_snapshot_repository_and_policy(self, helm):
        snapshots = {"enabled": True, "repository": {
            "name": "campus", "type": "s3", "settings": {"bucket": "la", "base_path": "prod"}},
            "policy": {"name": "nightly", "schedule": "0 0 2 * * ?",
                       "retention": {"expireAfter": "60d", "minCount": 3, "maxCount": 90}}}
        config = self.config(helm, {"elasticsearch": {"snapshots": snapshots}})
        assert config["snapshots"] == {"repository": snapshots["repository"],
                                       "policy": snapshots["policy"]}

    def test_should_take_repository_credentials_only_from_the_keystore(self, helm):
        """An access key in the repository's settings would land in a ConfigMap."""
        snapshots = {"enabled": True, "repository": {"settings": {
            "bucket": "la", "access_key": "AKIA-not-here"}}}
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values={"elasticsearch": {"snapshots": snapshots}})
        assert "elasticsearch.snapshots.repository.settings.access_key" in err.value.stderr
        assert "eck-elasticsearch.secureSettings" in err.value.stderr

    def test_should_need_repository_settings_when_snapshots_are_on(self, helm):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values={"elasticsearch": {"snapshots": {"enabled": True}}})
        assert mentions_key(err.value.stderr, "elasticsearch.snapshots.repository.settings")

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

    @pytest.mark.parametrize("profile", PROFILES, ids=PROFILE_IDS)
    def test_should_allow_yellow_whatever_the_node_count(self, helm, profile):
        # Ralph's liveness probe is its heartbeat: an ECK rolling restart turns a cluster of
        # several nodes yellow, which must not restart every Ralph Pod.
        files = [profile] if profile else []
        data = render_chart(helm=helm, values_files=files, show_only=self.TEMPLATE)[0]["data"]
        assert data["RALPH_BACKENDS__LRS__ES__ALLOW_YELLOW_STATUS"] == "true"

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

    def test_should_refuse_production_selectors_naming_another_cluster(self, helm):
        """values/production.yaml keeps Elasticsearch nodes apart by the cluster-name label;
        renamed, the rule would select nothing, and the chart says which rule."""
        tls = {"certificatesSecret": "lrs-es-http-certs-public"}
        renamed = {"eck-elasticsearch": {"fullnameOverride": "lrs"}, "superset": {"enabled": False},
                   "ralph": {"database": {"tls": tls}}}
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=renamed, validate=False,
                         values_files=[VALUES_DIR / "production.yaml"])
        assert mentions_key(err.value.stderr, "eck-elasticsearch.nodeSets[0].podTemplate.spec."
                            "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuring"
                            "Execution[0]")
        assert '"lrs"' in err.value.stderr

    def test_should_refuse_a_budget_selecting_another_cluster(self, helm):
        budget = {"spec": {"maxUnavailable": 1, "selector": {"matchLabels": {
            "elasticsearch.k8s.elastic.co/cluster-name": "other"}}}}
        values = {"eck-elasticsearch": {"podDisruptionBudget": budget, "nodeSets": [
            {"name": "default", "count": 3}]}}
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=values, validate=False)
        assert mentions_key(err.value.stderr, "eck-elasticsearch.podDisruptionBudget.spec."
                            "selector.matchLabels")


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
        assert "podDisruptionBudget" not in spec  # ECK's health-aware default stays
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


def secrets_read(pod: dict) -> set[str]:
    """Every Secret a Pod spec reads: volumes, envFrom and env of every container."""
    return set(jmespath.search(
        "[volumes[].secret.secretName, volumes[].projected.sources[].secret.name,"
        " [containers, initContainers][][].envFrom[].secretRef.name,"
        " [containers, initContainers][][].env[].valueFrom.secretKeyRef.name][][]",
        pod) or []) - {None}


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
        return json.loads(cm["data"]["secrets.json"])

    def readers(self, objects: list[dict], config: dict) -> set[str]:
        derived = {config["ralph"]["envSecret"], config["ralph"]["authSecret"]}
        return {d["metadata"]["name"] for d in find(objects, "Deployment")
                if secrets_read(d["spec"]["template"]["spec"]) & derived}

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
        assert env["LRS_PASSWORD"]["secretKeyRef"]["name"] == "la-stack-lrs-helm-test"
        assert env["ES_PASSWORD"]["secretKeyRef"]["name"] == "la-stack-es-superset"
        assert env["ES_URL"] == ES_URL
        ca = next(v for v in pod["volumes"] if v["name"] == "es-ca")
        assert ca["secret"]["secretName"] == CA_SECRET

    def test_should_post_into_its_own_index_outside_the_dashboards(self, helm):
        """The test account's auth.json target is the index the test counts in, and that
        index is not the alias the dashboards read."""
        objects = render_chart(helm=helm, subcharts=())
        config = secrets_config(objects)
        (account,) = [a for a in config["lrsAccounts"]
                      if a["secret"] == "la-stack-lrs-helm-test"]
        env = env_of(find(objects, "Pod", "la-stack-test-data-path")[0]["spec"]["containers"][0])
        wiring = json.loads(find(objects, "ConfigMap", "la-stack-superset-wiring")[0]["data"][
            "wiring.json"])
        assert account["target"] == env["ES_INDEX"] == "statements.helm-test"
        assert env["ES_INDEX"] != wiring["index"]
        assert account["scopes"] == ["statements/write", "statements/read/mine"]

    def test_should_run_a_program_the_chart_ships(self, helm):
        cm = render_chart(helm=helm, show_only=["templates/hooks/programs-configmap.yaml"])[0]
        command = self.pod(helm)["spec"]["containers"][0]["command"]
        assert command[-1].removeprefix("/hooks/") in cm["data"]
