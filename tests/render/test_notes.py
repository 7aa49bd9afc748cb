"""NOTES.txt: after any install, where each component is and where each credential lives."""

from __future__ import annotations

import json
import re
import subprocess

from lastack.render import effective_chart_dir, find, render_chart
from lastack.toolchain import HELMS


def notes(*sets: str, helm: str = "helm4") -> str:
    """NOTES as `helm install --dry-run=client` prints them (`helm template` does not render
    NOTES). Helm 3's client dry-run still calls the cluster, so these cases use Helm 4."""
    cmd = [str(HELMS[helm].binary), "install", "la-stack", str(effective_chart_dir()),
           "--dry-run=client", "--namespace", "la-stack", "--set", "preflight.requireEckApi=false"]
    for value in sets:
        cmd += ["--set", value]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return out[out.index("NOTES:"):]


class TestNotes:
    """The access information names real Services and generated Secrets, never a value."""

    def test_should_point_at_every_generated_credential(self):
        text = notes()
        config = json.loads(find(render_chart(subcharts=()), "ConfigMap",
                                 "la-stack-secrets-hook")[0]["data"]["secrets.json"])
        generated = {e["secret"] for key in ("lrsAccounts", "generic") for e in config[key]}
        named = set(re.findall(r"get secret (\S+) -o", text))
        assert {"la-stack-lrs-admin", "la-stack-lrs-moodle", "la-stack-moodle",
                "la-stack-superset"} <= named
        assert named - {"la-stack-es-http-certs-public", "la-stack-es-elastic-user"} <= (
            generated | {"la-stack-es-superset"})

    def test_should_give_port_forward_commands(self):
        text = notes()
        assert "port-forward svc/la-stack-ralph 8080:8080" in text
        assert "port-forward svc/la-stack-moodle" in text
        assert "port-forward svc/la-stack-superset 8088:8088" in text
        assert "helm test la-stack -n la-stack --filter name=la-stack-test-data-path" in text

    def test_should_leave_out_disabled_components(self):
        text = notes("moodle.enabled=false", "ralph.enabled=false")
        assert "Moodle" not in text
        assert "Ralph (xAPI LRS)" not in text
        assert "Elasticsearch" in text

