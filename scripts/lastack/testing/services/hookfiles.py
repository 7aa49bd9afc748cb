"""The chart's hook programs, as tests and benchmarks use them: imported or run as the Job runs
them (`python3 /hooks/<name>.py` with only its environment)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from lastack.paths import CHART_DIR

HOOKS_DIR = CHART_DIR / "files" / "hooks"
TEMPLATE_FILE = CHART_DIR / "files" / "elasticsearch" / "statements-template.json"
SCRIPT_FILE = CHART_DIR / "files" / "elasticsearch" / "statements-dimensions.painless"
PROGRAMS_CONFIGMAP = "templates/hooks/programs-configmap.yaml"


def bootstrap_config(values: dict | None = None) -> dict:
    """es_bootstrap.py's config as the chart renders it from `values`."""
    from lastack.chart.render import render_chart

    (cm,) = render_chart(values=values, show_only=[PROGRAMS_CONFIGMAP], subcharts=())
    return json.loads(cm["data"]["es-bootstrap.json"])


def bootstrap_env(es_url: str, username: str, password: str, ca_file: Path | str,
                  config_file: Path, deadline: float = 60) -> dict[str, str]:
    """es_bootstrap.py's environment as the chart's Job sets it, with the chart's files."""
    return {"ES_URL": es_url, "ES_USERNAME": username, "ES_PASSWORD": password,
            "ES_CA_FILE": str(ca_file), "CONFIG_FILE": str(config_file),
            "TEMPLATE_FILE": str(TEMPLATE_FILE), "SCRIPT_FILE": str(SCRIPT_FILE),
            "DEADLINE_SECONDS": f"{deadline:g}"}


def import_hook(name: str) -> ModuleType:
    """Import a hook module in-process, as its siblings import it from /hooks."""
    if str(HOOKS_DIR) not in sys.path:
        sys.path.append(str(HOOKS_DIR))
    return importlib.import_module(name)


def run_hook(
    program: str, env: dict[str, str], python: str | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """Run `<program>.py` with only `env` (plus PATH, HOME and LANG), capturing its output."""
    base = {"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir(), "LANG": "C.UTF-8"}
    return subprocess.run(
        [python or sys.executable, str(HOOKS_DIR / f"{program}.py")],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
