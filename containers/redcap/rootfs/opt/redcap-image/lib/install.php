<?php
/**
 * First boot: wait for the database, take the install lock, run REDCap's own unattended
 * installer when the schema is absent, then seed redcap_config in one transaction. Only the
 * instance holding the lock installs; the others wait for it and find the work done. Under the
 * same lock, a database of an older version gets REDCap's unattended (fast) upgrade.
 */
declare(strict_types=1);

require_once __DIR__ . '/db.php';

const RC_LOCK_NAME = 'redcap_image_install';
const RC_LOCK_WAIT_SECONDS = 900;
const RC_READY_FLAG = '/run/redcap/ready';
const RC_WEBROOT = '/var/www/redcap';

class RcInstallError extends RuntimeException {}

/** The database holds a newer REDCap than this image: never run older code on it. */
final class RcNewerDatabase extends RcInstallError {}

/** Connects with bounded retries and backoff; every failed attempt is logged with its cause. */
function rc_wait_for_database(int $waitSeconds): mysqli
{
    $deadline = time() + $waitSeconds;
    $delay = 1;
    for ($attempt = 1; ; $attempt++) {
        try {
            return rc_db_connect();
        } catch (mysqli_sql_exception | RcAwsError $e) {
            // mysqli messages carry host and user, never the password or token.
            $cause = $e instanceof mysqli_sql_exception ? "MySQL error {$e->getCode()}: {$e->getMessage()}" : $e->getMessage();
            $left = $deadline - time();
            if ($left <= 0) {
                throw new RcInstallError("database unreachable after $attempt attempts in {$waitSeconds}s: $cause");
            }
            $wait = min($delay, $left);
            rc_log('warning', 'database not reachable yet; retrying', ['attempt' => $attempt, 'retry_in_s' => $wait, 'cause' => $cause]);
            sleep($wait);
            $delay = min($delay * 2, 30);
        }
    }
}

function rc_schema_installed(mysqli $db): bool
{
    $name = $db->real_escape_string((string) rc_env('DB_NAME'));
    $r = $db->query("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$name' AND table_name = 'redcap_config'");
    return (int) $r->fetch_row()[0] === 1;
}

function rc_config_value(mysqli $db, string $field): ?string
{
    $stmt = $db->prepare('SELECT value FROM redcap_config WHERE field_name = ?');
    $stmt->bind_param('s', $field);
    $stmt->execute();
    $row = $stmt->get_result()->fetch_row();
    return $row === null ? null : (string) $row[0];
}

/** REDCap's install.php in auto mode, in its own PHP process (it calls exit and prints SQL). */
function rc_run_redcap_installer(): void
{
    $code = '$_GET["auto"] = 1; $_GET["sql"] = 1; $_SERVER["REQUEST_METHOD"] = "POST";'
        . ' $_SERVER["HTTP_HOST"] = "localhost"; $_SERVER["REQUEST_URI"] = "/install.php";'
        . ' $_SERVER["PHP_SELF"] = "/install.php"; $_SERVER["SCRIPT_NAME"] = "/install.php";'
        . ' chdir("' . RC_WEBROOT . '"); require "install.php";';
    rc_run_webroot_php($code, 'REDCap installer');
}

/**
 * REDCap's upgrade.php in auto mode, in its own PHP process. REDCap applies an upgrade itself
 * only when it is a "fast" one (upgrade_fast_versions.txt) and the user may create, alter and
 * drop tables; otherwise it changes nothing and an administrator runs the upgrade page.
 */
function rc_run_redcap_upgrader(): string
{
    $code = '$_GET["auto"] = 1; $_SERVER["REQUEST_METHOD"] = "GET";'
        . ' $_SERVER["HTTP_HOST"] = "localhost"; $_SERVER["REQUEST_URI"] = "/upgrade.php?auto=1";'
        . ' $_SERVER["PHP_SELF"] = "/upgrade.php"; $_SERVER["SCRIPT_NAME"] = "/upgrade.php";'
        . ' chdir("' . RC_WEBROOT . '"); require "upgrade.php";';
    return rc_run_webroot_php($code, 'REDCap upgrader');
}

/** Runs PHP code in the web root in a child process; returns the tail of its output. */
function rc_run_webroot_php(string $code, string $what): string
{
    $proc = proc_open([PHP_BINARY, '-d', 'display_errors=stderr', '-r', $code], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, RC_WEBROOT);
    if (!is_resource($proc)) {
        throw new RcInstallError("could not start $what");
    }
    $out = stream_get_contents($pipes[1]);
    $err = stream_get_contents($pipes[2]);
    fclose($pipes[1]);
    fclose($pipes[2]);
    $status = proc_close($proc);
    if ($status !== 0) {
        throw new RcInstallError("$what exited with $status: " . substr(trim((string) $err ?: (string) $out), -500));
    }
    return substr(trim((string) $out), -300);
}

/**
 * A database older than the image: try REDCap's unattended (fast) upgrade, under the caller's
 * install lock; when REDCap declines, say that an administrator must run upgrade.php.
 * Returns the version the database holds afterwards.
 */
function rc_upgrade_database(mysqli $db, string $installed): string
{
    $image = rc_image_version();
    if (version_compare($installed, $image, '>')) {
        // Older code must never run on an upgraded schema. The entrypoint keeps answering 503
        // (so an App Runner rollback to this image completes) until the database is restored
        // or the newer image is deployed again.
        throw new RcNewerDatabase("database holds REDCap $installed, newer than this image's $image:"
            . ' restore the database from the snapshot taken before the upgrade, or deploy the newer image (docs/image-build.md)');
    }
    rc_log('info', 'database holds an older REDCap version: running REDCap\'s unattended upgrade', [
        'database_version' => $installed, 'image_version' => $image]);
    $said = rc_run_redcap_upgrader();
    $after = (string) rc_config_value($db, 'redcap_version');
    if ($after === $image) {
        rc_log('info', 'REDCap upgraded unattended', ['from' => $installed, 'to' => $image]);
    } else {
        rc_log('warning', 'REDCap did not upgrade unattended (not a fast upgrade): an administrator must run upgrade.php from an AdminCidrs address', [
            'database_version' => $after, 'image_version' => $image, 'upgrader' => $said]);
    }
    return $after;
}

/** What the stack seeds on first install; later boots never touch these rows. */
function rc_seed_rows(): array
{
    $from = (string) rc_env('REDCAP_FROM_EMAIL');
    $s3 = rc_secret('S3_USER_SECRET');
    $rows = [
        'edoc_storage_option' => '2',
        'amazon_s3_bucket' => (string) rc_env('S3_BUCKET'),
        'amazon_s3_endpoint' => (string) rc_env('REDCAP_REGION'),
        'from_email' => $from,
        'homepage_contact_email' => $from,
        'project_contact_email' => $from,
        'auto_report_stats' => '0',
    ];
    if (rc_env('REDCAP_BASE_URL') !== null) {
        $rows['redcap_base_url'] = (string) rc_env('REDCAP_BASE_URL');
    }
    // Afterwards the key rotation function owns these two rows.
    if (isset($s3['AccessKeyId'])) {
        $rows['amazon_s3_key'] = $s3['AccessKeyId'];
        $rows['amazon_s3_secret'] = $s3['SecretAccessKey'];
    }
    // Written last in the same transaction: REDCap is never "none" once this commits.
    $rows['auth_meth_global'] = 'table';
    return $rows;
}

function rc_set_config(mysqli $db, string $field, string $value): void
{
    $stmt = $db->prepare('INSERT INTO redcap_config (field_name, value) VALUES (?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)');
    $stmt->bind_param('ss', $field, $value);
    $stmt->execute();
}

/** The initial administrator: table login with the stack's generated password, changed at first login. */
function rc_seed_admin(mysqli $db): string
{
    $admin = rc_secret('REDCAP_ADMIN_SECRET');
    $user = $admin['username'];
    $stmt = $db->prepare('SELECT super_user FROM redcap_user_information WHERE username = ?');
    $stmt->bind_param('s', $user);
    $stmt->execute();
    $row = $stmt->get_result()->fetch_row();
    if ($row === null || (int) $row[0] !== 1) {
        throw new RcInstallError("REDCAP_ADMIN_SECRET: username is not a REDCap super user after install");
    }
    $algo = rc_config_value($db, 'password_algo') ?? 'md5';
    if (!in_array($algo, hash_algos(), true)) {
        throw new RcInstallError("redcap_config password_algo names an unknown hash");
    }
    $salt = rc_random_salt(100);
    $hash = hash($algo, $admin['password'] . $salt);
    $stmt = $db->prepare('INSERT INTO redcap_auth (username, password, password_salt, legacy_hash, temp_pwd) VALUES (?, ?, ?, 0, 1)'
        . ' ON DUPLICATE KEY UPDATE password = VALUES(password), password_salt = VALUES(password_salt), legacy_hash = 0, temp_pwd = 1');
    $stmt->bind_param('sss', $user, $hash, $salt);
    $stmt->execute();
    return $user;
}

/** Whether the stack's administrator has a table login: written only by seeding, with table auth. */
function rc_admin_login_exists(mysqli $db): bool
{
    $user = rc_secret('REDCAP_ADMIN_SECRET')['username'];
    $stmt = $db->prepare('SELECT 1 FROM redcap_auth WHERE username = ?');
    $stmt->bind_param('s', $user);
    $stmt->execute();
    return $stmt->get_result()->fetch_row() !== null;
}

function rc_random_salt(int $length): string
{
    $alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
    $out = '';
    for ($i = 0; $i < $length; $i++) {
        $out .= $alphabet[random_int(0, strlen($alphabet) - 1)];
    }
    return $out;
}

/** Returns what happened: installed, seeded, relocked, upgraded or already-configured. */
function rc_first_boot(int $waitSeconds): string
{
    $db = rc_wait_for_database($waitSeconds);
    $db->select_db((string) rc_env('DB_NAME'));
    $lock = $db->real_escape_string(RC_LOCK_NAME);
    $got = (int) $db->query("SELECT GET_LOCK('$lock', " . RC_LOCK_WAIT_SECONDS . ')')->fetch_row()[0];
    if ($got !== 1) {
        throw new RcInstallError('timed out waiting for the install lock held by another instance');
    }
    try {
        $outcome = 'already-configured';
        if (!rc_schema_installed($db)) {
            rc_log('info', 'schema absent: running REDCap\'s unattended installer', ['version' => rc_image_version()]);
            $started = microtime(true);
            rc_run_redcap_installer();
            if (!rc_schema_installed($db)) {
                throw new RcInstallError('REDCap installer finished but redcap_config does not exist');
            }
            rc_log('info', 'REDCap installed', ['seconds' => round(microtime(true) - $started, 2)]);
            $outcome = 'installed';
        }
        $auth = rc_config_value($db, 'auth_meth_global');
        if (($auth === null || $auth === 'none') && rc_admin_login_exists($db)) {
            // Seeding committed on an earlier boot (its administrator login is there) and someone
            // set authentication "none" since: lock REDCap again and change nothing else, so the
            // administrators' password, the rotated S3 key and their settings all stay.
            rc_set_config($db, 'auth_meth_global', 'table');
            rc_log('warning', 'authentication was none on a configured REDCap: set back to table, nothing else changed');
            $outcome = 'relocked';
        } elseif ($auth === null || $auth === 'none') {
            // Right after install, or when an earlier boot died before seeding committed.
            $db->begin_transaction();
            try {
                $rows = rc_seed_rows();
                foreach ($rows as $field => $value) {
                    rc_set_config($db, $field, $value);
                }
                $admin = rc_seed_admin($db);
                $db->commit();
            } catch (Throwable $e) {
                $db->rollback();
                throw $e;
            }
            rc_log('info', 'redcap_config seeded', ['rows' => array_keys($rows), 'administrator' => $admin]);
            $outcome = $outcome === 'installed' ? 'installed' : 'seeded';
        }
        // The stack owns the replica switch: it follows DbReaderCount on every boot.
        rc_set_config($db, 'read_replica_enable', rc_env('DB_READ_HOSTNAME') !== null ? '1' : '0');
        $installedVersion = rc_config_value($db, 'redcap_version');
        if ($installedVersion !== null && $installedVersion !== rc_image_version()) {
            if (rc_upgrade_database($db, $installedVersion) === rc_image_version()) {
                $outcome = 'upgraded';
            }
        }
    } finally {
        $db->query("SELECT RELEASE_LOCK('$lock')");
        $db->close();
    }
    return $outcome;
}

function rc_image_version(): string
{
    return trim((string) file_get_contents(__DIR__ . '/../REDCAP_VERSION'));
}
