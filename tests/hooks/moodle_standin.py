"""A stand-in Moodle tree for the PHP wiring programs, in either layout.

Moodle itself is in no registry this project can reach, so the programs run against a
folder shaped like an installed Moodle, written here in PHP:

- `config.php` in the top folder (both layouts), loading `lib/setup.php` of the web root;
- the web root: the top folder before Moodle 5.1, `public/` from 5.1 on (branch 501), with
  `version.php` (`$branch`, `$release`) and `admin/tool/log/store/xapi` for the plugin;
- `lib/setup.php`: `get_config`, `set_config`, `$CFG->forced_plugin_settings` and a `$DB`
  whose `count_records` counts rows of the logstore_xapi tables;
- `admin/cli/{cfg,upgrade,cron,scheduled_task}.php` with Moodle's exit codes
  (`upgrade.php --is-pending`: 2 when the plugin's version.php differs from the recorded
  version); `scheduled_task.php --execute=\\logstore_xapi\\task\\emit_task` POSTs the queued
  statements to the configured endpoint with the configured account, as the plugin's task
  does, and moves a refused batch to the failed table.

Everything is kept in `state.json` beside config.php. What only a real Moodle shows: its
own upgrade, the plugin turning events into statements, and the real admin/cli location
under `public/` (assumed here to move with the rest of the web code).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import shutil
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

PLUGIN_PATH = "admin/tool/log/store/xapi"
VERSION = 2026072001  # `$plugin->version` of the pinned logstore_xapi release
PHP = shutil.which("php")
requires_php = pytest.mark.skipif(
    PHP is None, reason="php is not installed: apt-get install php-cli")

RECORD_COMMAND_LINE = r"""
$cmdline = str_replace("\0", ' ', file_get_contents('/proc/self/cmdline'));
file_put_contents(dirname(STANDIN_STATE) . '/cmdlines.log', $cmdline . "\n", FILE_APPEND);
"""

SETUP_PHP = r"""<?php
// Stand-in for Moodle's lib/setup.php: settings and two tables in state.json.
defined('CLI_SCRIPT') || die('CLI only');
function standin_state(): array { return json_decode(file_get_contents(STANDIN_STATE), true); }
function standin_save(array $state): void { file_put_contents(STANDIN_STATE, json_encode($state)); }
$CFG->forced_plugin_settings = [];
foreach (standin_state()['forced'] as $key) {
    [$component, $name] = explode('/', $key, 2);
    $CFG->forced_plugin_settings[$component][$name] = 'forced';
}
function get_config(string $plugin, string $name) {
    return standin_state()['settings']["$plugin/$name"] ?? false;
}
function set_config(string $name, $value, string $plugin): void {
    $state = standin_state();
    $state['settings']["$plugin/$name"] = (string) $value;
    $state['calls'][] = "set $plugin/$name";
    standin_save($state);
}
final class StandinDb {
    public function count_records(string $table): int {
        return count(standin_state()['tables'][$table] ?? []);
    }
}
$DB = new StandinDb();
"""

CFG_PHP = r"""<?php
$state = json_decode(file_get_contents(STANDIN_STATE), true);
$opts = getopt('', ['component:', 'name:']);
$key = ($opts['component'] ?? 'core') . '/' . $opts['name'];
if (!array_key_exists($key, $state['settings'])) { exit(3); }
echo $state['settings'][$key], "\n";
"""

UPGRADE_PHP = r"""<?php
$state = json_decode(file_get_contents(STANDIN_STATE), true);
$plugin = new stdClass();
$v = dirname(__DIR__, 2) . '/admin/tool/log/store/xapi/version.php';
if (is_file($v)) { define('MOODLE_INTERNAL', 1); include $v; }
$pending = isset($plugin->version) && ($state['plugin_version'] ?? null) !== $plugin->version;
if (in_array('--is-pending', $argv, true)) { exit($pending ? 2 : 0); }
$state['calls'][] = 'upgrade';
if ($state['upgrade_fails'] ?? false) { echo "Database error\n"; exit(1); }
if ($pending) { $state['plugin_version'] = $plugin->version; }
file_put_contents(STANDIN_STATE, json_encode($state));
"""

CRON_PHP = r"""<?php
$state = json_decode(file_get_contents(STANDIN_STATE), true);
$state['calls'][] = 'cron';
file_put_contents(STANDIN_STATE, json_encode($state));
"""

SCHEDULED_TASK_PHP = r"""<?php
$state = json_decode(file_get_contents(STANDIN_STATE), true);
$state['calls'][] = 'scheduled_task ' . ($argv[1] ?? '');
$queue = $state['tables']['logstore_xapi_log'] ?? [];
if ($queue && ($argv[1] ?? '') === '--execute=\logstore_xapi\task\emit_task') {
    $s = $state['settings'];
    $auth = base64_encode($s['logstore_xapi/username'] . ':' . $s['logstore_xapi/password']);
    $context = stream_context_create(['http' => ['method' => 'POST', 'ignore_errors' => true,
        'timeout' => 30, 'content' => json_encode($queue),
        'header' => "Authorization: Basic $auth\r\nContent-Type: application/json\r\n"
            . "X-Experience-API-Version: 1.0.3\r\n"]]);
    $body = @file_get_contents($s['logstore_xapi/endpoint'] . 'statements', false, $context);
    $ok = $body !== false && str_contains($http_response_header[0] ?? '', ' 200');
    if (!$ok) {
        $state['tables']['logstore_xapi_failed_log'] = array_merge(
            $state['tables']['logstore_xapi_failed_log'] ?? [], $queue);
    }
    $state['tables']['logstore_xapi_log'] = [];
}
file_put_contents(STANDIN_STATE, json_encode($state));
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
    """Serves one archive on 127.0.0.1 (on `port`, or any free one) for a test's duration."""

    def __init__(self, body: bytes, port: int = 0) -> None:
        archive = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                self.send_response(200)
                self.send_header("Content-Length", str(len(archive)))
                self.end_headers()
                self.wfile.write(archive)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
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



class StandinMoodle:
    """A Moodle-shaped folder whose scripts record what they were asked in state.json."""

    def __init__(self, root: Path, branch: int = 500, installed: bool = True) -> None:
        self.root = root
        self.branch = branch
        self.web = root / "public" if branch >= 501 else root
        state = json.dumps(str(root / "state.json"))
        # Every process the programs start runs one of these files: each records its command
        # line, so a test can tell what the process list showed.
        header = (f"<?php\ndefined('STANDIN_STATE') || define('STANDIN_STATE', {state});\n"
                  + RECORD_COMMAND_LINE + "?>")
        scripts = {"cfg.php": CFG_PHP, "upgrade.php": UPGRADE_PHP, "cron.php": CRON_PHP,
                   "scheduled_task.php": SCHEDULED_TASK_PHP}
        for name, body in scripts.items():
            self.write(self.web / "admin" / "cli" / name, header + body)
        self.write(self.web / "lib" / "setup.php", header + SETUP_PHP)
        release = f"{branch // 100}.{branch % 100}.2 (Build: 20260810)"
        self.write(self.web / "version.php",
                   f"<?php\n$version = {branch}0000.00;\n$release = '{release}';\n"
                   f"$branch = '{branch}';\n$maturity = MATURITY_STABLE;\n")
        settings = {"core/version": f"{branch}0000", "tool_log/enabled_stores": "logstore_standard"}
        self.write_state({"settings": settings, "forced": [], "calls": [],
                          "tables": {"logstore_xapi_log": [], "logstore_xapi_failed_log": []}})
        if installed:
            self.write(root / "config.php",
                       "<?php\nunset($CFG);\nglobal $CFG;\n$CFG = new stdClass();\n"
                       f"$CFG->dirroot = {json.dumps(str(self.web))};\n"
                       "require_once($CFG->dirroot . '/lib/setup.php');\n")

    @staticmethod
    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    @property
    def plugin_dir(self) -> Path:
        return self.web / PLUGIN_PATH

    @property
    def state(self) -> dict[str, Any]:
        return json.loads((self.root / "state.json").read_text())

    def write_state(self, state: dict[str, Any]) -> None:
        (self.root / "state.json").write_text(json.dumps(state))

    def update_state(self, **changes: Any) -> None:
        self.write_state({**self.state, **changes})

    def queue(self, statements: list[dict], failed: int = 0) -> None:
        """Events waiting in logstore_xapi_log, and `failed` rows in the failed table."""
        tables = {"logstore_xapi_log": statements,
                  "logstore_xapi_failed_log": [{"id": i} for i in range(failed)]}
        self.update_state(tables=tables)

    @property
    def command_lines(self) -> list[str]:
        log = self.root / "cmdlines.log"
        return log.read_text().splitlines() if log.exists() else []

    def tree(self) -> dict[str, bytes]:
        """Moodle's files and settings, to show that a failed run changed nothing."""
        files = {str(p.relative_to(self.root)): p.read_bytes()
                 for p in sorted(self.root.rglob("*"))
                 if p.is_file() and p.name not in {"state.json", "cmdlines.log"}}
        return {**files, "settings": json.dumps(self.state["settings"]).encode()}
