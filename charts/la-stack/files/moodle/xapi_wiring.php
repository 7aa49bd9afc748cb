<?php
// Wires a Moodle to the Ralph LRS: the one implementation behind two entry points.
//
//  * The `xapi` sidecar of the in-cluster Moodle Pod runs this file (main() below). It shares
//    the Pod's ReadWriteOnce volume with Moodle, so it works where a hook Job could not
//    mount Moodle's code. It waits (bounded) for Moodle's own installation, wires the
//    plugin (wire() below), then runs admin/cli/cron.php every cronIntervalSeconds for
//    ever, logging the delivery queue after each run: Moodle needs cron, in background
//    mode it is what delivers the queued statements, and Bitnami's image does not run cron
//    as a non-root user.
//  * xapi_setup.php, which the administrator of an existing Moodle runs, requires this
//    file and calls wire() and delivery_status().
//
// wire() refuses a Moodle branch the plugin does not support, installs logstore_xapi at the
// pinned release unless that version is there (SHA-256 over the archive's file tree), runs
// Moodle's non-interactive upgrade when one is pending, and sets endpoint, credentials and
// delivery settings, adding logstore_xapi to tool_log/enabled_stores while keeping the
// stores already enabled. Settings are written by a child PHP process that loads Moodle's
// config.php and reads them from stdin (`--configure`), so the LRS password is never on a
// command line. Every step is idempotent. When a step cannot finish, one sentence goes to
// stderr; xapi_setup.php then exits non-zero, and the sidecar keeps running and tries again
// with a bounded backoff, so a wiring error never restarts Moodle's Pod or takes it out of
// its Service. The sidecar writes its state (waiting, retrying with the last error, wired)
// to the JSON file at `statusFile`.
//
// Sidecar configuration: JSON at $WIRING_CONFIG; the LRS account from $LRS_USERNAME and
// $LRS_PASSWORD.

declare(strict_types=1);

const STORE = 'logstore_xapi';
const PLUGIN_PATH = 'admin/tool/log/store/xapi';
// The tables logstore_xapi keeps: events waiting to be sent, and events whose batch failed.
const QUEUE_TABLE = 'logstore_xapi_log';
const FAILED_TABLE = 'logstore_xapi_failed_log';
// From this branch on, Moodle's web code (admin/, lib/, plugins) lives under public/.
const PUBLIC_LAYOUT_BRANCH = 501;

final class WiringError extends RuntimeException
{
}

function say(string $message): void
{
    fwrite(STDOUT, '[xapi-wiring] ' . $message . PHP_EOL);
}

function read_json_file(string $path, string $what): array
{
    $raw = @file_get_contents($path);
    if ($raw === false) {
        throw new WiringError("cannot read the $what at $path.");
    }
    $data = json_decode($raw, true);
    if (!is_array($data)) {
        throw new WiringError("the $what at $path is not valid JSON.");
    }
    return $data;
}

function require_keys(array $config, array $keys, string $what): void
{
    foreach ($keys as $key) {
        if (!array_key_exists($key, $config)) {
            throw new WiringError("the $what lacks the key '$key'.");
        }
    }
}

function load_config(string $path): array
{
    $config = read_json_file($path, 'wiring configuration');
    require_keys($config, ['moodleDir', 'php', 'endpoint', 'plugin', 'settings'],
        'wiring configuration');
    return $config;
}

/** `$name = '…';` or `$name = 123;` of a PHP file such as version.php, or null. */
function php_assignment(string $file, string $name): ?string
{
    if (!is_file($file)) {
        return null;
    }
    $pattern = '/\$' . preg_quote($name, '/') . '\s*=\s*[\'"]?([^\'";]+)/';
    return preg_match($pattern, (string) file_get_contents($file), $m) ? trim($m[1]) : null;
}

/**
 * Where this Moodle keeps its web code, and its branch: `public/` from 5.1 on, the top
 * folder before (config.php stays in the top folder in both layouts).
 */
function moodle_layout(string $moodleDir): array
{
    foreach ([$moodleDir . '/public', $moodleDir] as $web) {
        $branch = php_assignment($web . '/version.php', 'branch');
        if ($branch !== null) {
            $release = php_assignment($web . '/version.php', 'release') ?? $branch;
            $public = (int) $branch >= PUBLIC_LAYOUT_BRANCH;
            if ($public !== ($web !== $moodleDir)) {
                throw new WiringError("Moodle $release has its version.php in the wrong place "
                    . "for its branch ($web).");
            }
            return ['branch' => (int) $branch, 'release' => $release, 'web' => $web];
        }
    }
    throw new WiringError("$moodleDir is not a Moodle folder (no version.php with \$branch).");
}

/** "4.5" for branch 405, "5.2" for 502. */
function branch_name(int $branch): string
{
    return intdiv($branch, 100) . '.' . ($branch % 100);
}

function check_supported(array $layout, array $plugin): void
{
    [$low, $high] = array_map('intval', $plugin['supported'] ?? [0, PHP_INT_MAX]);
    if ($layout['branch'] < $low || $layout['branch'] > $high) {
        throw new WiringError("logstore_xapi {$plugin['release']} supports Moodle "
            . branch_name($low) . ' to ' . branch_name($high) . ", and this Moodle is "
            . "{$layout['release']}, so nothing was changed.");
    }
}

/** Runs a Moodle CLI script; returns [exit code, combined output]. $stdin is piped in. */
function moodle_cli(array $config, string $script, array $args, ?string $stdin = null): array
{
    $web = moodle_layout($config['moodleDir'])['web'];
    return run_php($config, array_merge([$web . '/' . $script], $args), $stdin);
}

function run_php(array $config, array $args, ?string $stdin = null): array
{
    $cmd = array_merge([$config['php']], $args);
    $spec = [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['redirect', 1]];
    $process = proc_open($cmd, $spec, $pipes);
    if (!is_resource($process)) {
        throw new WiringError("cannot start {$args[0]}.");
    }
    fwrite($pipes[0], $stdin ?? '');
    fclose($pipes[0]);
    $output = stream_get_contents($pipes[1]);
    fclose($pipes[1]);
    return [proc_close($process), trim((string) $output)];
}

/** Moodle is installed once config.php exists and its database answers cfg.php. */
function moodle_installed(array $config): bool
{
    if (!is_file($config['moodleDir'] . '/config.php')) {
        return false;
    }
    [$code, $out] = moodle_cli($config, 'admin/cli/cfg.php', ['--name=version']);
    return $code === 0 && $out !== '';
}

function wait_for_install(array $config, int $deadline, callable $sleep): void
{
    $delay = 2;
    while (!moodle_installed($config)) {
        if (time() >= $deadline) {
            throw new WiringError('Moodle did not finish installing before the deadline '
                . '(installDeadlineSeconds); see the moodle container log.');
        }
        say("waiting for Moodle's installation to finish (next check in {$delay}s)");
        $sleep($delay);
        $delay = min($delay * 2, 30);
    }
}

/** `$plugin->version` of an installed plugin directory, or null when absent. */
function installed_version(string $dir): ?int
{
    $version = php_assignment($dir . '/version.php', 'plugin->version');
    return $version === null ? null : (int) $version;
}

/**
 * SHA-256 over a file tree: one `sha256sum`-style line per regular file, sorted by path.
 * Independent of the archive format and compression, so it can be pinned.
 */
function tree_sha256(string $root): string
{
    $lines = [];
    $files = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator($root, FilesystemIterator::SKIP_DOTS)
    );
    foreach ($files as $file) {
        if (!$file->isFile() || $file->isLink()) {
            continue;
        }
        $relative = substr($file->getPathname(), strlen($root) + 1);
        $lines[$relative] = hash_file('sha256', $file->getPathname()) . '  ' . $relative . "\n";
    }
    ksort($lines, SORT_STRING);
    return hash('sha256', implode('', $lines));
}

function remove_tree(string $path): void
{
    if (!file_exists($path) && !is_link($path)) {
        return;
    }
    if (is_file($path) || is_link($path)) {
        unlink($path);
        return;
    }
    $items = new RecursiveIteratorIterator(
        new RecursiveDirectoryIterator($path, FilesystemIterator::SKIP_DOTS),
        RecursiveIteratorIterator::CHILD_FIRST
    );
    foreach ($items as $item) {
        $item->isDir() && !$item->isLink() ? rmdir($item->getPathname()) : unlink($item->getPathname());
    }
    rmdir($path);
}

/** Downloads and unpacks the archive into $workdir; returns the plugin's top folder. */
function fetch_plugin(array $plugin, string $workdir): string
{
    $archive = $workdir . '/plugin.tar.gz';
    $data = @file_get_contents($plugin['url']);
    if ($data === false || $data === '') {
        throw new WiringError("cannot download logstore_xapi from {$plugin['url']}.");
    }
    file_put_contents($archive, $data);
    $unpacked = $workdir . '/unpacked';
    mkdir($unpacked);
    try {
        (new PharData($archive))->extractTo($unpacked);
    } catch (Exception $e) {
        throw new WiringError("the archive from {$plugin['url']} is not a readable .tar.gz.");
    }
    // Git-made archives carry a pax_global_header entry beside the folder.
    $tops = array_values(array_diff(scandir($unpacked), ['.', '..', 'pax_global_header']));
    if (count($tops) !== 1 || !is_dir("$unpacked/{$tops[0]}")) {
        throw new WiringError('the plugin archive must hold exactly one top-level folder.');
    }
    return "$unpacked/{$tops[0]}";
}

/** Installs the pinned plugin release into $web (Moodle's web root); true when files changed. */
function install_plugin(array $plugin, string $web): bool
{
    $target = $web . '/' . PLUGIN_PATH;
    $current = installed_version($target);
    if ($current === (int) $plugin['version']) {
        say("logstore_xapi {$plugin['release']} is already installed");
        return false;
    }
    if ($current !== null && $current > (int) $plugin['version']) {
        throw new WiringError("a newer logstore_xapi ($current) is installed than the pinned "
            . "{$plugin['version']}; Moodle cannot downgrade a plugin.");
    }
    say("installing logstore_xapi {$plugin['release']} from {$plugin['url']} into $target");
    $workdir = sys_get_temp_dir() . '/xapi-wiring-' . getmypid();
    remove_tree($workdir);
    mkdir($workdir, 0700, true);
    try {
        $source = fetch_plugin($plugin, $workdir);
        $digest = tree_sha256($source);
        if (!hash_equals(strtolower($plugin['treeSha256']), $digest)) {
            throw new WiringError("the downloaded logstore_xapi does not match the pinned "
                . "checksum (got $digest), so it was not installed.");
        }
        if (installed_version($source) !== (int) $plugin['version']) {
            throw new WiringError('the downloaded logstore_xapi is not version '
                . "{$plugin['version']}.");
        }
        // Swap in place: the new tree sits beside the old one until the rename.
        $staging = $target . '.new';
        remove_tree($staging);
        if (!@mkdir(dirname($target), 0775, true) && !is_dir(dirname($target))) {
            throw new WiringError('cannot create ' . dirname($target) . '.');
        }
        if (!@rename($source, $staging)) {
            exec('cp -a ' . escapeshellarg($source) . ' ' . escapeshellarg($staging), $o, $code);
            if ($code !== 0) {
                throw new WiringError("cannot copy the plugin into $staging.");
            }
        }
        remove_tree($target);
        rename($staging, $target);
    } finally {
        remove_tree($workdir);
    }
    return true;
}

function run_upgrade(array $config): void
{
    [$pending] = moodle_cli($config, 'admin/cli/upgrade.php', ['--is-pending']);
    if ($pending !== 2) {
        say('no Moodle upgrade is pending');
        return;
    }
    say('running the Moodle upgrade that installs the plugin');
    [$code, $out] = moodle_cli($config, 'admin/cli/upgrade.php', ['--non-interactive']);
    // 0: upgraded; 63 is accepted too as "nothing left to do".
    if ($code !== 0 && $code !== 63) {
        $last = trim((string) strrchr("\n" . $out, "\n"));
        throw new WiringError("Moodle's upgrade failed with exit code $code: $last");
    }
}

/** The enabled-stores list with logstore_xapi added once, keeping the others in order. */
function with_store(string $enabled): string
{
    $stores = array_values(array_filter(array_map('trim', explode(',', $enabled)), 'strlen'));
    if (!in_array(STORE, $stores, true)) {
        $stores[] = STORE;
    }
    return implode(',', $stores);
}

/** The logstore_xapi settings as Moodle stores them (strings; booleans as 1/0). */
function store_settings(array $config, string $username, string $password): array
{
    $settings = ['endpoint' => $config['endpoint'], 'username' => $username,
        'password' => $password] + $config['settings'];
    $strings = [];
    foreach ($settings as $name => $value) {
        $strings[(string) $name] = is_bool($value) ? ($value ? '1' : '0') : (string) $value;
    }
    return $strings;
}

/** Writes the settings through a child that loads config.php; the secrets go on stdin. */
function configure(array $config, string $username, string $password): void
{
    $request = json_encode([STORE => store_settings($config, $username, $password)]);
    [$code, $out] = run_php($config, [__FILE__, '--configure', $config['moodleDir']], $request);
    if ($code !== 0) {
        throw new WiringError('cannot write the logstore_xapi settings: '
            . trim((string) strrchr("\n" . $out, "\n")));
    }
    if ($out !== '') {
        fwrite(STDOUT, $out . PHP_EOL);
    }
    say('configured logstore_xapi: endpoint ' . $config['endpoint'] . ", account $username");
}

/** Loads Moodle (config.php) into this process, as Moodle's own CLI scripts do. */
function load_moodle(string $moodleDir): void
{
    if (!defined('CLI_SCRIPT')) {
        define('CLI_SCRIPT', true);
    }
    global $CFG, $DB;
    require $moodleDir . '/config.php';
}

/**
 * `--configure` child: {component: {name: value}} on stdin. A value is written only when it
 * differs; one fixed in config.php ($CFG->forced_plugin_settings) is left as it is.
 */
function apply_settings(array $request): void
{
    global $CFG;
    foreach ($request as $component => $settings) {
        foreach ($settings as $name => $value) {
            if (isset($CFG->forced_plugin_settings[$component][$name])) {
                say("$component/$name is fixed in config.php; leaving it as the administrator set it");
            } elseif (get_config($component, $name) !== $value) {
                set_config($name, $value, $component);
                say("set $component/$name");
            }
        }
    }
    $enabled = (string) get_config('tool_log', 'enabled_stores');
    $wanted = with_store($enabled);
    if ($wanted !== $enabled) {
        set_config('enabled_stores', $wanted, 'tool_log');
    }
    say("enabled log stores: $wanted");
}

/** `--status` child: the two logstore_xapi tables, as JSON. */
function count_tables(): array
{
    global $DB;
    return ['queued' => $DB->count_records(QUEUE_TABLE),
        'failed' => $DB->count_records(FAILED_TABLE)];
}

/** How many events wait to be sent and how many sit in failed batches. */
function delivery_status(array $config): array
{
    [$code, $out] = run_php($config, [__FILE__, '--status', $config['moodleDir']]);
    $status = json_decode($out, true);
    if ($code !== 0 || !is_array($status)) {
        throw new WiringError('cannot read the logstore_xapi tables: '
            . trim((string) strrchr("\n" . $out, "\n")));
    }
    return $status;
}

function describe_status(array $status): string
{
    return "delivery: {$status['queued']} events queued (" . QUEUE_TABLE . "), "
        . "{$status['failed']} in failed batches (" . FAILED_TABLE . ')';
}

/** The whole wiring of an installed Moodle, shared by the sidecar and xapi_setup.php. */
function wire(array $config, string $username, string $password): void
{
    $layout = moodle_layout($config['moodleDir']);
    check_supported($layout, $config['plugin']);
    say("Moodle {$layout['release']} (branch {$layout['branch']}) at {$layout['web']}");
    install_plugin($config['plugin'], $layout['web']);
    run_upgrade($config);
    configure($config, $username, $password);
}

function run_cron_forever(array $config, callable $sleep, ?int $runs = null): void
{
    $interval = max(10, (int) ($config['cronIntervalSeconds'] ?? 60));
    for ($i = 0; $runs === null || $i < $runs; $i++) {
        [$code, $out] = moodle_cli($config, 'admin/cli/cron.php', []);
        // A failing cron run is logged and retried: delivery resumes when the cause goes.
        say($code === 0 ? 'cron run finished' : "cron run failed (exit $code): "
            . substr($out, -300));
        try {
            say(describe_status(delivery_status($config)));
        } catch (WiringError $e) {
            say('delivery: unknown, ' . $e->getMessage());
        }
        $sleep($interval);
    }
}

/**
 * The state a person (or a probe of this container) reads in the status file: `waiting`,
 * `retrying` (with the last error and when the next attempt starts) or `wired`. Written
 * whole and renamed into place, so a reader never sees half a file.
 */
function write_status(array $config, string $state, array $details = []): void
{
    $path = (string) ($config['statusFile'] ?? '');
    if ($path === '') {
        return;
    }
    $status = ['state' => $state, 'updatedAt' => gmdate('Y-m-d\TH:i:s\Z')] + $details;
    if (@file_put_contents("$path.new", json_encode($status) . PHP_EOL) !== false) {
        @rename("$path.new", $path);
    }
}

/** Seconds before retry $attempt + 1: doubling from initialSeconds, capped at maxSeconds. */
function retry_delay(array $retry, int $attempt): int
{
    $initial = max(1, (int) ($retry['initialSeconds'] ?? 10));
    $max = max($initial, (int) ($retry['maxSeconds'] ?? 300));
    return (int) min($max, $initial * 2 ** min($attempt - 1, 30));
}

/** One attempt: configuration, credentials, Moodle's installation, then the wiring. */
function wire_once(array $env, callable $sleep, int $installDeadline): array
{
    $config = load_config($env['WIRING_CONFIG'] ?? '/la-stack/wiring.json');
    $username = (string) ($env['LRS_USERNAME'] ?? '');
    $password = (string) ($env['LRS_PASSWORD'] ?? '');
    if ($username === '' || $password === '') {
        throw new WiringError('LRS_USERNAME and LRS_PASSWORD must come from the Moodle '
            . 'LRS account Secret.');
    }
    wait_for_install($config, $installDeadline, $sleep);
    wire($config, $username, $password);
    return $config;
}

/**
 * The sidecar. A failed wiring never ends the process: the container exiting would restart
 * it in a loop and take the Moodle Pod out of its Service. Each failure is one sentence on
 * stderr and a `retrying` status file; the attempt is repeated with a bounded backoff
 * (`retry` in the configuration), so a plugin URL or an LRS account that comes back is
 * picked up without a restart. $attempts bounds the attempts (for tests; null in the Pod),
 * and the last failure then exits 1.
 */
function main(array $env, callable $sleep, ?int $cronRuns = null, ?int $attempts = null): int
{
    $configPath = $env['WIRING_CONFIG'] ?? '/la-stack/wiring.json';
    $bootstrap = (static function () use ($configPath): array {
        try {
            return read_json_file($configPath, 'wiring configuration');
        } catch (WiringError $e) {
            return [];
        }
    })();
    $installDeadline = time() + (int) ($bootstrap['installDeadlineSeconds'] ?? 1800);
    write_status($bootstrap, 'waiting');
    for ($attempt = 1; ; $attempt++) {
        try {
            $config = wire_once($env, $sleep, $installDeadline);
            break;
        } catch (WiringError $e) {
            if ($attempts !== null && $attempt >= $attempts) {
                write_status($bootstrap, 'failed', ['attempt' => $attempt,
                    'error' => $e->getMessage()]);
                fwrite(STDERR, 'error: ' . $e->getMessage() . PHP_EOL);
                return 1;
            }
            $delay = retry_delay($bootstrap['retry'] ?? [], $attempt);
            write_status($bootstrap, 'retrying', ['attempt' => $attempt,
                'error' => $e->getMessage(), 'nextAttemptInSeconds' => $delay]);
            fwrite(STDERR, 'error: ' . rtrim($e->getMessage(), '.')
                . " (attempt $attempt, next in {$delay}s)." . PHP_EOL);
            $sleep($delay);
        }
    }
    write_status($config, 'wired', ['attempts' => $attempt]);
    say("wired after $attempt attempt(s)");
    run_cron_forever($config, $sleep, $cronRuns);
    return 0;
}

/** The children that run inside Moodle: `--configure DIR` (stdin) and `--status DIR`. */
function child_main(string $mode, string $moodleDir): int
{
    load_moodle($moodleDir);
    if ($mode === '--configure') {
        apply_settings(json_decode((string) stream_get_contents(STDIN), true) ?? []);
    } else {
        fwrite(STDOUT, json_encode(count_tables()) . PHP_EOL);
    }
    return 0;
}

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    $mode = $argv[1] ?? '';
    exit(in_array($mode, ['--configure', '--status'], true)
        ? child_main($mode, (string) ($argv[2] ?? ''))
        : main(getenv(), 'sleep'));
}
