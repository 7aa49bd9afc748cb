"""Elasticsearch: the statements store, the index bootstrap hook that creates it, the
resource the eck-elasticsearch subchart renders, and the names la-stack checks."""

from __future__ import annotations

import json

import jmespath
import pytest
import yaml

from lastack.chart.render import CNPG_API, HelmFailedError, find, render_chart
from lastack.paths import VALUES_DIR
from tests.helpers import dicts_in, mentions_key, requires_subcharts
from tests.render.support import CA_SECRET, ES_URL, env_of, hook_annotations, restricted

PROGRAMS = "templates/hooks/programs-configmap.yaml"


def flattened_fields(node: object) -> list[dict]:
    """Every mapping (field or dynamic template) of type flattened, anywhere in a body."""
    return [d for d in dicts_in(node) if d.get("type") == "flattened"]


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
        env = env_of(jmespath.search("containers[0]", pod))
        assert env["ES_URL"] == ES_URL
        ca_volume = next(v for v in pod["volumes"] if v["name"] == "es-ca")
        assert jmespath.search("secret.secretName", ca_volume) == CA_SECRET
        (mount,) = jmespath.search("containers[0].volumeMounts[?name=='es-ca']", pod)
        assert "subPath" not in mount, "a subPath mount would miss the yearly CA rotation"
        assert env["ES_CA_FILE"] == f"{mount['mountPath']}/ca.crt"

    def test_should_authenticate_as_the_bootstrap_user_from_its_secret(self, helm):
        pod = render_chart(helm=helm, show_only=self.TEMPLATE)[0]["spec"]["template"]["spec"]
        env = env_of(jmespath.search("containers[0]", pod))
        assert jmespath.search("ES_USERNAME.secretKeyRef", env) == {"name": "la-stack-es-bootstrap",
                                                      "key": "username"}
        assert jmespath.search("ES_PASSWORD.secretKeyRef", env) == {"name": "la-stack-es-bootstrap",
                                                      "key": "password"}

    def test_should_ship_the_mapping_and_the_config_it_reads(self, helm):
        pod = render_chart(helm=helm, show_only=self.TEMPLATE)[0]["spec"]["template"]["spec"]
        env = env_of(jmespath.search("containers[0]", pod))
        cm = render_chart(helm=helm, show_only=[PROGRAMS])[0]
        for key in ("CONFIG_FILE", "TEMPLATE_FILE", "SCRIPT_FILE"):
            assert env[key].removeprefix("/hooks/") in cm["data"], key
        assert "ctx.la_stack" in jmespath.search('data."statements-dimensions.painless"', cm)
        assert "es_bootstrap.py" in cm["data"]
        mappings = json.loads(jmespath.search('data."statements-template.json"', cm))
        assert jmespath.search("template.mappings.properties.verb.properties.id.type",
                               mappings) == "keyword"

    def test_should_index_the_derived_course_outside_the_source(self, helm):
        """What the ingest pipeline derives is indexed for SQL but never returned by Ralph."""
        cm = render_chart(helm=helm, show_only=[PROGRAMS])[0]
        body = json.loads(jmespath.search('data."statements-template.json"', cm))
        mappings = jmespath.search("template.mappings", body)
        assert "la_stack" in jmespath.search("_source.excludes", mappings)
        derived = jmespath.search("properties.la_stack.properties", mappings)
        assert jmespath.search("[course.properties.*.type, module.properties.*.type][]",
                               derived) == ["keyword"] * 5

    def test_should_cap_every_flattened_field_so_no_value_rejects_a_statement(self, helm):
        """Elasticsearch rejects a flattened value over 32,766 bytes unless the field sets
        ignore_above; 8191 UTF-16 units is the most that always fits."""
        cm = render_chart(helm=helm, show_only=[PROGRAMS])[0]
        body = json.loads(jmespath.search('data."statements-template.json"', cm))
        fields = flattened_fields(body)
        assert len(fields) > 10
        assert all(0 < f.get("ignore_above", 0) <= 8191 for f in fields), fields


class TestStatementsStore:
    """es-bootstrap.json: what the bootstrap hook makes of `elasticsearch.*`."""

    def config(self, helm, values=None) -> dict:
        (cm,) = render_chart(helm=helm, values=values, show_only=[PROGRAMS])
        return json.loads(jmespath.search('data."es-bootstrap.json"', cm))

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


class TestElasticsearchPreflight:
    """Rendering fails early, in one sentence, when the ECK API is absent, and when a name
    the upstream chart cannot template disagrees, with the key named."""

    def test_should_fail_without_the_eck_api(self, helm):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, api_versions=())
        assert "install the operator first" in err.value.stderr

    def test_should_render_when_elasticsearch_is_disabled(self, helm):
        render_chart(helm=helm, api_versions=(CNPG_API,),
                     values={"eck-elasticsearch": {"enabled": False}})

    def test_should_allow_turning_the_check_off(self, helm):
        render_chart(helm=helm, api_versions=(CNPG_API,),
                     values={"preflight": {"requireEckApi": False}})

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"eck-elasticsearch": {"auth": {"fileRealm": [{"secretName": "other"}]}}},
             "eck-elasticsearch.auth.fileRealm"),
            ({"eck-elasticsearch": {"auth": {"roles": []}}}, "eck-elasticsearch.auth.roles"),
            ({"eck-elasticsearch": {"fullnameOverride": "x" * 37}},
             "eck-elasticsearch.fullnameOverride"),
        ],
        ids=["user-not-in-realm", "roles-not-listed", "name-too-long"],
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
        realm = {s["secretName"] for s in jmespath.search("auth.fileRealm", spec)}
        assert realm == {"la-stack-es-ralph", "la-stack-es-superset", "la-stack-es-bootstrap"}
        assert jmespath.search("auth.roles", spec) == [{"secretName": "la-stack-es-roles"}]

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


class TestElasticsearchRoles:
    """The roles Secret referenced by the Elasticsearch resource."""

    def test_should_define_least_privilege_roles(self, helm):
        docs = render_chart(helm=helm, show_only=["templates/elasticsearch/roles-secret.yaml"])
        roles = yaml.safe_load(docs[0]["stringData"]["roles.yml"])
        for role in roles.values():
            for index in role["indices"]:
                assert index["names"] == ["statements*"]
        reader, writer, bootstrap = (roles[f"la_stack_{name}"] for name in (
            "statements_reader", "statements_writer", "index_bootstrap"))
        # Superset reads and lists tables (_cat/indices needs cluster and index monitor).
        assert reader["cluster"] == ["monitor"]
        assert set(reader["indices"][0]["privileges"]) == {"read", "view_index_metadata",
                                                           "monitor"}
        # Ralph writes through the alias, but may neither create indices nor roll over.
        assert writer["cluster"] == ["monitor"]
        assert set(writer["indices"][0]["privileges"]) == {"read", "write",
                                                           "view_index_metadata"}
        # The bootstrap hook, and ILM/SLM acting as it: lifecycle, rollover, snapshots, and
        # the statements' ingest pipeline.
        assert {"manage_ilm", "manage_slm", "create_snapshot", "cluster:admin/repository/put",
                "cluster:admin/repository/verify",
                "manage_ingest_pipelines"} <= set(bootstrap["cluster"])
        assert "manage" not in bootstrap["cluster"] and "all" not in bootstrap["cluster"]
        assert set(bootstrap["indices"][0]["privileges"]) == {"create_index", "manage",
                                                              "view_index_metadata"}

    def test_should_not_render_when_elasticsearch_is_disabled(self, helm):
        objects = render_chart(helm=helm, values={"eck-elasticsearch": {"enabled": False}})
        assert not [o for o in objects if o["metadata"]["name"].endswith("-es-roles")]
