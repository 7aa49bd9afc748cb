"""Superset on the Apache Superset operator: the `Superset` resource la-stack renders, its
credentials, its preflight, the operator subchart and its Valkey cache."""

from __future__ import annotations

import base64

import jmespath
import pytest
import yaml

from lastack.chart import chart_values
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
from tests.render.support import CA_SECRET, at, secrets_config

OWN = ["templates/superset/superset.yaml", "templates/superset/metastore.yaml"]
SECRET = "la-stack-superset"
SECRET_KEYS = {"SUPERSET_SECRET_KEY", "LA_STACK_ADMIN_PASSWORD", "DB_PASS", "REDIS_PASSWORD"}
CA_PATH = "/etc/la-stack/es-ca"
CR_NAME = "la-stack-dashboards"
METASTORE = "la-stack-superset-db"
VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
# The drivers the bootstrap script must install, at the versions it pins (one place).
DRIVER_PINS = chart_values.pip_pins("superset.bootstrapScript")
IMAGE = VALUES["superset"]["image"]


def superset_cr(helm, values=None, values_files=()) -> dict:
    objects = render_chart(helm=helm, values=values, values_files=values_files, show_only=OWN,
                           subcharts=())
    return find(objects, "Superset")[0]


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
        assert jmespath.search("valueFrom.secretKeyRef", env) == {"name": SECRET,
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
        assert jmespath.search("spec.config", cr) == "ROW_LIMIT = 5000\n"
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
