<?php
// Wires Moodle to the Ralph LRS, from the `xapi` sidecar of the Moodle Pod.
//
// The sidecar shares the Pod's ReadWriteOnce volume with Moodle, so this works where a
// hook Job could not mount Moodle's code. It:
//   1. waits (bounded) until Moodle's own installation has finished;
//   2. installs logstore_xapi at the pinned release unless that version is already
//      there, verifying a SHA-256 over the archive's file tree;
//   3. runs Moodle's non-interactive upgrade when one is pending;
//   4. sets endpoint, credentials and delivery settings with admin/cli/cfg.php and adds
//      logstore_xapi to tool_log/enabled_stores, keeping the stores already enabled;
//   5. then runs admin/cli/cron.php every cronIntervalSeconds, for ever: Moodle needs cron,
//      and in background mode it is what delivers the queued statements (Bitnami's image
//      does not run cron as a non-root user).
// Every step is idempotent, so a restarted or upgraded Pod redoes it safely. When a step
// cannot finish, one sentence goes to stderr and the process exits non-zero.
//
// Configuration: JSON at $WIRING_CONFIG; the LRS account from $LRS_USERNAME/$LRS_PASSWORD.

declare(strict_types=1);

const STORE = 'logstore_xapi';
const PLUGIN_PATH = 'admin/tool/log/store/xapi';

final class WiringError extends RuntimeException
{
}

function say(string $message): void
{
    fwrite(STDOUT, '[xapi-wiring] ' . $message . PHP_EOL);
}

function load_config(string $path): array
{
    $raw = @file_get_contents($path);
    if ($raw === false) {
        throw new WiringError("cannot read the wiring configuration at $path.");
    }
    $config = json_decode($raw, true);
    if (!is_array($config)) {
        throw new WiringError("the wiring configuration at $path is not valid JSON.");
    }
    foreach (['moodleDir', 'php', 'endpoint', 'plugin', 'settings'] as $key) {
        if (!array_key_exists($key, $config)) {
            throw new WiringError("the wiring configuration lacks the key '$key'.");
        }
    }
    return $config;
}

/** Runs a Moodle CLI script; returns [exit code, combined output]. */
function moodle_cli(array $config, string $script, array $args): array
{
    $cmd = array_merge([$config['php'], $config['moodleDir'] . '/' . $script], $args);
    $process = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['redirect', 1]], $pipes);
    if (!is_resource($process)) {
        throw new WiringError("cannot start $script.");
    }
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
    $file = $dir . '/version.php';
    if (!is_file($file)) {
        return null;
    }
    if (!preg_match('/\$plugin->version\s*=\s*(\d+)/', (string) file_get_contents($file), $m)) {
        return null;
    }
    return (int) $m[1];
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

/** Installs the pinned plugin release; returns true when files changed. */
function install_plugin(array $config, string $workdir): bool
{
    $plugin = $config['plugin'];
    $target = $config['moodleDir'] . '/' . PLUGIN_PATH;
    $current = installed_version($target);
    if ($current === (int) $plugin['version']) {
        say("logstore_xapi {$plugin['release']} is already installed");
        return false;
    }
    if ($current !== null && $current > (int) $plugin['version']) {
        throw new WiringError("a newer logstore_xapi ($current) is installed than the pinned "
            . "{$plugin['version']}; Moodle cannot downgrade a plugin.");
    }
    say("installing logstore_xapi {$plugin['release']} from {$plugin['url']}");
    $source = fetch_plugin($plugin, $workdir);
    $digest = tree_sha256($source);
    if (!hash_equals(strtolower($plugin['treeSha256']), $digest)) {
        throw new WiringError("the downloaded logstore_xapi does not match the pinned checksum "
            . "(got $digest), so it was not installed.");
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

function set_setting(array $config, string $component, string $name, string $value): void
{
    [$code, $out] = moodle_cli($config, 'admin/cli/cfg.php',
        ["--component=$component", "--name=$name", "--set=$value"]);
    if ($code === 4) {
        say("$component/$name is fixed in config.php; leaving it as the administrator set it");
        return;
    }
    if ($code !== 0) {
        throw new WiringError("cannot set $component/$name with cfg.php (exit $code): $out");
    }
}

function get_setting(array $config, string $component, string $name): string
{
    [$code, $out] = moodle_cli($config, 'admin/cli/cfg.php',
        ["--component=$component", "--name=$name"]);
    return $code === 0 ? $out : '';
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

function configure(array $config, string $username, string $password): void
{
    $settings = ['endpoint' => $config['endpoint'], 'username' => $username,
        'password' => $password] + $config['settings'];
    foreach ($settings as $name => $value) {
        set_setting($config, STORE, (string) $name, is_bool($value) ? ($value ? '1' : '0') : (string) $value);
    }
    say('configured logstore_xapi: endpoint ' . $config['endpoint'] . ", account $username");
    $enabled = get_setting($config, 'tool_log', 'enabled_stores');
    $wanted = with_store($enabled);
    if ($wanted !== $enabled) {
        set_setting($config, 'tool_log', 'enabled_stores', $wanted);
    }
    say("enabled log stores: $wanted");
}

function run_cron_forever(array $config, callable $sleep, ?int $runs = null): void
{
    $interval = max(10, (int) ($config['cronIntervalSeconds'] ?? 60));
    for ($i = 0; $runs === null || $i < $runs; $i++) {
        [$code, $out] = moodle_cli($config, 'admin/cli/cron.php', []);
        // A failing cron run is logged and retried: delivery resumes when the cause goes.
        say($code === 0 ? 'cron run finished' : "cron run failed (exit $code): "
            . substr($out, -300));
        $sleep($interval);
    }
}

function main(array $env, callable $sleep, ?int $cronRuns = null): int
{
    try {
        $config = load_config($env['WIRING_CONFIG'] ?? '/la-stack/wiring.json');
        $username = (string) ($env['LRS_USERNAME'] ?? '');
        $password = (string) ($env['LRS_PASSWORD'] ?? '');
        if ($username === '' || $password === '') {
            throw new WiringError('LRS_USERNAME and LRS_PASSWORD must come from the Moodle '
                . 'LRS account Secret.');
        }
        $deadline = time() + (int) ($config['installDeadlineSeconds'] ?? 1800);
        wait_for_install($config, $deadline, $sleep);
        $workdir = sys_get_temp_dir() . '/xapi-wiring-' . getmypid();
        remove_tree($workdir);
        mkdir($workdir, 0700, true);
        try {
            install_plugin($config, $workdir);
        } finally {
            remove_tree($workdir);
        }
        run_upgrade($config);
        configure($config, $username, $password);
    } catch (WiringError $e) {
        fwrite(STDERR, 'error: ' . $e->getMessage() . PHP_EOL);
        return 1;
    }
    run_cron_forever($config, $sleep, $cronRuns);
    return 0;
}

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    exit(main(getenv(), 'sleep'));
}
