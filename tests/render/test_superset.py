"""Superset on the Apache Superset operator: the `Superset` resource la-stack renders, its
CloudNativePG metastore, its Valkey cache, the operator subchart, the wiring hook and the
dashboard bundle it imports."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import jmespath
import pytest
import yaml

from lastack.chart import chart_values, validation
from lastack.chart.render import (
    CNPG_API,
    ECK_API,
    SUPERSET_API,
    HelmFailedError,
    find,
    render_chart,
)
from lastack.paths import CHART_DIR, VALUES_DIR
from tests.helpers import mentions_key, requires_subcharts

OWN = ["templates/superset/superset.yaml", "templates/superset/metastore.yaml"]
WIRING = ["templates/superset/wiring-job.yaml", "templates/superset/wiring-configmap.yaml"]
SECRET = "la-stack-superset"
SECRET_KEYS = {"SUPERSET_SECRET_KEY", "LA_STACK_ADMIN_PASSWORD", "DB_PASS", "REDIS_PASSWORD"}
CA_SECRET = "la-stack-es-http-certs-public"
CA_PATH = "/etc/la-stack/es-ca"
CR_NAME = "la-stack-dashboards"
METASTORE = "la-stack-superset-db"
BUNDLE = CHART_DIR / "files" / "superset"
TEMPLATE = CHART_DIR / "files" / "elasticsearch" / "statements-template.json"
VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
# The drivers the bootstrap script must install, at the versions it pins (one place).
DRIVER_PINS = chart_values.pip_pins("superset.bootstrapScript")
DRIVERS = {"elasticsearch-dbapi", "elasticsearch", "psycopg2-binary"}
IMAGE = VALUES["superset"]["image"]


def secrets_config(objects: list[dict]) -> dict:
    cm = find(objects, "ConfigMap", "la-stack-secrets-hook")[0]
    return json.loads(cm["data"]["secrets.json"])


def wiring_job(helm, values=None) -> dict:
    return find(render_chart(helm=helm, values=values, show_only=WIRING, subcharts=()), "Job")[0]


def weight(obj: dict) -> int:
    return int(obj["metadata"]["annotations"]["helm.sh/hook-weight"])


def superset_cr(helm, values=None, values_files=()) -> dict:
    objects = render_chart(helm=helm, values=values, values_files=values_files, show_only=OWN,
                           subcharts=())
    return find(objects, "Superset")[0]


def metastore(helm, values=None, values_files=()) -> dict:
    objects = render_chart(helm=helm, values=values, values_files=values_files, show_only=OWN,
                           subcharts=())
    return find(objects, "Cluster")[0]


def at(obj: dict, path: str):
    return jmespath.search(path, obj)


class TestSupersetCredentials:
    """The secret key, the admin password and the Valkey password exist only in a Secret."""

    def test_should_generate_the_superset_secret_once(self, helm):
        generic = {g["secret"]: g for g in secrets_config(render_chart(helm=helm))["generic"]}
        assert set(generic[SECRET]["keys"]) == SECRET_KEYS
        assert generic[SECRET]["keys"]["SUPERSET_SECRET_KEY"] >= 64
        assert generic[SECRET]["existingSecret"] == ""

    def test_should_let_the_secrets_hook_read_it(self, helm):
        objects = render_chart(helm=helm, show_only=["templates/secrets/secrets-rbac.yaml"])
        get = next(r for r in find(objects, "Role")[0]["rules"] if r["verbs"] == ["get"])
        assert SECRET in get["resourceNames"]

    def test_should_generate_nothing_for_superset_when_disabled(self, helm):
        values = {"superset": {"enabled": False}, "valkey": {"enabled": False},
                  "supersetOperator": {"enabled": False}}
        objects = render_chart(helm=helm, values=values)
        assert SECRET not in {g["secret"] for g in secrets_config(objects)["generic"]}
        assert not [o for o in objects if "superset" in o["metadata"]["name"]
                    or o["kind"] in {"Superset", "Cluster"}]

    @pytest.mark.parametrize("profile", [None, VALUES_DIR / "demo.yaml",
                                         VALUES_DIR / "production.yaml"],
                             ids=["defaults", "demo", "production"])
    def test_should_render_no_credential_anywhere(self, helm, profile):
        """Neither a generated value nor an inline password field appears in any object."""
        objects = render_chart(helm=helm, values_files=[profile] if profile else [])
        text = yaml.safe_dump_all(objects)
        for field in ("password:", "secretKey:", "uri:"):
            lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(field)]
            assert lines == [], lines
        secrets = [o for o in objects if o["kind"] == "Secret"]
        for secret in secrets:
            data = {**secret.get("stringData", {}), **{
                k: base64.b64decode(v).decode(errors="replace")
                for k, v in (secret.get("data") or {}).items()}}
            assert not set(data) & SECRET_KEYS, secret["metadata"]["name"]


class TestSupersetResource:
    """The `Superset` resource, field by field."""

    def test_should_run_in_production_with_every_credential_from_a_secret(self, helm):
        cr = superset_cr(helm)
        assert at(cr, "metadata.name") == CR_NAME
        assert at(cr, "spec.environment") == "Production"
        assert at(cr, "spec.secretKeyFrom") == {"name": SECRET, "key": "SUPERSET_SECRET_KEY"}
        assert at(cr, "spec.metastore") == {"uriFrom": {"name": f"{METASTORE}-app",
                                                        "key": "uri"}}
        assert at(cr, "spec.valkey") == {
            "host": "la-stack-valkey.la-stack.svc", "port": 6379,
            "passwordFrom": {"name": SECRET, "key": "REDIS_PASSWORD"}}
        assert at(cr, "spec.image") == {"repository": "apache/superset", "tag": IMAGE["tag"],
                                        "pullPolicy": "IfNotPresent"}

    def test_should_follow_the_release_name(self, helm):
        objects = render_chart(helm=helm, name="bi", show_only=OWN, subcharts=(),
                               values={"superset": {"name": "bi-dashboards"},
                                       "moodle": {"enabled": False}})
        cr = find(objects, "Superset")[0]
        assert at(cr, "spec.metastore.uriFrom.name") == "bi-superset-db-app"
        assert at(cr, "spec.valkey.host") == "bi-valkey.la-stack.svc"
        assert find(objects, "Cluster")[0]["metadata"]["name"] == "bi-superset-db"

    def test_should_mount_the_whole_eck_ca_for_components_and_lifecycle(self, helm):
        cr = superset_cr(helm)
        for template in ("spec.podTemplate", "spec.lifecycle.podTemplate"):
            assert at(cr, f"{template}.volumes") == [
                {"name": "la-stack-es-ca", "secret": {"secretName": CA_SECRET}}], template
            assert at(cr, f"{template}.container.volumeMounts") == [
                {"name": "la-stack-es-ca", "mountPath": CA_PATH, "readOnly": True}], template

    def test_should_run_the_es_client_in_compatibility_mode(self, helm):
        cr = superset_cr(helm)
        for template in ("spec.podTemplate", "spec.lifecycle.podTemplate"):
            env = at(cr, f"{template}.container.env[?name=='ELASTIC_CLIENT_APIVERSIONING']")
            assert env == [{"name": "ELASTIC_CLIENT_APIVERSIONING", "value": "1"}], template

    def test_should_run_web_worker_and_beat_with_resources_and_probes(self, helm):
        spec = superset_cr(helm)["spec"]
        for component in ("webServer", "celeryWorker", "celeryBeat"):
            requests = at(spec, f"{component}.podTemplate.container.resources.requests")
            assert requests["cpu"] and requests["memory"], component
        web = at(spec, "webServer.podTemplate.container")
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert at(web, f"{probe}.httpGet") == {"path": "/health", "port": 8088}, probe
        startup = web["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
        ping = at(spec, "celeryWorker.podTemplate.container.livenessProbe.exec.command")
        assert "inspect ping" in ping[-1]

    def test_should_leave_beat_out_when_asked(self, helm):
        cr = superset_cr(helm, {"superset": {"celeryBeat": {"enabled": False}}})
        assert "celeryBeat" not in cr["spec"]

    def test_should_create_the_admin_with_its_password_from_the_environment(self, helm):
        lifecycle = superset_cr(helm)["spec"]["lifecycle"]
        assert "adminUser" not in lifecycle["init"], "refused outside Development"
        env = at(lifecycle, "podTemplate.container.env[?name=='LA_STACK_ADMIN_PASSWORD'] | [0]")
        assert env["valueFrom"]["secretKeyRef"] == {"name": SECRET,
                                                    "key": "LA_STACK_ADMIN_PASSWORD"}
        shell, flag, script = lifecycle["init"]["command"]
        assert (shell, flag) == ("/bin/sh", "-c")
        assert script.index("superset_bootstrap.sh") < script.index("superset init") < \
            script.index("fab create-admin")
        assert '"$LA_STACK_ADMIN_PASSWORD"' in script
        assert "--password" not in script
        assert '--username "admin"' in script

    def test_should_carry_the_pinned_drivers_in_the_bootstrap_script(self, helm):
        script = superset_cr(helm)["spec"]["bootstrapScript"]
        for pin in DRIVER_PINS:
            assert pin in script.split(), pin

    def test_should_append_user_config(self, helm):
        cr = superset_cr(helm, {"superset": {"config": "ROW_LIMIT = 5000\n"}})
        assert cr["spec"]["config"] == "ROW_LIMIT = 5000\n"
        assert "config" not in superset_cr(helm)["spec"]

    def test_should_add_budgets_and_autoscaling_in_production(self, helm):
        spec = superset_cr(helm, values_files=[VALUES_DIR / "production.yaml"])["spec"]
        assert at(spec, "webServer.podDisruptionBudget") == {"maxUnavailable": 1}
        assert at(spec, "webServer.autoscaling.minReplicas") >= 2
        assert at(spec, "celeryWorker.podDisruptionBudget") == {"maxUnavailable": 1}
        defaults = superset_cr(helm)["spec"]
        assert "podDisruptionBudget" not in defaults["webServer"]
        assert "autoscaling" not in defaults["webServer"]

    def test_should_pull_with_the_global_pull_secrets(self, helm):
        cr = superset_cr(helm, {"global": {"imagePullSecrets": [{"name": "regcred"}]}})
        assert at(cr, "spec.image.pullSecrets") == [{"name": "regcred"}]


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


class TestSupersetDrivers:
    """The bootstrap script installs the pinned drivers unless the image already has them."""

    def run_bootstrap(self, tmp_path: Path, importable: bool) -> str:
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        calls = tmp_path / "calls"
        scripts = {
            "python": f"#!/bin/sh\necho \"python $*\" >> {calls}\n"
                      f"case \"$1\" in -c) exit {0 if importable else 1};; esac\n",
            "uv": f"#!/bin/sh\necho \"uv $*\" >> {calls}\n",
        }
        for name, text in scripts.items():
            path = bin_dir / name
            path.write_text(text)
            path.chmod(path.stat().st_mode | stat.S_IEXEC)
        script = tmp_path / "bootstrap.sh"
        script.write_text(VALUES["superset"]["bootstrapScript"])
        result = subprocess.run(["/bin/sh", "-c", f". {script}; echo sourced"],
                                env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "sourced" in result.stdout, "the script is sourced and must not exit on success"
        return calls.read_text() if calls.exists() else ""

    def test_should_install_the_pinned_drivers(self, tmp_path):
        calls = self.run_bootstrap(tmp_path, importable=False)
        install = next(line for line in calls.splitlines() if line.startswith("uv pip install"))
        for pin in DRIVER_PINS:
            assert pin in install.split()

    def test_should_skip_the_install_when_the_image_has_them(self, tmp_path):
        assert "uv" not in self.run_bootstrap(tmp_path, importable=True)

    def test_should_document_an_image_with_the_same_pins(self):
        readme = (CHART_DIR / "README.md").read_text()
        dockerfile = readme[readme.index("```dockerfile"):]
        dockerfile = dockerfile[:dockerfile.index("```", 3)]
        assert f"FROM {IMAGE['repository']}:{IMAGE['tag']}" in dockerfile
        assert {p.split("==")[0] for p in DRIVER_PINS} == DRIVERS
        for pin in DRIVER_PINS:
            assert pin in dockerfile, pin
        assert re.search(r"^\s*USER superset$", dockerfile, re.MULTILINE)


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
        assert source["connectionParameters"]["host"] == "la-stack-postgresql"
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


class TestSupersetPreflight:
    """A missing operator API or a mis-wired Valkey fails the render with one sentence."""

    def test_should_name_the_missing_cnpg_api_and_its_install_command(self, helm):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, api_versions=(ECK_API,), subcharts=())
        assert "postgresql.cnpg.io/v1" in err.value.stderr
        assert "kubectl apply --server-side" in err.value.stderr

    def test_should_name_the_superset_api_when_the_operator_is_off(self, helm):
        values = {"supersetOperator": {"enabled": False}}
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=values, subcharts=())
        assert "superset.apache.org/v1alpha1" in err.value.stderr
        assert "helm install superset-operator" in err.value.stderr
        render_chart(helm=helm, values=values, subcharts=(),
                     api_versions=(ECK_API, CNPG_API, SUPERSET_API))

    def test_should_allow_turning_the_check_off(self, helm):
        render_chart(helm=helm, api_versions=(ECK_API,), subcharts=(),
                     values={"preflight": {"requireCnpgApi": False}})

    def test_should_not_need_cnpg_without_superset(self, helm):
        render_chart(helm=helm, api_versions=(ECK_API,), subcharts=(), values={
            "superset": {"enabled": False}, "valkey": {"enabled": False}})

    @pytest.mark.parametrize(("values", "key"), [
        ({"valkey": {"enabled": False}}, "valkey.enabled"),
        ({"superset": {"enabled": False}}, "valkey.enabled"),
        ({"valkey": {"auth": {"usersExistingSecret": "other"}}}, "valkey.auth"),
        ({"valkey": {"auth": {"aclUsers": {"default": {"passwordKey": "pw"}}}}}, "valkey.auth"),
    ], ids=["valkey-off", "valkey-without-superset", "valkey-secret", "valkey-key"])
    def test_should_fail_naming_the_key(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=values, validate=False, subcharts=())
        assert mentions_key(err.value.stderr, key)


class TestSupersetWiringHook:
    """The post-install/post-upgrade Job that creates the database and imports the bundle."""

    def settings(self, helm, values=None) -> dict:
        objects = render_chart(helm=helm, values=values, show_only=WIRING, subcharts=())
        return json.loads(find(objects, "ConfigMap")[0]["data"]["wiring.json"])

    def test_should_run_after_the_index_bootstrap(self, helm):
        job = wiring_job(helm)
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        bootstrap = find(render_chart(
            helm=helm, show_only=["templates/elasticsearch/bootstrap-job.yaml"]), "Job")[0]
        assert weight(job) > weight(bootstrap)

    def test_should_pass_hook_annotations_through(self, helm):
        values = {"hooks": {"jobAnnotations": {"argocd.argoproj.io/hook": "PostSync"}}}
        annotations = wiring_job(helm, values)["metadata"]["annotations"]
        assert annotations["argocd.argoproj.io/hook"] == "PostSync"

    def test_should_read_credentials_only_from_secrets(self, helm):
        container = wiring_job(helm)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["SUPERSET_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": SECRET, "key": "LA_STACK_ADMIN_PASSWORD"}
        for name, key in (("ES_USERNAME", "username"), ("ES_PASSWORD", "password")):
            assert env[name]["valueFrom"]["secretKeyRef"] == {
                "name": "la-stack-es-superset", "key": key}
        assert not [e for e in container["env"] if "value" in e and "PASSWORD" in e["name"]]

    def test_should_read_an_existing_reader_secret(self, helm):
        values = {"elasticsearch": {"users": {"reader": {"existingSecret": "my-reader"}}},
                  "eck-elasticsearch": {"auth": {"fileRealm": [
                      {"secretName": "la-stack-es-ralph"}, {"secretName": "my-reader"},
                      {"secretName": "la-stack-es-bootstrap"}]}}}
        container = wiring_job(helm, values)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["ES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "my-reader"

    def test_should_connect_with_verified_tls_to_the_es_service(self, helm):
        settings = self.settings(helm)
        assert settings["esUrl"] == "https://la-stack-es-http.la-stack.svc:9200"
        assert settings["caFile"] == "/etc/la-stack/es-ca/ca.crt"
        assert settings["username"] == "admin"
        assert settings["databaseName"] == "Learning analytics"
        assert settings["index"] == "statements"
        assert settings["dashboards"] is True

    def test_should_follow_the_release_and_overrides(self, helm):
        values = {"superset": {"name": "bi"},
                  "elasticsearch": {"index": "statements_xapi"},
                  "supersetWiring": {"dashboards": False, "databaseName": "LRS"}}
        settings = self.settings(helm, values)
        assert settings["supersetUrl"] == "http://bi-web-server.la-stack.svc:8088"
        assert (settings["index"], settings["dashboards"], settings["databaseName"]) == (
            "statements_xapi", False, "LRS")

    def test_should_run_restricted_with_the_programs_mounted(self, helm):
        pod = wiring_job(helm)["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        container = pod["containers"][0]
        assert container["command"] == ["python3", "/hooks/superset_wiring.py"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        programs = render_chart(helm=helm, show_only=["templates/hooks/programs-configmap.yaml"])
        assert "superset_wiring.py" in programs[0]["data"]

    def test_should_mount_the_bundle_at_its_paths(self, helm):
        pod = wiring_job(helm)["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "wiring")["configMap"]
        paths = {i["path"] for i in volume["items"]}
        assert {"wiring.json", "bundle/metadata.yaml",
                "bundle/databases/Learning_analytics.yaml",
                "bundle/datasets/Learning_analytics/statements.yaml"} <= paths
        assert sum(p.startswith("bundle/dashboards/") for p in paths) >= 3

    def test_should_be_switchable_off(self, helm):
        objects = render_chart(helm=helm, values={"supersetWiring": {"enabled": False}},
                               subcharts=())
        assert not find(objects, "Job", "la-stack-superset-wiring")
        assert not find(objects, "ConfigMap", "la-stack-superset-wiring")

    def test_should_wait_on_the_operator_web_service(self, helm):
        assert self.settings(helm)["supersetUrl"] == (
            "http://la-stack-dashboards-web-server.la-stack.svc:8088")


class TestDashboardBundle:
    """The starter dashboards: Superset's export format, fixed uuids, single-valued fields."""

    @staticmethod
    def load(pattern: str) -> dict[str, dict]:
        return {str(p.relative_to(BUNDLE)): yaml.safe_load(p.read_text())
                for p in sorted(BUNDLE.glob(pattern))}

    def dataset(self) -> dict:
        (dataset,) = self.load("datasets/*/*.yaml").values()
        return dataset

    def test_should_be_an_assets_bundle_of_version_1(self):
        assert self.load("metadata.yaml")["metadata.yaml"]["type"] == "assets"
        for path, doc in self.load("**/*.yaml").items():
            assert doc["version"] == "1.0.0", path

    def test_should_use_fixed_unique_uuids(self):
        uuids = [doc["uuid"] for path, doc in self.load("**/*.yaml").items()
                 if path != "metadata.yaml"]
        assert len(uuids) == len(set(uuids)) >= 17

    def test_should_leave_credentials_to_the_hook(self):
        (database,) = self.load("databases/*.yaml").values()
        assert database["sqlalchemy_uri"] == "${sqlalchemy_uri}"
        assert database["database_name"] == "${database_name}"
        assert self.dataset()["table_name"] == "${table}"

    def test_should_link_charts_dashboards_and_the_dataset(self):
        dataset, charts = self.dataset(), self.load("charts/*.yaml")
        (database,) = self.load("databases/*.yaml").values()
        assert dataset["database_uuid"] == database["uuid"]
        assert {c["dataset_uuid"] for c in charts.values()} == {dataset["uuid"]}
        chart_uuids = {c["uuid"] for c in charts.values()}
        placed = set()
        for path, dashboard in self.load("dashboards/*.yaml").items():
            cells = [c for c in dashboard["position"].values()
                     if isinstance(c, dict) and c.get("type") == "CHART"]
            assert cells, path
            for cell in cells:
                assert cell["meta"]["uuid"] in chart_uuids, path
                assert isinstance(cell["meta"]["chartId"], int)
                placed.add(cell["meta"]["uuid"])
        assert placed == chart_uuids, "every chart is on a dashboard"

    def test_should_offer_the_four_starter_dashboards(self):
        titles = {d["dashboard_title"] for d in self.load("dashboards/*.yaml").values()}
        assert titles == {"Course overview", "Quizzes and assessments", "Learner",
                          "Delivery health"}
        slugs = [d["slug"] for d in self.load("dashboards/*.yaml").values()]
        assert len(slugs) == len(set(slugs))

    def test_should_filter_every_dashboard_by_course_and_time(self):
        dataset = self.dataset()
        columns = {c["column_name"] for c in dataset["columns"]}
        for path, dashboard in self.load("dashboards/*.yaml").items():
            filters = dashboard["metadata"]["native_filter_configuration"]
            by_name = {f["name"]: f for f in filters}
            course = by_name["Course"]
            assert course["filterType"] == "filter_select", path
            assert jmespath.search("targets[0].column.name", course) == "la_stack.course.name"
            assert jmespath.search("targets[0].datasetUuid", course) == dataset["uuid"]
            assert by_name["Time range"]["filterType"] == "filter_time", path
            for f in filters:
                for target in f["targets"]:
                    assert target == {} or target["column"]["name"] in columns, path
            assert len({f["id"] for f in filters}) == len(filters), path
        learner = self.load("dashboards/Learner.yaml")["dashboards/Learner.yaml"]
        assert "Learner" in {f["name"] for f in learner["metadata"]["native_filter_configuration"]}

    def test_should_show_names_not_iris(self):
        """A teacher reads words: no chart groups by an id or a type IRI where the
        pipeline gives a name, and every chart says what it shows."""
        iris = {"verb.id", "object.id", "object.definition.type", "la_stack.course.id",
                "la_stack.module.id", "actor.account.homePage"}
        for path, chart in self.load("charts/*.yaml").items():
            assert not iris & set(chart["params"].get("groupby", [])), path
            assert len(chart["description"]) > 20, path
        names = {c["column_name"]: c["verbose_name"] for c in self.dataset()["columns"]}
        assert names["la_stack.verb.name"] == "Action"
        assert names["la_stack.object.name"] == "Activity"

    def test_should_query_only_single_valued_mapped_fields(self):
        mapping = json.loads(TEMPLATE.read_text())["template"]["mappings"]["properties"]

        def field_type(dotted: str) -> str:
            node = {"properties": mapping}
            for part in dotted.split("."):
                node = node["properties"][part]
            return node["type"]

        dataset = self.dataset()
        columns = {c["column_name"] for c in dataset["columns"]}
        for column in columns:
            assert "contextActivities" not in column, "arrays break Elasticsearch SQL"
            assert field_type(column) in {"keyword", "date", "boolean", "double"}, column
        metrics = {m["metric_name"] for m in dataset["metrics"]}
        for path, chart in self.load("charts/*.yaml").items():
            params = chart["params"]
            used = set(params.get("groupby", []))
            used |= {params["x_axis"]} if "x_axis" in params else set()
            used |= {f["subject"] for f in params.get("adhoc_filters", [])}
            assert used <= columns, path
            wanted = set(params.get("metrics", [])) | ({params["metric"]} if "metric" in params
                                                       else set())
            assert wanted and wanted <= metrics, path

    def test_should_count_moodle_verbs_the_generator_emits(self):
        from lastack.testing import xapi

        verbs = set(xapi.VERBS.values())
        for path, chart in self.load("charts/*.yaml").items():
            for f in chart["params"].get("adhoc_filters", []):
                if f["subject"] == "verb.id":
                    assert f["comparator"] in verbs, path

    @requires_subcharts()
    def test_should_ship_every_bundle_file_in_the_configmap(self, helm):
        # Needs the unmodified chart: the render harness's partial copy leaves out every
        # directory named `charts`, including files/superset/charts.
        cm = find(render_chart(helm=helm, show_only=WIRING), "ConfigMap")[0]
        on_disk = {str(p.relative_to(BUNDLE)).replace(os.sep, ".")
                   for p in BUNDLE.rglob("*.yaml")}
        assert on_disk <= set(cm["data"])


@requires_subcharts("superset-operator")
class TestSupersetOperatorSubchart:
    """The operator chart (0.2.0) as la-stack configures it: namespace-scoped, no metrics."""

    def objects(self, helm, values=None) -> list[dict]:
        return render_chart(helm=helm, values=values, subcharts=["superset-operator"])

    def test_should_render_no_cluster_role_in_namespace_scope(self, helm):
        kinds = {o["kind"] for o in self.objects(helm)}
        assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
        roles = {o["metadata"]["name"] for o in find(self.objects(helm), "Role")}
        assert "la-stack-superset-operator-manager" in roles

    def test_should_watch_only_the_release_namespace(self, helm):
        deployment = find(self.objects(helm), "Deployment", "la-stack-superset-operator")[0]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env["WATCH_NAMESPACE"] == "la-stack"
        assert "--metrics-bind-address=0" in container["args"]

    def test_should_render_nothing_of_it_when_switched_off(self, helm):
        values = {"supersetOperator": {"enabled": False}}
        objects = render_chart(helm=helm, values=values, subcharts=["superset-operator"],
                               api_versions=(ECK_API, CNPG_API, SUPERSET_API))
        assert not [o for o in objects if "superset-operator" in o["metadata"]["name"]]

    def test_should_name_the_metrics_cluster_role_it_needs_when_metrics_are_on(self, helm):
        values = {"superset-operator": {"metrics": {"enabled": True}}}
        kinds = {o["kind"] for o in self.objects(helm, values)}
        assert "ClusterRole" in kinds, "documented: metrics need a token-review ClusterRole"


@requires_subcharts("valkey")
class TestValkeySubchart:
    """Valkey (0.11.0): the generated password, no persistence, the Service Superset reads."""

    def objects(self, helm) -> list[dict]:
        return render_chart(helm=helm, subcharts=["valkey"])

    def test_should_serve_on_the_host_the_superset_resource_names(self, helm):
        objects = self.objects(helm)
        host = at(find(objects, "Superset")[0], "spec.valkey.host")
        service = find(objects, "Service", host.split(".")[0])[0]
        assert {p["port"] for p in service["spec"]["ports"]} == {6379}

    def test_should_read_the_generated_password_and_keep_no_data(self, helm):
        objects = self.objects(helm)
        (workload,) = [o for o in objects if o["kind"] in {"Deployment", "StatefulSet"}
                       and o["metadata"]["name"] == "la-stack-valkey"]
        pod = workload["spec"]["template"]["spec"]
        refs = [v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v]
        env_refs = [e["valueFrom"]["secretKeyRef"] for c in pod["containers"]
                    for e in c.get("env", []) if (e.get("valueFrom") or {}).get("secretKeyRef")]
        assert SECRET in refs + [r["name"] for r in env_refs]
        assert not find(objects, "PersistentVolumeClaim")  or all(
            "valkey" not in o["metadata"]["name"] for o in find(objects, "PersistentVolumeClaim"))
        assert not workload["spec"].get("volumeClaimTemplates")
        assert not [o for o in find(objects, "Secret") if "valkey" in o["metadata"]["name"]]
