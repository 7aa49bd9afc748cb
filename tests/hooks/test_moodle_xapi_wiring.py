"""The Moodle `xapi` sidecar program (files/moodle/xapi_wiring.php), run by real PHP.

The program runs against the stand-in Moodle tree of moodle_standin.py, in the layout before
Moodle 5.1 and in the `public/` one. The plugin archive is a .tar.gz made here and served
from a loopback HTTP server.

Covered here: retrying a failed wiring without exiting (the sidecar as the Pod runs it, with
real sleeps), waiting for the install, the supported Moodle range, download, tree checksum,
version pinning, install-in-place, the upgrade call, every setting, enabled stores kept in
order, idempotency, cron runs with the delivery queue logged, and one-sentence failures.
Only a real cluster shows Moodle's own upgrade and the plugin sending statements to Ralph.
"""

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

from lastack.paths import CHART_DIR
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

PROGRAM = CHART_DIR / "files" / "moodle" / "xapi_wiring.php"
pytestmark = [pytest.mark.hooks, requires_php]

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
        "<?php\nrequire " + json.dumps(str(PROGRAM)) + ";\n"
        "exit(main(['WIRING_CONFIG' => " + json.dumps(str(config_file)) + ", "
        "'LRS_USERNAME' => 'moodle', 'LRS_PASSWORD' => " + json.dumps(password) + "], "
        "function ($s) {}, " + str(cron_runs) + ", 1));\n"
    )
    return subprocess.run(
        [PHP, str(driver)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(params=[500, 502], ids=["moodle-5.0", "moodle-5.2-public"])
def moodle(request: pytest.FixtureRequest, tmp_path: Path) -> StandinMoodle:
    return StandinMoodle(tmp_path / "moodle", branch=request.param)


class TestInstallAndConfigure:
    """A first run installs, upgrades, configures, enables and starts cron."""

    def test_should_wire_moodle_to_ralph(self, tmp_path, moodle):
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert result.returncode == 0, result.stderr
        plugin = moodle.plugin_dir
        assert (plugin / "version.php").read_bytes() == files["version.php"]
        assert (plugin / "classes/log/store.php").exists()
        settings = moodle.state["settings"]
        assert settings["logstore_xapi/endpoint"] == "http://la-stack-ralph.la-stack.svc:8080/xAPI/"
        assert settings["logstore_xapi/username"] == "moodle"
        assert settings["logstore_xapi/password"] == "s3cret&pw"
        assert settings["logstore_xapi/backgroundmode"] == "1"
        assert settings["logstore_xapi/maxbatchsize"] == "1000"
        assert settings["tool_log/enabled_stores"] == "logstore_standard,logstore_xapi"
        calls = moodle.state["calls"]
        assert calls.index("upgrade") < calls.index("set logstore_xapi/endpoint")
        assert calls[-1] == "cron"
        assert moodle.state["plugin_version"] == VERSION

    def test_should_change_nothing_on_a_second_run(self, tmp_path, moodle):
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            config = wiring_config(moodle, server.url, tree_sha256(files))
            assert run_wiring(tmp_path, config).returncode == 0
            installed = (moodle.plugin_dir / "version.php").stat().st_mtime_ns
            moodle.update_state(calls=[])
            second = run_wiring(tmp_path, config)
        assert second.returncode == 0, second.stderr
        assert "already installed" in second.stdout
        assert "upgrade" not in moodle.state["calls"]
        assert "set tool_log/enabled_stores" not in moodle.state["calls"]
        after = (moodle.plugin_dir / "version.php").stat().st_mtime_ns
        assert after == installed
        assert moodle.state["settings"]["tool_log/enabled_stores"].count("logstore_xapi") == 1

    def test_should_keep_stores_already_enabled(self, tmp_path, moodle):
        settings = {
            **moodle.state["settings"],
            "tool_log/enabled_stores": "logstore_standard,logstore_database",
        }
        moodle.update_state(settings=settings)
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert moodle.state["settings"]["tool_log/enabled_stores"] == (
            "logstore_standard,logstore_database,logstore_xapi"
        )

    def test_should_upgrade_an_older_plugin_in_place(self, tmp_path, moodle):
        old = moodle.plugin_dir
        old.mkdir(parents=True)
        (old / "version.php").write_text("<?php\n$plugin->version = 2026022300;\n")
        (old / "obsolete.php").write_text("<?php\n")
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert result.returncode == 0, result.stderr
        assert not (old / "obsolete.php").exists()
        assert "upgrade" in moodle.state["calls"]

    def test_should_leave_a_setting_forced_in_config_php(self, tmp_path, moodle):
        moodle.update_state(forced=["logstore_xapi/maxbatchsize"])
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert result.returncode == 0, result.stderr
        assert "fixed in config.php" in result.stdout
        assert "logstore_xapi/maxbatchsize" not in moodle.state["settings"]

    def test_should_run_cron_repeatedly(self, tmp_path, moodle):
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)), cron_runs=3)
        assert moodle.state["calls"].count("cron") == 3

    def test_should_log_the_delivery_queue_after_each_cron_run(self, tmp_path, moodle):
        moodle.queue([{"verb": {"id": "http://id.tincanapi.com/verb/viewed"}}] * 4, failed=1)
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)),
                                cron_runs=2)
        line = ("delivery: 4 events queued (logstore_xapi_log), "
                "1 in failed batches (logstore_xapi_failed_log)")
        assert result.stdout.count(line) == 2, result.stdout

    def test_should_accept_a_file_url_for_offline_installs(self, tmp_path, moodle):
        files = plugin_tree()
        archive = tmp_path / "mirror" / "xapi.tar.gz"
        archive.parent.mkdir()
        archive.write_bytes(tarball(files))
        config = wiring_config(moodle, f"file://{archive}", tree_sha256(files))
        assert run_wiring(tmp_path, config).returncode == 0


class TestFailures:
    """Each failure is one sentence on stderr and a non-zero exit, and changes nothing."""

    def one_sentence(self, result: subprocess.CompletedProcess) -> str:
        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        return lines[0]

    def test_should_refuse_an_archive_with_another_checksum(self, tmp_path, moodle):
        files = plugin_tree()
        tampered = {**files, "settings.php": b"<?php // changed\n"}
        with ArchiveServer(tarball(tampered)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert "checksum" in self.one_sentence(result)
        assert not (moodle.plugin_dir).exists()

    def test_should_refuse_another_plugin_version(self, tmp_path, moodle):
        files = plugin_tree(version=2026072000)
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert str(VERSION) in self.one_sentence(result)

    def test_should_refuse_an_unsupported_moodle(self, tmp_path):
        moodle = StandinMoodle(tmp_path / "moodle", branch=503)
        before = moodle.tree()
        result = run_wiring(tmp_path, wiring_config(moodle, "http://127.0.0.1:9/x", "0" * 64))
        assert "supports Moodle 4.5 to 5.2" in self.one_sentence(result)
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
        assert "downgrade" in self.one_sentence(result)

    def test_should_say_when_the_download_fails(self, tmp_path, moodle):
        result = run_wiring(tmp_path, wiring_config(moodle, "http://127.0.0.1:9/x", "0" * 64))
        assert "cannot download" in self.one_sentence(result)

    def test_should_give_up_when_moodle_never_installs(self, tmp_path):
        moodle = StandinMoodle(tmp_path / "moodle", installed=False)
        config = wiring_config(moodle, "http://127.0.0.1:9/x", "0" * 64, installDeadlineSeconds=0)
        assert "did not finish installing" in self.one_sentence(run_wiring(tmp_path, config))

    def test_should_report_a_failed_upgrade(self, tmp_path, moodle):
        moodle.update_state(upgrade_fails=True)
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert "upgrade failed" in self.one_sentence(result)
        assert "logstore_xapi/endpoint" not in moodle.state["settings"]

    def test_should_require_the_lrs_credentials(self, tmp_path, moodle):
        result = run_wiring(tmp_path, wiring_config(moodle, "http://x", "0" * 64), password="")
        assert "LRS_PASSWORD" in self.one_sentence(result)


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
            self.process = subprocess.Popen([PHP, str(PROGRAM)], stdout=out, stderr=err, env=env)

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


class TestRetry:
    """A wiring error never ends the sidecar: it logs, writes its state, and tries again."""

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


class TestPinnedChecksum:
    """The digest algorithm of the program matches the documented one."""

    def test_should_compute_the_same_tree_digest_as_the_documentation(self, tmp_path):
        files = plugin_tree()
        root = tmp_path / "tree"
        for path, data in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
        script = (
            f"<?php require {json.dumps(str(PROGRAM))};\n"
            f"echo tree_sha256({json.dumps(str(root))});\n"
        )
        out = subprocess.run(
            [PHP, "-r", script.removeprefix("<?php ")], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == tree_sha256(files)
