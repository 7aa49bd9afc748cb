"""Moodle: pullable images, credentials from generated Secrets, the xapi sidecar."""

from __future__ import annotations

import json

import jmespath
import pytest
import yaml

from lastack.chart.render import HelmFailedError, find, render_chart
from lastack.paths import CHART_DIR
from tests.helpers import mentions_key, requires_subcharts
from tests.render.support import secrets_config

XAPI_CONFIGMAP = ["templates/moodle/xapi-configmap.yaml"]
CHART_VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text())


class TestXapiWiringConfig:
    """The ConfigMap the sidecar reads: pinned plugin, Ralph endpoint, delivery."""

    def config(self, helm, values=None) -> dict:
        cm = render_chart(helm=helm, values=values, show_only=XAPI_CONFIGMAP)[0]
        assert jmespath.search("metadata.name", cm) == "la-stack-moodle-xapi"
        assert "xapi_wiring.php" in cm["data"]
        return json.loads(cm["data"]["wiring.json"])

    def test_should_pin_the_plugin_release_and_its_checksum(self, helm):
        plugin = self.config(helm)["plugin"]
        assert plugin["release"] == "v5.1.0"
        assert plugin["version"] == 2026072001
        assert plugin["url"].endswith("/v5.1.0.tar.gz")
        assert len(plugin["treeSha256"]) == 64

    def test_should_point_at_ralphs_service(self, helm):
        assert self.config(helm)["endpoint"] == "http://la-stack-ralph.la-stack.svc:8080/xAPI/"

    def test_should_follow_the_release_name(self, helm):
        values = {"moodle": {"mariadb": {"auth": {"existingSecret": "lrs-mariadb"}}}}
        cm = render_chart(helm=helm, name="lrs", show_only=XAPI_CONFIGMAP, values=values)
        config = json.loads(cm[0]["data"]["wiring.json"])
        assert jmespath.search("[0].metadata.name", cm) == "lrs-moodle-xapi"
        assert config["endpoint"] == "http://lrs-ralph.la-stack.svc:8080/xAPI/"

    def test_should_retry_with_the_configured_backoff(self, helm):
        values = {"logstoreXapi": {"retry": {"initialSeconds": 5, "maxSeconds": 120}}}
        assert self.config(helm, values)["retry"] == {"initialSeconds": 5, "maxSeconds": 120}

    def test_should_write_the_status_file_into_the_sidecars_writable_tmp(self, helm):
        assert self.config(helm)["statusFile"] == "/tmp/xapi-status.json"

    def test_should_send_in_background_batches_sized_for_ten_per_second(self, helm):
        config = self.config(helm)
        per_second = int(config["settings"]["maxbatchsize"]) / config["cronIntervalSeconds"]
        assert jmespath.search("settings.backgroundmode", config) == "1"
        assert per_second >= 10

    def test_should_pass_extra_settings_and_real_time_mode(self, helm):
        values = {"logstoreXapi": {"delivery": {"backgroundMode": False},
                                   "extraSettings": {"send_username": True}}}
        settings = self.config(helm, values)["settings"]
        assert settings["backgroundmode"] == "0"
        assert settings["send_username"] == "true"

    def test_should_be_absent_when_disabled(self, helm):
        objects = render_chart(helm=helm, values={"logstoreXapi": {"enabled": False}},
                               subcharts=())
        assert not find(objects, "ConfigMap", "la-stack-moodle-xapi")


class TestMoodleCredentials:
    """Moodle's and MariaDB's passwords are generated once by the secrets hook."""

    def test_should_generate_moodle_and_mariadb_passwords(self, helm):
        generic = {g["secret"]: g for g in secrets_config(render_chart(helm=helm))["generic"]}
        assert set(jmespath.search('"la-stack-moodle".keys', generic)) == {"moodle-password"}
        assert set(jmespath.search('"la-stack-mariadb".keys', generic)) == {
            "mariadb-root-password", "mariadb-password"}

    def test_should_let_the_hook_read_them(self, helm):
        role = find(render_chart(helm=helm, show_only=["templates/secrets/secrets-rbac.yaml"]),
                    "Role")[0]
        get = next(r for r in role["rules"] if r["verbs"] == ["get"])
        assert {"la-stack-moodle", "la-stack-mariadb"} <= set(get["resourceNames"])

    @pytest.mark.parametrize(
        ("values", "key"),
        [
            ({"moodle": {"existingSecret": ""}}, "moodle.existingSecret"),
            ({"moodle": {"mariadb": {"auth": {"existingSecret": "db"}}}},
             "moodle.mariadb.auth.existingSecret"),
            ({"moodle": {"sidecars": []}}, "moodle.sidecars"),
            ({"lrs": {"accounts": {"moodle": {"secretName": "other"}}}}, "moodle.sidecars"),
        ],
        ids=["no-moodle-secret", "db-secret-name", "sidecar-removed", "lrs-secret-mismatch"],
    )
    def test_should_fail_naming_the_key(self, helm, values, key):
        with pytest.raises(HelmFailedError) as err:
            render_chart(helm=helm, values=values, validate=False, subcharts=())
        assert mentions_key(err.value.stderr, key)


@requires_subcharts("moodle")
class TestMoodleSubchartWiring:
    """Our values land in the Bitnami moodle chart's objects (28.0.1)."""

    def objects(self, helm) -> list[dict]:
        return render_chart(helm=helm, subcharts=["moodle"])

    def deployment(self, helm) -> dict:
        return find(self.objects(helm), "Deployment", "la-stack-moodle")[0]

    def test_should_use_pullable_legacy_images(self, helm):
        objects = self.objects(helm)
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        assert (jmespath.search("containers[0].image", pod)
                == "docker.io/bitnamilegacy/moodle:5.0.2-debian-12-r1")
        db = find(objects, "StatefulSet", "la-stack-mariadb")[0]
        assert jmespath.search("spec.template.spec.containers[0].image", db).startswith(
            "docker.io/bitnamilegacy/mariadb:")

    def test_should_size_moodle_and_mariadb_by_our_values_not_a_preset(self, helm):
        """Bitnami's `resourcesPreset` applies only where `resources` is empty; ours land."""
        values = CHART_VALUES["moodle"]
        objects = self.objects(helm)
        moodle = jmespath.search("spec.template.spec.containers[?name=='la-stack-moodle'] | [0]",
                                 self.deployment(helm))
        assert moodle["resources"] == values["resources"]
        db = find(objects, "StatefulSet", "la-stack-mariadb")[0]
        mariadb = jmespath.search("spec.template.spec.containers[?name=='mariadb'] | [0]", db)
        assert mariadb["resources"] == jmespath.search("mariadb.primary.resources", values)

    def test_should_render_no_secret_of_its_own(self, helm):
        names = {o["metadata"]["name"] for o in self.objects(helm) if o["kind"] == "Secret"}
        assert not {"la-stack-moodle", "la-stack-mariadb"} & names, "no render-time passwords"

    def test_should_read_passwords_from_the_generated_secrets(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        volume = next(v for v in pod["volumes"] if v["name"] == "moodle-secrets")
        sources = [s["secret"]["name"] for s in volume["projected"]["sources"]]
        assert sources == ["la-stack-mariadb", "la-stack-moodle"]
        db = find(self.objects(helm), "StatefulSet", "la-stack-mariadb")[0]
        db_volumes = db["spec"]["template"]["spec"]["volumes"]
        secret_volumes = [v["secret"]["secretName"] for v in db_volumes if "secret" in v]
        assert "la-stack-mariadb" in secret_volumes

    def test_should_run_the_xapi_sidecar_on_moodles_volume(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        main, sidecar = pod["containers"][0], next(c for c in pod["containers"]
                                                   if c["name"] == "xapi")
        assert sidecar["image"] == main["image"], "the sidecar needs Moodle's PHP"
        assert sidecar["command"] == ["/opt/bitnami/php/bin/php", "/la-stack/xapi_wiring.php"]
        shared = {(m["name"], m.get("subPath"), m["mountPath"]) for m in main["volumeMounts"]}
        for mount in sidecar["volumeMounts"]:
            if mount["name"] == "moodle-data":
                assert (mount["name"], mount["subPath"], mount["mountPath"]) in shared
        cm = next(v for v in pod["volumes"] if v["name"] == "la-stack-xapi")
        assert jmespath.search("configMap.name", cm) == "la-stack-moodle-xapi"

    def test_should_give_the_sidecar_the_moodle_lrs_account(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        sidecar = next(c for c in pod["containers"] if c["name"] == "xapi")
        env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in sidecar["env"]}
        assert env["LRS_USERNAME"] == {"name": "la-stack-lrs-moodle", "key": "username"}
        assert env["LRS_PASSWORD"] == {"name": "la-stack-lrs-moodle", "key": "password"}

    def test_should_never_run_two_pods_on_the_rwo_volume(self, helm):
        deployment = self.deployment(helm)
        assert jmespath.search("spec.strategy.type", deployment) == "Recreate"
        assert jmespath.search("spec.replicas", deployment) == 1
        pvc = find(self.objects(helm), "PersistentVolumeClaim", "la-stack-moodle-moodle")[0]
        assert jmespath.search("spec.accessModes", pvc) == ["ReadWriteOnce"]

    def test_should_keep_moodledata_on_uninstall(self, helm):
        pvc = find(self.objects(helm), "PersistentVolumeClaim", "la-stack-moodle-moodle")[0]
        assert jmespath.search('metadata.annotations."helm.sh/resource-policy"', pvc) == "keep"

    def test_should_not_need_a_load_balancer(self, helm):
        service = find(self.objects(helm), "Service", "la-stack-moodle")[0]
        assert jmespath.search("spec.type", service) == "ClusterIP"

    def test_should_mount_a_writable_tmp_for_the_status_file(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        mount = jmespath.search("containers[?name=='xapi'] | [0].volumeMounts[?mountPath=='/tmp']",
                                pod)
        assert [m["name"] for m in mount] == ["la-stack-xapi-tmp"]
        volume = jmespath.search("volumes[?name=='la-stack-xapi-tmp'] | [0]", pod)
        assert "emptyDir" in volume

    def test_should_give_the_first_install_as_long_as_the_sidecar_waits(self, helm):
        # Until the startup probe succeeds, liveness does not run: an install that takes
        # longer than upstream's 10-minute liveness delay is not restarted midway.
        moodle = jmespath.search("spec.template.spec.containers[0]", self.deployment(helm))
        startup = moodle["startupProbe"]
        assert jmespath.search("httpGet.path", startup) == "/login/index.php"
        budget = startup["initialDelaySeconds"] + startup["periodSeconds"] * startup[
            "failureThreshold"]
        assert budget >= CHART_VALUES["logstoreXapi"]["installDeadlineSeconds"]
        assert jmespath.search("livenessProbe.tcpSocket.port", moodle) == "http"
        assert jmespath.search("livenessProbe.initialDelaySeconds", moodle) == 0

    def test_should_not_let_the_sidecar_gate_moodles_readiness(self, helm):
        # A Pod is Ready only when every container is: a probe on the sidecar that follows
        # the wiring would take Moodle out of its Service whenever the wiring fails.
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        sidecar = jmespath.search("containers[?name=='xapi'] | [0]", pod)
        assert not {"readinessProbe", "startupProbe", "livenessProbe"} & set(sidecar)

    def test_should_keep_the_sidecar_restricted(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        sc = next(c for c in pod["containers"] if c["name"] == "xapi")["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert jmespath.search("capabilities.drop", sc) == ["ALL"]
