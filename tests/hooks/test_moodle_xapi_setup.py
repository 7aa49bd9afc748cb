"""The setup script for an existing Moodle (files/moodle/xapi_setup.php), run by real PHP.

It runs against the stand-in Moodle tree of moodle_standin.py in both layouts (before 5.1
and `public/`), and against real Ralph (the hooks tier's shared Ralph, wired by the secrets
hook) with the `moodle` account that hook generated. The stand-in's emit task sends the
queued statements with the settings the script wrote, so a statement found in Ralph shows
that the endpoint and account it configured work.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from lastack.net import free_port
from lastack.paths import CHART_DIR
from lastack.testing import xapi
from tests.hooks.moodle_standin import (
    PHP,
    ArchiveServer,
    StandinMoodle,
    plugin_tree,
    requires_php,
    tarball,
    tree_sha256,
)
from tests.hooks.support import assert_one_sentence_failure

PROGRAM = CHART_DIR / "files" / "moodle" / "xapi_setup.php"
pytestmark = [pytest.mark.hooks, requires_php]
DELIVERY = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["logstoreXapi"]
SETTINGS = {"backgroundmode": "1", "maxbatchsize": str(DELIVERY["delivery"]["maxBatchSize"]),
            "resendfailedbatches": "1"}


class ProcessList:
    """Samples every process's command line (as `ps` shows it) while a run lasts."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                # A process may end between listing and reading.
                with contextlib.suppress(OSError):
                    raw = cmdline.read_bytes()
                    self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))

    def __enter__(self) -> ProcessList:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def archive() -> Iterator[tuple[str, str]]:
    files = plugin_tree()
    with ArchiveServer(tarball(files)) as server:
        yield server.url, tree_sha256(files)


@pytest.fixture
def account(es_stack) -> tuple[str, str]:
    return es_stack.login("t-lrs-moodle")


def setup_json(tmp_path: Path, endpoint: str, username: str, archive: tuple[str, str]) -> Path:
    """setup.json as the chart renders it for a source, pointed at this machine."""
    url, digest = archive
    plugin = {**DELIVERY["plugin"], "url": url, "treeSha256": digest}
    path = tmp_path / "setup.json"
    path.write_text(json.dumps({"endpoint": endpoint, "username": username, "plugin": plugin,
                                "settings": SETTINGS}))
    return path


def run_setup(moodle: StandinMoodle, config: Path, password: str, *extra: str
              ) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PHP, str(PROGRAM), f"--moodle={moodle.root}", f"--config={config}",
         "--password-file=-", *extra],
        input=password + "\n", capture_output=True, text=True, timeout=120, check=False)


def one_sentence(result: subprocess.CompletedProcess) -> str:
    """The hooks' one-sentence failure, and a sentence that ends like one."""
    line = assert_one_sentence_failure(result)
    assert line.endswith("."), line
    return line


class TestXapiSetup:
    """xapi_setup.php: it delivers, refuses with one sentence, reports."""

    # Install, configure, enable, then a queued statement reaches real Ralph.

    def test_should_wire_the_plugin_and_deliver_to_ralph(
            self, tmp_path, moodle, archive, account, ralph_server):
        queued = xapi.generate(3, seed=moodle.branch)
        moodle.queue(queued)
        config = setup_json(tmp_path, ralph_server.url + "/xAPI/", account[0], archive)
        result = run_setup(moodle, config, account[1])
        assert result.returncode == 0, result.stdout + result.stderr
        assert (moodle.plugin_dir / "version.php").read_bytes() == plugin_tree()["version.php"]
        settings = moodle.state["settings"]
        assert settings["logstore_xapi/endpoint"] == ralph_server.url + "/xAPI/"
        assert settings["logstore_xapi/username"] == account[0]
        assert settings["logstore_xapi/password"] == account[1]
        assert {k: settings[f"logstore_xapi/{k}"] for k in SETTINGS} == SETTINGS
        assert settings["tool_log/enabled_stores"] == "logstore_standard,logstore_xapi"
        shown = re.search(r"delivered: statement (\S+) is stored", result.stdout)
        assert shown, result.stdout
        status, body = ralph_server.get(f"/xAPI/statements?statementId={shown[1]}", auth=account)
        assert status == 200, body
        stored = body.get("statements", [body])
        assert [s["id"] for s in stored] == [shown[1]]
        assert shown[1] in {s["id"] for s in queued}, "one of the statements Moodle queued"
        assert "delivery: 0 events queued" in result.stdout
        assert "0 in failed batches" in result.stdout

    def test_should_change_nothing_on_a_second_run(
            self, tmp_path, moodle, archive, account, ralph_server):
        config = setup_json(tmp_path, ralph_server.url + "/xAPI/", account[0], archive)
        assert run_setup(moodle, config, account[1]).returncode == 0
        before = moodle.tree()
        moodle.update_state(calls=[])
        second = run_setup(moodle, config, account[1])
        assert second.returncode == 0, second.stderr
        assert moodle.tree() == before
        assert not [c for c in moodle.state["calls"] if c.startswith("set ") or c == "upgrade"]
        assert "already installed" in second.stdout

    def test_should_keep_the_password_off_every_command_line_and_output(
            self, tmp_path, moodle, archive, account, ralph_server):
        moodle.queue(xapi.generate(1, seed=moodle.branch + 1))
        config = setup_json(tmp_path, ralph_server.url + "/xAPI/", account[0], archive)
        with ProcessList() as processes:
            result = run_setup(moodle, config, account[1])
        assert result.returncode == 0, result.stderr
        started = moodle.command_lines
        assert any("--configure" in line for line in started), "the settings child ran"
        for line in processes.seen | set(started):
            assert account[1] not in line
        assert account[1] not in result.stdout + result.stderr

    # Each refusal is one sentence, a non-zero exit, and no change to Moodle.

    def test_should_refuse_an_unsupported_moodle(self, tmp_path, archive, account, ralph_server):
        moodle = StandinMoodle(tmp_path / "moodle", branch=503)
        before = moodle.tree()
        config = setup_json(tmp_path, ralph_server.url + "/xAPI/", account[0], archive)
        message = one_sentence(run_setup(moodle, config, account[1]))
        assert "supports Moodle 4.5 to 5.2" in message and "5.3" in message
        assert moodle.tree() == before

    def test_should_refuse_an_archive_with_another_checksum(
            self, tmp_path, moodle, account, ralph_server):
        files = plugin_tree()
        tampered = {**files, "settings.php": b"<?php // changed\n"}
        before = moodle.tree()
        with ArchiveServer(tarball(tampered)) as server:
            config = setup_json(tmp_path, ralph_server.url + "/xAPI/", account[0],
                                (server.url, tree_sha256(files)))
            message = one_sentence(run_setup(moodle, config, account[1]))
        assert "checksum" in message
        assert moodle.tree() == before

    def test_should_refuse_when_the_lrs_cannot_be_reached(self, tmp_path, moodle, archive):
        before = moodle.tree()
        config = setup_json(tmp_path, f"http://127.0.0.1:{free_port()}/xAPI/", "moodle", archive)
        assert "cannot be reached" in one_sentence(run_setup(moodle, config, "pw"))
        assert moodle.tree() == before

    def test_should_refuse_a_wrong_password(self, tmp_path, moodle, archive, account,
                                            ralph_server):
        before = moodle.tree()
        config = setup_json(tmp_path, ralph_server.url + "/xAPI/", account[0], archive)
        assert "refused the account" in one_sentence(run_setup(moodle, config, "wrong"))
        assert moodle.tree() == before

    def test_should_refuse_a_folder_that_is_not_moodle(self, tmp_path, archive):
        config = setup_json(tmp_path, "http://127.0.0.1:9/xAPI/", "moodle", archive)
        result = subprocess.run(
            [PHP, str(PROGRAM), f"--moodle={tmp_path}", f"--config={config}", "--status"],
            capture_output=True, text=True, timeout=30, check=False)
        assert "config.php" in one_sentence(result)

    # `--status` reads logstore_xapi's queue and failed tables.

    def test_should_report_queued_and_failed_events(self, tmp_path, moodle, archive):
        moodle.queue(xapi.generate(5, seed=20), failed=2)
        config = setup_json(tmp_path, "http://127.0.0.1:9/xAPI/", "moodle", archive)
        result = subprocess.run(
            [PHP, str(PROGRAM), f"--moodle={moodle.root}", f"--config={config}", "--status"],
            capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
        assert "5 events queued (logstore_xapi_log)" in result.stdout
        assert "2 in failed batches (logstore_xapi_failed_log)" in result.stdout
