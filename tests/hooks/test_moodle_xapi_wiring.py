"""The Moodle `xapi` sidecar program (files/moodle/xapi_wiring.php), run by real PHP.

Moodle itself is in no registry this project can reach, so the program runs against a
stand-in Moodle tree: config.php plus admin/cli/{cfg,upgrade,cron}.php written here in
PHP, which keep settings in a JSON file and answer with Moodle's exit codes (cfg.php: 0,
or 4 for a value forced in config.php; upgrade.php --is-pending: 2 when a plugin's
version.php differs from the recorded one). The plugin archive is a .tar.gz made here and
served from a loopback HTTP server.

Covered here: waiting for the install, download, tree checksum, version pinning,
install-in-place, the upgrade call, every cfg.php setting, enabled stores kept in order,
idempotency, cron runs, and one-sentence failures. Only a real cluster shows Moodle's own
upgrade and the plugin sending statements to Ralph.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from lastack.paths import CHART_DIR

PROGRAM = CHART_DIR / "files" / "moodle" / "xapi_wiring.php"
PHP = shutil.which("php")
pytestmark = [
    pytest.mark.hooks,
    pytest.mark.skipif(PHP is None, reason="php is not installed: apt-get install php-cli"),
]
VERSION = 2026072001

CFG_PHP = r"""<?php
$state = json_decode(file_get_contents(__DIR__ . '/../../state.json'), true);
$opts = getopt('', ['component:', 'name:', 'set:']);
$component = $opts['component'] ?? 'core';
$key = $component . '/' . $opts['name'];
if (in_array($key, $state['forced'], true)) { fwrite(STDERR, "forced\n"); exit(4); }
if (isset($opts['set'])) {
    $state['settings'][$key] = $opts['set'];
    $state['calls'][] = "set $key";
    file_put_contents(__DIR__ . '/../../state.json', json_encode($state));
    exit(0);
}
if (!array_key_exists($key, $state['settings'])) { exit(3); }
echo $state['settings'][$key], "\n";
"""

UPGRADE_PHP = r"""<?php
$file = __DIR__ . '/../../state.json';
$state = json_decode(file_get_contents($file), true);
$v = __DIR__ . '/../../admin/tool/log/store/xapi/version.php';
$plugin = new stdClass();
if (is_file($v)) { define('MOODLE_INTERNAL', 1); include $v; }
$pending = isset($plugin->version) && ($state['plugin_version'] ?? null) !== $plugin->version;
if (in_array('--is-pending', $argv, true)) { exit($pending ? 2 : 0); }
$state['calls'][] = 'upgrade';
if ($state['upgrade_fails'] ?? false) { echo "Database error\n"; exit(1); }
if ($pending) { $state['plugin_version'] = $plugin->version; }
file_put_contents($file, json_encode($state));
exit(0);
"""

CRON_PHP = r"""<?php
$file = __DIR__ . '/../../state.json';
$state = json_decode(file_get_contents($file), true);
$state['calls'][] = 'cron';
file_put_contents($file, json_encode($state));
"""


def plugin_tree(version: int = VERSION) -> dict[str, bytes]:
    return {
        "version.php": (
            f"<?php\ndefined('MOODLE_INTERNAL') || die();\n"
            f"$plugin->component = 'logstore_xapi';\n"
            f"$plugin->version = {version};\n"
        ).encode(),
        "settings.php": b"<?php\n",
        "classes/log/store.php": b"<?php\n// store\n",
        "lang/en/logstore_xapi.php": b"<?php\n$string['pluginname'] = 'xAPI';\n",
    }


def tree_sha256(files: dict[str, bytes]) -> str:
    """The documented checksum, computed independently of the PHP program."""
    lines = sorted(
        (path.encode(), hashlib.sha256(data).hexdigest()) for path, data in files.items()
    )
    manifest = "".join(f"{digest}  {path.decode()}\n" for path, digest in lines)
    return hashlib.sha256(manifest.encode()).hexdigest()


def tarball(files: dict[str, bytes], top: str = "moodle-logstore_xapi-5.1.0") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(
        fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT, pax_headers={"comment": "247d9aef"}
    ) as tar:
        for path, data in files.items():
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class ArchiveServer:
    """Serves one archive on 127.0.0.1 for the duration of a test."""

    def __init__(self, body: bytes) -> None:
        archive = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Length", str(len(archive)))
                self.end_headers()
                self.wfile.write(archive)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/xapi.tar.gz"

    def __enter__(self) -> ArchiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeMoodle:
    """A Moodle-shaped folder whose CLI scripts record what they were asked."""

    def __init__(self, root: Path, installed: bool = True) -> None:
        self.root = root
        cli = root / "admin" / "cli"
        cli.mkdir(parents=True)
        (cli / "cfg.php").write_text(CFG_PHP)
        (cli / "upgrade.php").write_text(UPGRADE_PHP)
        (cli / "cron.php").write_text(CRON_PHP)
        settings = {"core/version": "2025041400", "tool_log/enabled_stores": "logstore_standard"}
        self.write_state({"settings": settings, "forced": [], "calls": []})
        if installed:
            (root / "config.php").write_text("<?php\n")

    @property
    def state(self) -> dict:
        return json.loads((self.root / "state.json").read_text())

    def write_state(self, state: dict) -> None:
        (self.root / "state.json").write_text(json.dumps(state))

    def update_state(self, **changes: object) -> None:
        self.write_state({**self.state, **changes})


def wiring_config(moodle: FakeMoodle, url: str, digest: str, **overrides: object) -> dict:
    config = {
        "moodleDir": str(moodle.root),
        "php": PHP,
        "endpoint": "http://la-stack-ralph.la-stack.svc:8080/xAPI/",
        "plugin": {"release": "v5.1.0", "version": VERSION, "url": url, "treeSha256": digest},
        "settings": {"backgroundmode": "1", "maxbatchsize": "1000", "resendfailedbatches": "1"},
        "cronIntervalSeconds": 60,
        "installDeadlineSeconds": 5,
    }
    return {**config, **overrides}


def run_wiring(
    tmp_path: Path, config: dict, cron_runs: int = 1, password: str = "s3cret&pw"
) -> subprocess.CompletedProcess:
    """Run main() once with a no-op sleep, so waits and the cron loop end quickly."""
    config_file = tmp_path / "wiring.json"
    config_file.write_text(json.dumps(config))
    driver = tmp_path / "driver.php"
    driver.write_text(
        "<?php\nrequire " + json.dumps(str(PROGRAM)) + ";\n"
        "exit(main(['WIRING_CONFIG' => " + json.dumps(str(config_file)) + ", "
        "'LRS_USERNAME' => 'moodle', 'LRS_PASSWORD' => " + json.dumps(password) + "], "
        "function ($s) {}, " + str(cron_runs) + "));\n"
    )
    return subprocess.run(
        [PHP, str(driver)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def moodle(tmp_path: Path) -> FakeMoodle:
    return FakeMoodle(tmp_path / "moodle")


class TestInstallAndConfigure:
    """A first run installs, upgrades, configures, enables and starts cron."""

    def test_should_wire_moodle_to_ralph(self, tmp_path, moodle):
        files = plugin_tree()
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert result.returncode == 0, result.stderr
        plugin = moodle.root / "admin/tool/log/store/xapi"
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
            installed = (moodle.root / "admin/tool/log/store/xapi/version.php").stat().st_mtime_ns
            moodle.update_state(calls=[])
            second = run_wiring(tmp_path, config)
        assert second.returncode == 0, second.stderr
        assert "already installed" in second.stdout
        assert "upgrade" not in moodle.state["calls"]
        assert "set tool_log/enabled_stores" not in moodle.state["calls"]
        after = (moodle.root / "admin/tool/log/store/xapi/version.php").stat().st_mtime_ns
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
        old = moodle.root / "admin/tool/log/store/xapi"
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
        assert not (moodle.root / "admin/tool/log/store/xapi").exists()

    def test_should_refuse_another_plugin_version(self, tmp_path, moodle):
        files = plugin_tree(version=2026072000)
        with ArchiveServer(tarball(files)) as server:
            result = run_wiring(tmp_path, wiring_config(moodle, server.url, tree_sha256(files)))
        assert str(VERSION) in self.one_sentence(result)

    def test_should_refuse_to_downgrade(self, tmp_path, moodle):
        newer = moodle.root / "admin/tool/log/store/xapi"
        newer.mkdir(parents=True)
        (newer / "version.php").write_text("<?php\n$plugin->version = 2027010100;\n")
        result = run_wiring(tmp_path, wiring_config(moodle, "http://127.0.0.1:9/x", "0" * 64))
        assert "downgrade" in self.one_sentence(result)

    def test_should_say_when_the_download_fails(self, tmp_path, moodle):
        result = run_wiring(tmp_path, wiring_config(moodle, "http://127.0.0.1:9/x", "0" * 64))
        assert "cannot download" in self.one_sentence(result)

    def test_should_give_up_when_moodle_never_installs(self, tmp_path):
        moodle = FakeMoodle(tmp_path / "moodle", installed=False)
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
