"""Moodle: pullable images, credentials from generated Secrets, the xapi sidecar."""

from __future__ import annotations

import json

import pytest

from lastack.render import HelmFailedError, find, render_chart
from tests.conftest import mentions_key, requires_subcharts

XAPI_CONFIGMAP = ["templates/moodle/xapi-configmap.yaml"]


def secrets_config(objects: list[dict]) -> dict:
    cm = find(objects, "ConfigMap", "la-stack-secrets-hook")[0]
    return json.loads(cm["data"]["secrets.json"])


class TestXapiWiringConfig:
    """The ConfigMap the sidecar reads: pinned plugin, Ralph endpoint, delivery."""

    def config(self, helm, values=None) -> dict:
        cm = render_chart(helm=helm, values=values, show_only=XAPI_CONFIGMAP)[0]
        assert cm["metadata"]["name"] == "la-stack-moodle-xapi"
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
        assert cm[0]["metadata"]["name"] == "lrs-moodle-xapi"
        assert config["endpoint"] == "http://lrs-ralph.la-stack.svc:8080/xAPI/"

    def test_should_send_in_background_batches_sized_for_ten_per_second(self, helm):
        config = self.config(helm)
        per_second = int(config["settings"]["maxbatchsize"]) / config["cronIntervalSeconds"]
        assert config["settings"]["backgroundmode"] == "1"
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
        assert set(generic["la-stack-moodle"]["keys"]) == {"moodle-password"}
        assert set(generic["la-stack-mariadb"]["keys"]) == {
            "mariadb-root-password", "mariadb-password"}

    def test_should_let_the_hook_read_them(self, helm):
        role = find(render_chart(helm=helm, show_only=["templates/hooks/secrets-rbac.yaml"]),
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
        assert pod["containers"][0]["image"] == "docker.io/bitnamilegacy/moodle:5.0.2-debian-12-r1"
        db = find(objects, "StatefulSet", "la-stack-mariadb")[0]
        assert db["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
            "docker.io/bitnamilegacy/mariadb:")

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
        assert cm["configMap"]["name"] == "la-stack-moodle-xapi"

    def test_should_give_the_sidecar_the_moodle_lrs_account(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        sidecar = next(c for c in pod["containers"] if c["name"] == "xapi")
        env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef") for e in sidecar["env"]}
        assert env["LRS_USERNAME"] == {"name": "la-stack-lrs-moodle", "key": "username"}
        assert env["LRS_PASSWORD"] == {"name": "la-stack-lrs-moodle", "key": "password"}

    def test_should_never_run_two_pods_on_the_rwo_volume(self, helm):
        deployment = self.deployment(helm)
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
        assert deployment["spec"]["replicas"] == 1
        pvc = find(self.objects(helm), "PersistentVolumeClaim", "la-stack-moodle-moodle")[0]
        assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]

    def test_should_keep_moodledata_on_uninstall(self, helm):
        pvc = find(self.objects(helm), "PersistentVolumeClaim", "la-stack-moodle-moodle")[0]
        assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    def test_should_not_need_a_load_balancer(self, helm):
        service = find(self.objects(helm), "Service", "la-stack-moodle")[0]
        assert service["spec"]["type"] == "ClusterIP"

    def test_should_keep_the_sidecar_restricted(self, helm):
        pod = self.deployment(helm)["spec"]["template"]["spec"]
        sc = next(c for c in pod["containers"] if c["name"] == "xapi")["securityContext"]
        assert sc["runAsNonRoot"] is True
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
