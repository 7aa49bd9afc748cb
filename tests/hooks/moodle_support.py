"""The Moodle sidecar program (files/moodle/xapi_wiring.php) run once against the
stand-in Moodle: its config and a driver that ends its waits at once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from lastack.paths import CHART_DIR
from tests.hooks.moodle_standin import PHP, VERSION, StandinMoodle

XAPI_WIRING = CHART_DIR / "files" / "moodle" / "xapi_wiring.php"


def wiring_config(moodle: StandinMoodle, url: str, digest: str, **overrides: object) -> dict:
    config = {
        "moodleDir": str(moodle.root),
        "php": PHP,
        "endpoint": "http://la-stack-ralph.la-stack.svc:8080/xAPI/",
        "plugin": {"release": "v5.1.0", "version": VERSION, "url": url, "treeSha256": digest,
                   "supported": [405, 502]},
        "settings": {"backgroundmode": "1", "maxbatchsize": "1000", "resendfailedbatches": "1"},
        "cronIntervalSeconds": 60,
        "installDeadlineSeconds": 5,
    }
    return {**config, **overrides}


def run_wiring(
    tmp_path: Path, config: dict, cron_runs: int = 1, password: str = "s3cret&pw"
) -> subprocess.CompletedProcess:
    """Run main() for one attempt with a no-op sleep, so waits and the cron loop end quickly."""
    config_file = tmp_path / "wiring.json"
    config_file.write_text(json.dumps(config))
    driver = tmp_path / "driver.php"
    driver.write_text(
        "<?php\nrequire " + json.dumps(str(XAPI_WIRING)) + ";\n"
        "exit(main(['WIRING_CONFIG' => " + json.dumps(str(config_file)) + ", "
        "'LRS_USERNAME' => 'moodle', 'LRS_PASSWORD' => " + json.dumps(password) + "], "
        "function ($s) {}, " + str(cron_runs) + ", 1));\n"
    )
    return subprocess.run(
        [PHP, str(driver)], capture_output=True, text=True, timeout=60, check=False
    )
