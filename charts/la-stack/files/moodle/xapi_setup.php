<?php
// Connects an existing Moodle to la-stack's Ralph LRS. Run it on the Moodle host as the
// user that owns Moodle's code, with the PHP that runs Moodle:
//
//   php xapi_setup.php --moodle=/var/www/moodle [--config=setup.json] [--password-file=lrs-password]
//   php xapi_setup.php --moodle=/var/www/moodle --status
//
// `--password-file=-` reads the LRS password from stdin; it is never taken from the command
// line. The configuration (endpoint, account, pinned plugin release, delivery settings) is
// the JSON that la-stack rendered for this Moodle. The wiring itself is xapi_wiring.php's,
// the same code the in-cluster Moodle's sidecar runs. This script adds what a Moodle
// outside the cluster needs: it checks that the LRS answers with this account before
// changing anything, sends the queue once, and shows the id of a delivered statement.
// Running it again changes nothing that is already right.

declare(strict_types=1);

require __DIR__ . '/xapi_wiring.php';

const EMIT_TASK = '\\logstore_xapi\\task\\emit_task';
const DELIVERY_WAIT_SECONDS = 30;
const LATEST_PAGE = 100;

function setup_usage(): string
{
    return 'usage: php xapi_setup.php --moodle=DIR [--config=FILE] [--password-file=FILE|-] '
        . '[--status]';
}

function load_setup_config(string $path, string $moodleDir): array
{
    $config = read_json_file($path, 'setup configuration');
    require_keys($config, ['endpoint', 'username', 'plugin', 'settings'], 'setup configuration');
    return ['moodleDir' => rtrim($moodleDir, '/'), 'php' => PHP_BINARY] + $config;
}

function read_password(string $source): string
{
    $raw = $source === '-' ? stream_get_contents(STDIN) : @file_get_contents($source);
    $password = $raw === false ? '' : rtrim((string) $raw, "\r\n");
    if ($password === '') {
        throw new WiringError("no LRS password could be read from $source.");
    }
    return $password;
}

/** GET <endpoint>statements as the account; returns [HTTP status, decoded body]. */
function lrs_get(array $config, string $password, string $query): array
{
    $auth = base64_encode($config['username'] . ':' . $password);
    $context = stream_context_create(['http' => [
        'method' => 'GET', 'timeout' => 15, 'ignore_errors' => true,
        'header' => "Authorization: Basic $auth\r\nX-Experience-API-Version: 1.0.3\r\n",
    ]]);
    $url = $config['endpoint'] . 'statements?' . $query;
    $body = @file_get_contents($url, false, $context);
    if ($body === false) {
        throw new WiringError("the LRS at {$config['endpoint']} cannot be reached, so nothing "
            . 'was changed.');
    }
    preg_match('{^HTTP/\S+ (\d{3})}', $http_response_header[0] ?? '', $m);
    return [(int) ($m[1] ?? 0), json_decode($body, true)];
}

function check_lrs(array $config, string $password): void
{
    [$status] = lrs_get($config, $password, 'limit=1');
    if ($status === 401 || $status === 403) {
        throw new WiringError("the LRS at {$config['endpoint']} refused the account "
            . "{$config['username']} (HTTP $status), so nothing was changed.");
    }
    if ($status !== 200) {
        throw new WiringError("the LRS at {$config['endpoint']} answered HTTP $status, so "
            . 'nothing was changed.');
    }
    say("the LRS at {$config['endpoint']} accepts the account {$config['username']}");
}

/** Ids of the account's latest statements (Ralph orders them by timestamp, newest first). */
function latest_ids(array $config, string $password): array
{
    [$status, $body] = lrs_get($config, $password, 'limit=' . LATEST_PAGE);
    return $status === 200 ? array_column($body['statements'] ?? [], 'id') : [];
}

/**
 * Sends the queue now (the scheduled task cron would run) and shows a statement that this
 * run delivered: one among the account's latest that was not there before. (Ralph applies
 * `since` to the statements' timestamps, not to when they were stored, so it cannot say
 * which statements are new.)
 */
function show_delivery(array $config, string $password): void
{
    $before = latest_ids($config, $password);
    [$code, $out] = moodle_cli($config, 'admin/cli/scheduled_task.php', ['--execute=' . EMIT_TASK]);
    if ($code !== 0) {
        say("sending the queue failed (exit $code): " . substr($out, -300));
    }
    $deadline = time() + DELIVERY_WAIT_SECONDS;
    do {
        $new = array_values(array_diff(latest_ids($config, $password), $before));
        if ($new) {
            say("delivered: statement {$new[0]} is stored in the LRS");
            return;
        }
        sleep(1);
    } while (time() < $deadline);
    say('no statement has reached the LRS yet: Moodle queues one for each logged event and '
        . 'cron sends them; check again with --status.');
}

function setup_main(array $argv): int
{
    $options = [];
    foreach (array_slice($argv, 1) as $arg) {
        if (!preg_match('/^--([a-z-]+)(?:=(.*))?$/', $arg, $m)) {
            fwrite(STDERR, 'error: unexpected argument ' . $arg . '; ' . setup_usage() . PHP_EOL);
            return 2;
        }
        $options[$m[1]] = $m[2] ?? true;
    }
    $unknown = array_diff(array_keys($options), ['moodle', 'config', 'password-file', 'status']);
    if ($unknown || !is_string($options['moodle'] ?? null)) {
        fwrite(STDERR, 'error: ' . setup_usage() . PHP_EOL);
        return 2;
    }
    try {
        $config = load_setup_config((string) ($options['config'] ?? __DIR__ . '/setup.json'),
            $options['moodle']);
        if (!is_file($config['moodleDir'] . '/config.php')) {
            throw new WiringError("{$config['moodleDir']} has no config.php: point --moodle at "
                . 'the folder of an installed Moodle.');
        }
        if (isset($options['status'])) {
            say(describe_status(delivery_status($config)));
            return 0;
        }
        $password = read_password((string) ($options['password-file'] ?? __DIR__ . '/lrs-password'));
        $layout = moodle_layout($config['moodleDir']);
        check_supported($layout, $config['plugin']);
        check_lrs($config, $password);
        wire($config, $config['username'], $password);
        show_delivery($config, $password);
        say(describe_status(delivery_status($config)));
    } catch (WiringError $e) {
        fwrite(STDERR, 'error: ' . $e->getMessage() . PHP_EOL);
        return 1;
    }
    return 0;
}

if (PHP_SAPI === 'cli' && realpath($_SERVER['SCRIPT_FILENAME'] ?? '') === __FILE__) {
    exit(setup_main($argv));
}
