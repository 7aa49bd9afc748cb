"""`helm test`: the Pod that posts through Ralph and counts in Elasticsearch."""

from __future__ import annotations

import json

import jmespath

from lastack.chart.render import find, render_chart
from tests.render.support import CA_SECRET, ES_URL, env_of, restricted, secrets_config


class TestHelmTest:
    """`helm test` posts through Ralph and counts in Elasticsearch with generated accounts."""

    TEMPLATE = ["templates/helm-test/data-path-test.yaml"]

    def pod(self, helm) -> dict:
        return render_chart(helm=helm, show_only=self.TEMPLATE)[0]

    def test_should_be_a_test_hook(self, helm):
        annotations = self.pod(helm)["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "test"
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]

    def test_should_use_the_generated_accounts(self, helm):
        pod = self.pod(helm)["spec"]
        restricted(pod)
        env = env_of(jmespath.search("containers[0]", pod))
        assert env["LRS_URL"] == "http://la-stack-ralph.la-stack.svc:8080/xAPI"
        assert jmespath.search("LRS_PASSWORD.secretKeyRef.name", env) == "la-stack-lrs-helm-test"
        assert jmespath.search("ES_PASSWORD.secretKeyRef.name", env) == "la-stack-es-superset"
        assert env["ES_URL"] == ES_URL
        ca = next(v for v in pod["volumes"] if v["name"] == "es-ca")
        assert jmespath.search("secret.secretName", ca) == CA_SECRET

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
