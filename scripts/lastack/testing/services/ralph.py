"""Ralph (PyPI `ralph-malph`) on loopback, configured exactly as the chart configures it.

Ralph lives in its own venv (.tools/venvs/ralph) because its pins (pydantic, fastapi, bcrypt
4.1) must not leak into the tooling venv. The version is the chart's Ralph appVersion;
elasticsearch-py is held to 8.x, as Ralph's own sources pin it (<9) and as an 8.x cluster
requires (a 9.x client sends compatible-with=9 headers that ES 8 rejects).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lastack.chart import chart_values
from lastack.net import free_port
from lastack.paths import TOOLS_DIR
from lastack.testing.services.processes import (
    LoopbackServer,
    ManagedProcess,
    ensure_pinned_venv,
    pinned_venv_installed,
)

# The Ralph release the hooks run in (their image is Ralph's), the Ralph chart's appVersion.
VERSION = chart_values.default("hooks.image.tag")
REQUIREMENTS = (
    f"ralph-malph[backends,lrs,cli]=={VERSION}",
    "elasticsearch[async]==8.19.3",
)
VENV = TOOLS_DIR / "venvs" / "ralph"
PYTHON = VENV / "bin" / "python"
START_TIMEOUT = 60.0


def chart_env(
    hosts: str,
    auth_file: Path | str,
    ca_file: Path | str | None,
    app_dir: Path | str,
    index: str = "statements",
    allow_yellow: bool | None = None,
) -> dict[str, str]:
    """The environment the chart gives Ralph's container, read from the chart itself.

    The ES backend settings come from the rendered `templates/ralph/env-configmap.yaml`;
    `hosts` is the value release_secrets.py writes to RALPH_BACKENDS__LRS__ES__HOSTS (the
    generated Secret). Only what must point at this machine is replaced: the CA path, the
    auth.json path and Ralph's app dir (the upstream chart's own ConfigMap sets those).
    """
    from lastack.chart.render import render_chart

    values: dict[str, Any] = {"elasticsearch": {"index": index}}
    if allow_yellow is not None:  # None: the chart's default
        values["lrs"] = {"backend": {"allowYellowStatus": allow_yellow}}
    cm = render_chart(values=values, show_only=["templates/ralph/env-configmap.yaml"])[0]
    env = dict(cm["data"])
    env.update({
        "RALPH_APP_DIR": str(app_dir),
        "RALPH_RUNSERVER_AUTH_BACKENDS": "basic",
        "RALPH_AUTH_FILE": str(auth_file),
        "RALPH_BACKENDS__LRS__ES__HOSTS": hosts,
    })
    ca_key = "RALPH_BACKENDS__LRS__ES__CLIENT_OPTIONS__ca_certs"
    if ca_file:
        env[ca_key] = str(ca_file)
    else:
        env.pop(ca_key)
    return env


def installed() -> bool:
    return pinned_venv_installed(VENV, REQUIREMENTS, PYTHON)


def install(log: Any = print) -> Path:
    """Create the venv and install the pinned requirements from PyPI (quick when done)."""
    ensure_pinned_venv(VENV, REQUIREMENTS, "Ralph", PYTHON, log)
    return VENV


def run_python(code: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a snippet with Ralph's interpreter (to use Ralph's own pydantic models)."""
    return subprocess.run(
        [str(PYTHON), "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir()},
    )


@dataclass
class RalphServer(LoopbackServer):
    """uvicorn ralph.api:app on 127.0.0.1:<free port>. Use as a context manager."""

    env: dict[str, str]
    url: str = ""
    startup_seconds: float = 0.0
    workers: int | None = None  # None: uvicorn's own default, i.e. $WEB_CONCURRENCY or 1
    _process: ManagedProcess | None = None
    _workdir: Path | None = field(default=None, repr=False)

    def start(self) -> None:
        install()
        self._workdir = Path(tempfile.mkdtemp(prefix="la-stack-ralph-"))
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        argv = [str(PYTHON), "-m", "uvicorn", "ralph.api:app", "--host", "127.0.0.1",
                "--port", str(port), "--no-access-log"]  # fmt: skip
        if self.workers is not None:
            argv += ["--workers", str(self.workers)]
        env = {
            "PATH": f"{VENV / 'bin'}:/usr/bin:/bin",
            "HOME": str(self._workdir),
            "LANG": "C.UTF-8",
            **self.env,
        }
        self._process = ManagedProcess(
            "Ralph", argv, env, self._workdir / "ralph.log", self._workdir
        )
        self.startup_seconds = self._process.wait_ready(
            lambda: self.get("/__heartbeat__")[0] == 200, START_TIMEOUT, "a 200 /__heartbeat__"
        )

    def get(self, path: str, auth: tuple[str, str] | None = None) -> tuple[int, Any]:
        return self.request("GET", path, auth=auth)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 120.0,
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json", "X-Experience-API-Version": "1.0.3"}
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                raw, status = answer.read(), answer.status
        except urllib.error.HTTPError as answer:
            raw, status = answer.read(), answer.code
        try:
            return status, (json.loads(raw) if raw.strip() else None)
        except ValueError:
            return status, raw.decode(errors="replace")


