"""NOTES.txt: after any install, where each component is and where each credential lives."""

from __future__ import annotations

import json
import re
import subprocess

from lastack.chart.render import effective_chart_dir, find, render_chart
from lastack.paths import CHART_DIR, REPO_ROOT
from lastack.tools.toolchain import HELMS


def notes(*sets: str, helm: str = "helm4") -> str:
    """NOTES as `helm install --dry-run=client` prints them (`helm template` does not render
    NOTES). Helm 3's client dry-run still calls the cluster, so these cases use Helm 4."""
    cmd = [str(HELMS[helm].binary), "install", "la-stack", str(effective_chart_dir()),
           "--dry-run=client", "--namespace", "la-stack", "--set", "preflight.requireEckApi=false",
           "--set", "preflight.requireCnpgApi=false"]
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
        assert "port-forward svc/la-stack-dashboards-web-server 8088:8088" in text
        assert "helm test la-stack -n la-stack --filter name=la-stack-test-data-path" in text

    def test_should_leave_out_disabled_components(self):
        text = notes("moodle.enabled=false", "ralph.enabled=false")
        assert "Moodle" not in text
        assert "Ralph (xAPI LRS)" not in text
        assert "Elasticsearch" in text


class TestNotesForMoodle:
    """What NOTES say about the in-cluster Moodle and about the sites connected as sources."""

    def test_should_print_the_setup_command_of_each_source(self):
        text = notes("moodle.enabled=false", "lrs.sources.campus.mbox=mailto:m@campus.example.org")
        script = find(render_chart(subcharts=(), values={
            "moodle": {"enabled": False},
            "lrs": {"sources": {"campus": {"mbox": "mailto:m@campus.example.org"}}}}),
            "ConfigMap", "la-stack-moodle-setup")[0]
        assert "campus.sh" in script["data"]
        assert ("kubectl -n la-stack get configmap la-stack-moodle-setup "
                "-o jsonpath='{.data.campus\\.sh}' | sh") in text
        assert "xapi_setup.php --moodle=" in text

    def test_should_say_the_bitnami_moodle_is_for_evaluation(self):
        assert "no security support since 2026-10-05" in notes()
        own = notes("moodle.image.repository=lms/moodle", "moodle.image.tag=5.2.1")
        assert "no security support" not in own


def notes_timeout_seconds(text: str) -> int:
    (minutes,) = re.findall(r"--timeout (\d+)m", text)
    return int(minutes) * 60


def hook_job_deadlines(**values) -> dict[str, int]:
    return {job["metadata"]["name"]: job["spec"]["activeDeadlineSeconds"]
            for job in find(render_chart(subcharts=(), values=values or None), "Job")
            if "helm.sh/hook" in job["metadata"].get("annotations", {})}


DOCUMENTED_COMMANDS = [CHART_DIR / "README.md", REPO_ROOT / "README.md",
                       *sorted((REPO_ROOT / "docs").glob("*.md"))]


class TestHelmTimeout:
    """Helm waits for each hook Job up to `--timeout` (default 5m); ours must outlast them."""

    def test_should_print_a_timeout_longer_than_every_hook_deadline(self):
        deadlines = hook_job_deadlines()
        assert max(deadlines.values()) > 300, "the case needs a hook beyond Helm's default"
        assert notes_timeout_seconds(notes()) > max(deadlines.values())

    def test_should_follow_the_deadline_values(self):
        deadlines = hook_job_deadlines(supersetWiring={"deadlineSeconds": 1800},
                                       hooks={"deadlineSeconds": 1200})
        text = notes("supersetWiring.deadlineSeconds=1800", "hooks.deadlineSeconds=1200")
        assert notes_timeout_seconds(text) > max(deadlines.values())

    def test_should_document_the_same_timeout_on_every_install_command(self):
        expected = f"--timeout {notes_timeout_seconds(notes()) // 60}m"
        commands = []
        for path in DOCUMENTED_COMMANDS:
            text = path.read_text().replace("\\\n", " ")
            commands += [(path.name, line) for line in text.splitlines()
                         if re.search(r"helm (install|upgrade) la-stack ", line)]
        assert len(commands) >= 4
        for name, line in commands:
            assert expected in line, f"{name}: {line.strip()}"
