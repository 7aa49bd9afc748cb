"""Superset's CloudNativePG metastore, and the custom resources validated against their CRDs."""

from __future__ import annotations

import jmespath
import pytest

from lastack.chart import validation
from lastack.chart.render import (
    HelmFailedError,
    find,
    render_chart,
)
from lastack.paths import VALUES_DIR
from tests.helpers import mentions_key
from tests.render.support import at

OWN = ["templates/superset/superset.yaml", "templates/superset/metastore.yaml"]
SECRET = "la-stack-superset"
METASTORE = "la-stack-superset-db"


def superset_cr(helm, values=None, values_files=()) -> dict:
    objects = render_chart(helm=helm, values=values, values_files=values_files, show_only=OWN,
                           subcharts=())
    return find(objects, "Superset")[0]


def metastore(helm, values=None, values_files=()) -> dict:
    objects = render_chart(helm=helm, values=values, values_files=values_files, show_only=OWN,
                           subcharts=())
    return find(objects, "Cluster")[0]


class TestCustomResourcesValidate:
    """The rendered `Superset` and `Cluster` match their CRDs' schemas (the pinned
    superset-operator and CloudNativePG); what JSON Schema cannot see (CEL) is the live
    tier's."""

    @pytest.mark.parametrize("profile", [VALUES_DIR / "demo.yaml", VALUES_DIR / "production.yaml"],
                             ids=["demo", "production"])
    def test_should_validate_every_rendered_resource(self, helm, profile):
        objects = render_chart(helm=helm, values_files=[profile], show_only=OWN, subcharts=(),
                               validate=False)
        assert {o["kind"] for o in objects} == {"Superset", "Cluster"}
        for obj in objects:
            validation.validate_object(obj)

    def test_should_catch_a_field_the_crd_does_not_have(self, helm):
        cr = superset_cr(helm)
        cr["spec"]["valkey"]["passwordSecret"] = {"name": SECRET}
        with pytest.raises(validation.ObjectInvalidError, match="passwordSecret"):
            validation.validate_object(cr)


class TestSupersetMetastore:
    """The CloudNativePG `Cluster` that holds Superset's metadata."""

    def test_should_run_one_instance_for_evaluation(self, helm):
        cluster = metastore(helm, values_files=[VALUES_DIR / "demo.yaml"])
        assert at(cluster, "metadata.name") == METASTORE
        assert at(cluster, "spec.instances") == 1
        assert at(cluster, "spec.bootstrap.initdb") == {"database": "superset",
                                                        "owner": "superset"}
        assert at(cluster, "spec.storage.size") == "2Gi"
        # The pinned CloudNativePG release's default image (pkg/versions), pinned.
        assert at(cluster, "spec.imageName") == (
            "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie")
        assert at(cluster, "spec.resources.requests.memory")
        assert "backup" not in cluster["spec"]

    def test_should_run_three_instances_on_distinct_nodes_in_production(self, helm):
        cluster = metastore(helm, values_files=[VALUES_DIR / "production.yaml"])
        assert at(cluster, "spec.instances") == 3
        assert at(cluster, "spec.affinity") == {
            "enablePodAntiAffinity": True, "podAntiAffinityType": "required",
            "topologyKey": "kubernetes.io/hostname"}
        assert at(cluster, "spec.enablePDB") is True

    def test_should_back_up_with_credentials_from_a_secret(self, helm):
        values = {"superset": {"metastore": {"backup": {
            "enabled": True, "destinationPath": "s3://bucket/superset-db",
            "s3Credentials": {"secretName": "backup-creds"}}}}}
        objects = render_chart(helm=helm, values=values, show_only=OWN, subcharts=())
        store = at(find(objects, "Cluster")[0], "spec.backup.barmanObjectStore")
        assert store["destinationPath"] == "s3://bucket/superset-db"
        assert store["s3Credentials"] == {
            "accessKeyId": {"name": "backup-creds", "key": "ACCESS_KEY_ID"},
            "secretAccessKey": {"name": "backup-creds", "key": "ACCESS_SECRET_KEY"}}
        scheduled = find(objects, "ScheduledBackup")[0]
        assert at(scheduled, "spec.cluster.name") == METASTORE

    def test_should_import_an_existing_metastore_on_creation(self, helm):
        values = {"superset": {"metastore": {"import": {
            "enabled": True, "host": "la-stack-postgresql",
            "passwordSecret": {"name": SECRET}}}}}
        cluster = metastore(helm, values)
        assert at(cluster, "spec.bootstrap.initdb.import") == {
            "type": "microservice", "databases": ["superset"],
            "source": {"externalCluster": "previous-metastore"}}
        (source,) = cluster["spec"]["externalClusters"]
        assert jmespath.search("connectionParameters.host", source) == "la-stack-postgresql"
        assert source["password"] == {"name": SECRET, "key": "DB_PASS"}

    @pytest.mark.parametrize(("values", "key"), [
        ({"superset": {"metastore": {"backup": {"enabled": True}}}},
         "superset.metastore.backup.destinationPath"),
        ({"superset": {"metastore": {"import": {"enabled": True}}}},
         "superset.metastore.import.host"),
        ({"superset": {"metastore": {"instances": 0}}}, "superset.metastore.instances"),
    ], ids=["backup-without-destination", "import-without-host", "no-instance"])
    def test_should_refuse_incomplete_settings_naming_the_key(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=values, show_only=OWN, subcharts=())
        assert mentions_key(err.value.stderr, key)
