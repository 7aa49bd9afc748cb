"""The Moodle `xapi` sidecar program (files/moodle/xapi_wiring.php) when something is
wrong: every failure is one sentence, and a failed wiring is retried without exiting
(the sidecar as the Pod runs it, with real sleeps)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.hooks.moodle_standin import (
    PHP,
    VERSION,
    ArchiveServer,
    StandinMoodle,
    plugin_tree,
    requires_php,
    tarball,
    tree_sha256,
)
from tests.hooks.moodle_support import XAPI_WIRING, run_wiring, wiring_config
from tests.hooks.support import assert_one_sentence_failure

pytestmark = [pytest.mark.hooks, requires_php]


class RunningSidecar:
    """The program as the Pod runs it (`php xapi_wiring.php`, real sleeps), output to files."""

    def __init__(self, tmp_path: Path, config: dict) -> None:
        self.status_file = tmp_path / "xapi-status.json"
        config_file = tmp_path / "wiring.json"
        config_file.write_text(json.dumps({**config, "statusFile": str(self.status_file)}))
        self.stdout, self.stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
        env = {"PATH": os.environ.get("PATH", ""), "WIRING_CONFIG": str(config_file),
               "LRS_USERNAME": "moodle", "LRS_PASSWORD": "s3cret&pw"}
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.process = subprocess.Popen([PHP, str(XAPI_WIRING)], stdout=out, stderr=err,
                                            env=env)

    def status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def errors(self) -> list[str]:
        return self.stderr.read_text().splitlines()

    def wait_for(self, condition: Callable[[], bool], what: str, limit: float = 60) -> None:
        """Polls until `condition` holds; the limit only bounds the test, it asserts nothing."""
        deadline = time.monotonic() + limit
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what}: exit {self.process.poll()}, stderr {self.errors()}, "
                            f"stdout {self.stdout.read_text()[-500:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def refused_port() -> Iterator[socket.socket]:
    """A loopback port that is bound but not listening, so connecting to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


class TestXapiWiring:
    """xapi_wiring.php refuses with one sentence, and retries."""

    # Each failure is one sentence on stderr and a non-zero exit, and changes nothing.

    def test_should_refuse_an_archive_with_another_checksum(self, tmp_path, moodle):
        files = plugin_tree()
        tampered = {**files, "settings.php": b"<?php // changed\n"}
        with ArchiveServer(tarball(tampered)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert "checksum" in assert_one_sentence_failure(result)
        assert not (moodle.plugin_dir).exists()

    def test_should_refuse_another_plugin_version(self, tmp_path, moodle):
        files = plugin_tree(version=2026072000)
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert str(VERSION) in assert_one_sentence_failure(result)

    def test_should_refuse_an_unsupported_moodle(self, tmp_path):
        moodle = StandinMoodle(tmp_path / "moodle", branch=503)
        before = moodle.tree()
        result = run_wiring(tmp_path, wiring_config(moodle, "http://127.0.0.1:9/x", "0" * 64))
        assert "supports Moodle 4.5 to 5.2" in assert_one_sentence_failure(result)
        assert moodle.tree() == before

    def test_should_keep_the_password_off_every_command_line(self, tmp_path, moodle):
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert result.returncode == 0, result.stderr
        assert any("--configure" in line for line in moodle.command_lines)
        assert not [line for line in moodle.command_lines if "s3cret&pw" in line]
        assert "s3cret&pw" not in result.stdout + result.stderr

    def test_should_refuse_to_downgrade(self, tmp_path, moodle):
        newer = moodle.plugin_dir
        newer.mkdir(parents=True)
        (newer / "version.php").write_text("<?php\n$plugin->version = 2027010100;\n")
        result = run_wiring(tmp_path, wiring_config(moodle, "http://127.0.0.1:9/x", "0" * 64))
        assert "downgrade" in assert_one_sentence_failure(result)

    def test_should_say_when_the_download_fails(self, tmp_path, moodle):
        result = run_wiring(tmp_path, wiring_config(moodle, "http://127.0.0.1:9/x", "0" * 64))
        assert "cannot download" in assert_one_sentence_failure(result)

    def test_should_give_up_when_moodle_never_installs(self, tmp_path):
        moodle = StandinMoodle(tmp_path / "moodle", installed=False)
        config = wiring_config(moodle, "http://127.0.0.1:9/x", "0" * 64, installDeadlineSeconds=0)
        result = run_wiring(tmp_path, config)
        assert "did not finish installing" in assert_one_sentence_failure(result)

    def test_should_report_a_failed_upgrade(self, tmp_path, moodle):
        moodle.update_state(upgrade_fails=True)
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert "upgrade failed" in assert_one_sentence_failure(result)
        assert "logstore_xapi/endpoint" not in moodle.state["settings"]

    def test_should_require_the_lrs_credentials(self, tmp_path, moodle):
        result = run_wiring(tmp_path, wiring_config(moodle, "http://x", "0" * 64), password="")
        assert "LRS_PASSWORD" in assert_one_sentence_failure(result)

    # A wiring error never ends the sidecar: it logs, writes its state, and tries again.

    def test_should_keep_running_and_retry_while_the_plugin_url_is_unreachable(
        self, tmp_path, moodle, refused_port
    ):
        port = refused_port.getsockname()[1]
        url = f"http://127.0.0.1:{port}/xapi.tar.gz"
        files = plugin_tree()
        config = wiring_config(moodle, url, tree_sha256(files),
                               retry={"initialSeconds": 1, "maxSeconds": 2})
        sidecar = RunningSidecar(tmp_path, config)
        try:
            sidecar.wait_for(lambda: len(sidecar.errors()) >= 3, "three failed attempts")
            assert sidecar.process.poll() is None, "the sidecar must not exit on a wiring error"
            sentence = re.compile(
                rf"^error: cannot download logstore_xapi from {re.escape(url)} "
                r"\(attempt (\d+), next in (\d+)s\)\.$")
            matches = [sentence.match(line) for line in sidecar.errors()[:3]]
            assert all(matches), sidecar.errors()
            # Doubling from initialSeconds (1), capped at maxSeconds (2).
            assert [(m[1], m[2]) for m in matches] == [("1", "1"), ("2", "2"), ("3", "2")]
            status = sidecar.status()
            assert status["state"] == "retrying"
            assert status["error"] == f"cannot download logstore_xapi from {url}."
            assert not moodle.plugin_dir.exists()

            refused_port.close()
            with ArchiveServer(tarball(files), port=port):
                sidecar.wait_for(lambda: sidecar.status().get("state") == "wired",
                                 "the wiring once the URL answers")
                sidecar.wait_for(lambda: "cron run finished" in sidecar.stdout.read_text(),
                                 "the first cron run")
            assert sidecar.process.poll() is None, "after the wiring the sidecar runs cron"
        finally:
            sidecar.stop()
        assert (moodle.plugin_dir / "version.php").read_bytes() == files["version.php"]
        settings = moodle.state["settings"]
        assert settings["logstore_xapi/endpoint"] == config["endpoint"]
        assert settings["tool_log/enabled_stores"] == "logstore_standard,logstore_xapi"
        assert "wired after" in sidecar.stdout.read_text()

    def test_should_retry_a_failure_that_is_not_the_network(self, tmp_path, moodle):
        moodle.update_state(upgrade_fails=True)
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            config = wiring_config(moodle, server.url, tree_sha256(files),
                                   retry={"initialSeconds": 1, "maxSeconds": 1})
            sidecar = RunningSidecar(tmp_path, config)
            try:
                sidecar.wait_for(lambda: len(sidecar.errors()) >= 2, "two failed attempts")
                assert sidecar.process.poll() is None
                assert all("upgrade failed" in line for line in sidecar.errors()[:2])
                moodle.update_state(upgrade_fails=False)
                sidecar.wait_for(lambda: sidecar.status().get("state") == "wired",
                                 "the wiring once the upgrade succeeds")
            finally:
                sidecar.stop()
        assert moodle.state["settings"]["logstore_xapi/username"] == "moodle"
