"""The Moodle `xapi` sidecar program (files/moodle/xapi_wiring.php), run by real PHP.

The program runs against the stand-in Moodle tree of moodle_standin.py, in the layout before
Moodle 5.1 and in the `public/` one. The plugin archive is a .tar.gz made here and served
from a loopback HTTP server.

Covered here (failures and retries in test_moodle_xapi_wiring_failures.py): download, tree
checksum, install-in-place, the upgrade call, every setting, enabled stores kept in
order, idempotency, cron runs with the delivery queue logged, and one-sentence failures.
Only a real cluster shows Moodle's own upgrade and the plugin sending statements to Ralph.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.hooks.moodle_standin import (
    PHP,
    VERSION,
    ArchiveServer,
    plugin_tree,
    requires_php,
    tarball,
    tree_sha256,
)
from tests.hooks.moodle_support import XAPI_WIRING, run_wiring, wiring_config

pytestmark = [pytest.mark.hooks, requires_php]


class TestXapiWiring:
    """xapi_wiring.php installs and configures, idempotently."""

    # A first run installs, upgrades, configures, enables and starts cron.

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

    # The digest algorithm of the program matches the documented one.

    def test_should_compute_the_same_tree_digest_as_the_documentation(self, tmp_path):
        files = plugin_tree()
        root = tmp_path / "tree"
        for path, data in files.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(data)
        script = (
            f"<?php require {json.dumps(str(XAPI_WIRING))};\n"
            f"echo tree_sha256({json.dumps(str(root))});\n"
        )
        out = subprocess.run(
            [PHP, "-r", script.removeprefix("<?php ")], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == tree_sha256(files)
