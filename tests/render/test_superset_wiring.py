"""Superset's wiring hook and the dashboard bundle it imports."""

from __future__ import annotations

import json
import os

import jmespath
import yaml

from lastack.chart.render import find, render_chart
from lastack.paths import CHART_DIR
from tests.helpers import requires_subcharts

WIRING = ["templates/superset/wiring-job.yaml", "templates/superset/wiring-configmap.yaml"]
SECRET = "la-stack-superset"
BUNDLE = CHART_DIR / "files" / "superset"
TEMPLATE = CHART_DIR / "files" / "elasticsearch" / "statements-template.json"


def wiring_job(helm, values=None) -> dict:
    return find(render_chart(helm=helm, values=values, show_only=WIRING, subcharts=()), "Job")[0]


def weight(obj: dict) -> int:
    return int(obj["metadata"]["annotations"]["helm.sh/hook-weight"])


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
        assert jmespath.search("SUPERSET_PASSWORD.valueFrom.secretKeyRef", env) == {
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
        assert jmespath.search("ES_PASSWORD.valueFrom.secretKeyRef.name", env) == "my-reader"

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
        assert jmespath.search("securityContext.runAsNonRoot", pod) is True
        container = pod["containers"][0]
        assert container["command"] == ["python3", "/hooks/superset_wiring.py"]
        assert jmespath.search("securityContext.readOnlyRootFilesystem", container) is True
        programs = render_chart(helm=helm, show_only=["templates/hooks/programs-configmap.yaml"])
        assert "superset_wiring.py" in jmespath.search("[0].data", programs)

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
                assert jmespath.search("meta.uuid", cell) in chart_uuids, path
                assert isinstance(jmespath.search("meta.chartId", cell), int)
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
            assert jmespath.search('"Time range".filterType', by_name) == "filter_time", path
            for f in filters:
                for target in f["targets"]:
                    assert target == {} or jmespath.search("column.name", target) in columns, path
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
        from lastack.testing.xapi_vocabulary import VERBS

        verbs = set(VERBS.values())
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
