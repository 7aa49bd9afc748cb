"""Headless Chromium driven over the DevTools protocol on a pipe: no extra Python package,
only Debian's `chromium` binary."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from lastack import polling

WIDTH, HEIGHT = 1600, 1000
PAGE_TIMEOUT = 90.0
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--remote-debugging-pipe",
)  # fmt: skip


class BrowserError(RuntimeError):
    pass


def high_fd(fd: int) -> int:
    """The same pipe end on a number above 9 (close-on-exec), so fds 3 and 4 stay free."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Chromium:
    """Headless Chromium, one page, spoken to over --remote-debugging-pipe (fds 3 and 4)."""

    def __init__(self, binary: str) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="la-stack-chromium-"))
        to_chrome_r, self._to_chrome = (high_fd(fd) for fd in os.pipe())
        self._from_chrome, from_chrome_w = (high_fd(fd) for fd in os.pipe())

        def wire_fds() -> None:
            # Chromium reads commands on fd 3 and answers on fd 4; dup2 onto another number
            # also clears close-on-exec.
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        argv = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"]
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=wire_fds,  # single-threaded here
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = self.command("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self.command("Target.attachToTarget", {"targetId": target, "flatten": True})
        self.session = attached["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")
        self.viewport(HEIGHT)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise BrowserError("Chromium stopped answering")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise BrowserError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def command(
        self, method: str, params: dict | None = None, session: str | None = None
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + PAGE_TIMEOUT
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error'].get('message')}")
                return answer.get("result", {})
            self.events.append(answer)

    def page(self, method: str, params: dict | None = None) -> dict[str, Any]:
        return self.command(method, params, self.session)

    def evaluate(self, expression: str) -> Any:
        result = self.page("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def viewport(self, height: int) -> None:
        metrics = {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.page("Emulation.setDeviceMetricsOverride", metrics)

    def goto(self, url: str) -> None:
        self.page("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'", what=f"loading {url}")

    def wait_for(self, expression: str, what: str, timeout: float = PAGE_TIMEOUT) -> None:
        try:
            polling.poll(what, lambda: polling.Probe(done=bool(self.evaluate(expression))),
                         timeout)
        except polling.WaitTimeout:
            raise BrowserError(f"gave up {what} after {timeout:.0f}s") from None

    def screenshot(self, path: Path) -> None:
        metrics = self.page("Page.getLayoutMetrics")
        height = int(metrics.get("cssContentSize", {}).get("height", HEIGHT))
        self.viewport(max(HEIGHT, min(height, 6000)))
        time.sleep(1.0)  # let the charts re-lay out at the new size
        shot = self.page("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))
        self.viewport(HEIGHT)

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.command("Browser.close")
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(5)
        for fd in (self._to_chrome, self._from_chrome):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)
