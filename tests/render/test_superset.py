"""Superset: credentials only from Secrets, drivers, CA, init without hooks, the wiring hook and
the dashboard bundle it imports."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from lastack.paths import CHART_DIR
from lastack.render import HelmFailedError, find, render_chart
from tests.conftest import mentions_key, requires_subcharts

WIRING = ["templates/superset/wiring-job.yaml", "templates/superset/wiring-configmap.yaml"]
SECRET = "la-stack-superset"
SECRET_KEYS = {"SUPERSET_SECRET_KEY", "LA_STACK_ADMIN_PASSWORD", "DB_PASS", "REDIS_PASSWORD"}
CA_SECRET = "la-stack-es-http-certs-public"
BUNDLE = CHART_DIR / "files" / "superset"
TEMPLATE = CHART_DIR / "files" / "elasticsearch" / "statements-template.json"
VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
SUPERSET = VALUES["superset"]


def secrets_config(objects: list[dict]) -> dict:
    cm = find(objects, "ConfigMap", "la-stack-secrets-hook")[0]
    return json.loads(cm["data"]["secrets.json"])


def wiring_job(helm, values=None) -> dict:
    return find(render_chart(helm=helm, values=values, show_only=WIRING, subcharts=()), "Job")[0]


def weight(obj: dict) -> int:
    return int(obj["metadata"]["annotations"]["helm.sh/hook-weight"])


class TestSupersetCredentials:
    """The secret key, the admin password and the DB passwords exist only in a Secret."""

    def test_should_generate_the_superset_secret_once(self, helm):
        generic = {g["secret"]: g for g in secrets_config(render_chart(helm=helm))["generic"]}
        assert set(generic[SECRET]["keys"]) == SECRET_KEYS
        assert generic[SECRET]["keys"]["SUPERSET_SECRET_KEY"] >= 64
        assert generic[SECRET]["existingSecret"] == ""

    def test_should_let_the_secrets_hook_read_it(self, helm):
        objects = render_chart(helm=helm, show_only=["templates/hooks/secrets-rbac.yaml"])
        get = next(r for r in find(objects, "Role")[0]["rules"] if r["verbs"] == ["get"])
        assert SECRET in get["resourceNames"]

    def test_should_generate_nothing_for_superset_when_disabled(self, helm):
        values = {"superset": {"enabled": False}}
        config = secrets_config(render_chart(helm=helm, values=values, subcharts=()))
        assert SECRET not in {g["secret"] for g in config["generic"]}
        objects = render_chart(helm=helm, values=values, subcharts=())
        assert not [o for o in objects if "superset" in o["metadata"]["name"]]

    def test_should_load_the_secret_into_every_superset_container(self):
        assert SUPERSET["envFromSecrets"] == [SECRET]
        init = next(c for c in SUPERSET["supersetNode"]["initContainers"]
                    if c["name"] == "superset-init")
        assert {"secretRef": {"name": SECRET}} in init["envFrom"]

    def test_should_put_no_password_in_the_subchart_values(self):
        assert SUPERSET["supersetNode"]["connections"]["db_pass"] == ""
        assert SUPERSET["init"]["adminUser"]["password"] == ""
        assert "password" not in SUPERSET["postgresql"]["auth"]
        assert "password" not in SUPERSET["redis"]["auth"]
        assert "extraSecretEnv" not in SUPERSET and "extraSecrets" not in SUPERSET
        assert "$LA_STACK_ADMIN_PASSWORD" in SUPERSET["init"]["initscript"]

    def test_should_give_postgres_and_redis_the_generated_passwords(self):
        pg, redis = SUPERSET["postgresql"]["auth"], SUPERSET["redis"]["auth"]
        assert (pg["existingSecret"], pg["secretKeys"]["userPasswordKey"]) == (SECRET, "DB_PASS")
        assert pg["enablePostgresUser"] is False
        assert redis["enabled"] is True
        assert (redis["existingSecret"], redis["existingSecretPasswordKey"]) == (
            SECRET, "REDIS_PASSWORD")

    def test_should_use_pullable_legacy_bitnami_images(self):
        assert SUPERSET["postgresql"]["image"]["repository"] == "bitnamilegacy/postgresql"
        assert SUPERSET["redis"]["image"]["repository"] == "bitnamilegacy/redis"
        assert SUPERSET["image"] == {"repository": "apache/superset", "tag": "6.1.0",
                                     "pullPolicy": "IfNotPresent"}


class TestSupersetConfigOverride:
    """The appended superset_config.py builds every secret setting from the environment."""

    ENV = {
        "SUPERSET_SECRET_KEY": "k" * 64, "DB_USER": "superset", "DB_PASS": "p@ss/w:rd%",
        "DB_HOST": "la-stack-postgresql", "DB_PORT": "5432", "DB_NAME": "superset",
        "REDIS_PASSWORD": "r#d!s", "REDIS_HOST": "la-stack-redis-headless", "REDIS_PORT": "6379",
    }

    def config(self, monkeypatch) -> dict:
        class RedisCache:
            def __init__(self, **kwargs):
                self.kwargs = kwargs

        stub = types.ModuleType("flask_caching.backends.rediscache")
        stub.RedisCache = RedisCache
        monkeypatch.setitem(sys.modules, "flask_caching.backends.rediscache", stub)
        for key, value in self.ENV.items():
            monkeypatch.setenv(key, value)
        namespace: dict = {}
        exec(SUPERSET["configOverrides"]["la_stack"], namespace)
        return namespace

    def test_should_read_the_secret_key_from_the_environment(self, monkeypatch):
        assert self.config(monkeypatch)["SECRET_KEY"] == "k" * 64

    def test_should_quote_passwords_into_the_urls(self, monkeypatch):
        config = self.config(monkeypatch)
        assert config["SQLALCHEMY_DATABASE_URI"] == (
            "postgresql+psycopg2://superset:p%40ss%2Fw%3Ard%25@la-stack-postgresql:5432/superset")
        assert config["CACHE_CONFIG"]["CACHE_REDIS_URL"] == (
            "redis://:r%23d%21s@la-stack-redis-headless:6379/1")
        assert config["CELERY_CONFIG"].broker_url.endswith(":6379/0")
        assert config["RESULTS_BACKEND"].kwargs["password"] == "r#d!s"

    def test_should_fail_loudly_without_the_secret(self, monkeypatch):
        monkeypatch.delenv("SUPERSET_SECRET_KEY", raising=False)
        self.ENV = {k: v for k, v in self.ENV.items() if k != "SUPERSET_SECRET_KEY"}
        with pytest.raises(KeyError):
            self.config(monkeypatch)


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
        script.write_text(SUPERSET["bootstrapScript"])
        result = subprocess.run(["/bin/sh", "-c", f". {script}; echo sourced"],
                                env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert "sourced" in result.stdout, "the script is sourced and must not exit on success"
        return calls.read_text() if calls.exists() else ""

    def test_should_install_the_pinned_drivers(self, tmp_path):
        calls = self.run_bootstrap(tmp_path, importable=False)
        install = next(line for line in calls.splitlines() if line.startswith("uv pip install"))
        for pin in ("elasticsearch-dbapi==0.2.12", "elasticsearch==7.17.13",
                    "psycopg2-binary==2.9.10"):
            assert pin in install.split()

    def test_should_skip_the_install_when_the_image_has_them(self, tmp_path):
        assert "uv" not in self.run_bootstrap(tmp_path, importable=True)

    def test_should_run_the_es_client_in_compatibility_mode(self):
        assert SUPERSET["extraEnv"]["ELASTIC_CLIENT_APIVERSIONING"] == "1"


class TestSupersetStartsWithoutHooks:
    """No Superset Pod waits on a post-install hook (Argo CD PostSync, helm --wait)."""

    def test_should_initialise_in_the_web_pod(self):
        assert SUPERSET["init"]["enabled"] is False
        names = [c["name"] for c in SUPERSET["supersetNode"]["initContainers"]]
        assert names == ["wait-for-postgres", "superset-init"]
        init = SUPERSET["supersetNode"]["initContainers"][1]
        assert "superset_bootstrap.sh" in init["command"][-1]
        assert "superset_init.sh" in init["command"][-1]
        script = SUPERSET["init"]["initscript"]
        assert script.index("superset db upgrade") < script.index("superset init")
        assert "fab create-admin" in script and "set -eu" in script

    def test_should_have_a_startup_probe_long_enough_for_the_first_start(self):
        probe = SUPERSET["supersetNode"]["startupProbe"]
        assert probe["httpGet"]["path"] == "/health"
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 600

    def test_should_order_a_reenabled_init_job_before_the_wiring(self, helm):
        annotations = SUPERSET["init"]["jobAnnotations"]
        assert int(annotations["helm.sh/hook-weight"]) < weight(wiring_job(helm))

    def test_should_mount_the_whole_ca_secret(self):
        volume = next(v for v in SUPERSET["extraVolumes"] if "secret" in v)
        assert volume["secret"] == {"secretName": CA_SECRET}
        mount = next(m for m in SUPERSET["extraVolumeMounts"] if m["name"] == volume["name"])
        assert "subPath" not in mount
        assert mount["mountPath"] == VALUES["supersetWiring"]["caMountPath"]


class TestSupersetWiringHook:
    """The post-install/post-upgrade Job that creates the database and imports the bundle."""

    def settings(self, helm, values=None) -> dict:
        objects = render_chart(helm=helm, values=values, show_only=WIRING, subcharts=())
        return json.loads(find(objects, "ConfigMap")[0]["data"]["wiring.json"])

    def test_should_run_after_superset_init_and_the_index_bootstrap(self, helm):
        job = wiring_job(helm)
        annotations = job["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "post-install,post-upgrade"
        assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        bootstrap = find(render_chart(
            helm=helm, show_only=["templates/elasticsearch/bootstrap-job.yaml"]), "Job")[0]
        assert weight(job) > weight(bootstrap) > int(
            SUPERSET["init"]["jobAnnotations"]["helm.sh/hook-weight"])

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
        assert settings["supersetUrl"] == "http://la-stack-superset.la-stack.svc:8088"
        assert settings["databaseName"] == "Learning analytics"
        assert settings["index"] == "statements"
        assert settings["dashboards"] is True

    def test_should_follow_the_release_and_overrides(self, helm):
        values = {"superset": {"fullnameOverride": "bi"}, "elasticsearch": {"index": "xapi"},
                  "supersetWiring": {"dashboards": False, "databaseName": "LRS"}}
        settings = self.settings(helm, values)
        assert settings["supersetUrl"] == "http://bi.la-stack.svc:8088"
        assert (settings["index"], settings["dashboards"], settings["databaseName"]) == (
            "xapi", False, "LRS")

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

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"superset": {"envFromSecrets": []}}, "superset.envFromSecrets"),
            ({"superset": {"postgresql": {"auth": {"existingSecret": "other"}}}},
             "superset.postgresql.auth.existingSecret"),
            ({"superset": {"redis": {"auth": {"existingSecretPasswordKey": "pw"}}}},
             "superset.redis.auth"),
            ({"superset": {"extraVolumeMounts": []}}, "superset.extraVolumeMounts"),
            ({"superset": {"init": {"enabled": True, "jobAnnotations": {
                "helm.sh/hook-weight": "20"}}}}, "superset.init.jobAnnotations"),
        ],
        ids=["env-secret", "postgres-secret", "redis-key", "ca-unmounted", "init-after-wiring"],
    )
    def test_should_fail_naming_the_key(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=values, validate=False, subcharts=())
        assert mentions_key(err.value.stderr, key)


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

    def test_should_offer_the_three_starter_dashboards(self):
        titles = {d["dashboard_title"] for d in self.load("dashboards/*.yaml").values()}
        assert {"Learning activity over time", "Active learners and courses",
                "Moodle course engagement"} <= titles
        slugs = [d["slug"] for d in self.load("dashboards/*.yaml").values()]
        assert len(slugs) == len(set(slugs))

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
        from lastack import xapi

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


@requires_subcharts("superset")
class TestSupersetSubchartWiring:
    """Our values land in the superset chart's objects (0.22.8)."""

    def objects(self, helm) -> list[dict]:
        return render_chart(helm=helm, subcharts=["superset"])

    def web(self, helm) -> dict:
        return find(self.objects(helm), "Deployment", "la-stack-superset")[0]

    def test_should_run_no_superset_hook_that_pods_need(self, helm):
        hooks = [o for o in self.objects(helm)
                 if "helm.sh/hook" in o["metadata"].get("annotations", {})
                 and "superset" in o["metadata"]["name"]]
        assert [o["metadata"]["name"] for o in hooks] == ["la-stack-superset-wiring"]

    def test_should_initialise_before_the_server_starts(self, helm):
        pod = self.web(helm)["spec"]["template"]["spec"]
        init = next(c for c in pod["initContainers"] if c["name"] == "superset-init")
        assert init["image"] == "apache/superset:6.1.0"
        assert {"secretRef": {"name": SECRET}} in init["envFrom"]

    def test_should_load_the_secret_mount_the_ca_and_probe_startup(self, helm):
        container = self.web(helm)["spec"]["template"]["spec"]["containers"][0]
        assert {"secretRef": {"name": SECRET}} in container["envFrom"]
        assert {"name": "la-stack-es-ca", "mountPath": "/etc/la-stack/es-ca",
                "readOnly": True} in container["volumeMounts"]
        assert container["startupProbe"]["httpGet"]["path"] == "/health"
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["ELASTIC_CLIENT_APIVERSIONING"] == "1"

    def test_should_render_no_password_into_the_env_secret(self, helm):
        env = find(self.objects(helm), "Secret", "la-stack-superset-env")[0]
        values = dict(env.get("stringData", {}))
        values.update({k: base64.b64decode(v).decode() for k, v in env.get("data", {}).items()})
        assert values.get("DB_PASS", "") == ""
        assert not values.get("REDIS_PASSWORD")

    def test_should_use_legacy_images_and_the_generated_passwords(self, helm):
        objects = self.objects(helm)
        pg = find(objects, "StatefulSet", "la-stack-postgresql")[0]["spec"]["template"]["spec"]
        assert pg["containers"][0]["image"].startswith("docker.io/bitnamilegacy/postgresql:")
        redis = find(objects, "StatefulSet", "la-stack-redis-master")[0]["spec"]["template"]
        assert redis["spec"]["containers"][0]["image"].startswith("docker.io/bitnamilegacy/redis:")
        names = {o["metadata"]["name"] for o in objects if o["kind"] == "Secret"}
        assert not {"la-stack-postgresql", "la-stack-redis"} & names, "no render-time passwords"
