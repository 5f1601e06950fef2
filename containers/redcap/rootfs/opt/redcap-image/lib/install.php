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
/**
 * The image's own record that it configured this database (written in the seeding transaction).
 * "Already configured" is decided by this marker, never by whether the first administrator still
 * exists: administrators rename or delete site_admin. Not named redcap_*: REDCap's own tables are.
 */
const RC_STATE_TABLE = 'rc_image_state';
/**
 * Tables created last by REDCap's install.sql (redcap_v15.7.6/Resources/sql/install.sql creates its
 * tables in alphabetical order, these two last, before its ALTER TABLE ... ADD FOREIGN KEY block).
 * REDCap runs the statements one by one and ignores failures, so an install that stopped half way
 * still prints "Install completed!" and exits 0: these tables show it ran to the end.
 */
const RC_LATE_INSTALL_TABLES = ['redcap_validation_types', 'redcap_web_service_cache'];
/** How much of the installer's or upgrader's output reaches the log. */
const RC_OUTPUT_TAIL = 2000;
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

function rc_table_exists(mysqli $db, string $table): bool
{
    $schema = (string) rc_env('DB_NAME');
    $stmt = $db->prepare('SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?');
    $stmt->bind_param('ss', $schema, $table);
    $stmt->execute();
    return (int) $stmt->get_result()->fetch_row()[0] === 1;
}

function rc_schema_installed(mysqli $db): bool
{
    return rc_table_exists($db, 'redcap_config');
}

function rc_config_value(mysqli $db, string $field): ?string
{
    $stmt = $db->prepare('SELECT value FROM redcap_config WHERE field_name = ?');
    $stmt->bind_param('s', $field);
    $stmt->execute();
    $row = $stmt->get_result()->fetch_row();
    return $row === null ? null : (string) $row[0];
}

/**
 * REDCap's own unattended install: install.php with a GET request carrying auto=1, which REDCap
 * 15.7.6 (redcap_vX/install.php) turns into sql=auto=1 and answers with its default settings
 * (auth_meth_global = none, ...). Run from the PHP command line, emulating that GET, in its own
 * process: no HTTP timeout applies (a real install takes a minute), nothing is exposed on the web
 * while it runs (every page answers 503 until first boot is done), and its output and fatal errors
 * are captured here. A POST would skip REDCap's defaults ($_POST stays empty).
 *
 * @return array{status:int,output:string,errors:string}
 */
function rc_run_redcap_installer(): array
{
    return rc_run_webroot_php('install.php', 'REDCap installer');
}

/**
 * REDCap's upgrade.php in auto mode (a GET with auto=1), in its own PHP process. REDCap applies an
 * upgrade itself only when it is a "fast" one (upgrade_fast_versions.txt) and the user may create,
 * alter and drop tables; otherwise it changes nothing and an administrator runs the upgrade page.
 *
 * @return array{status:int,output:string,errors:string}
 */
function rc_run_redcap_upgrader(): array
{
    return rc_run_webroot_php('upgrade.php', 'REDCap upgrader');
}

/**
 * Runs one of REDCap's web-root scripts as a GET with auto=1 from the command line. REDCap calls
 * error_reporting(0), which silences even fatal errors; a shutdown function prints the last error
 * to stderr anyway (error_get_last() records errors whatever error_reporting says).
 *
 * @return array{status:int,output:string,errors:string}
 */
function rc_run_webroot_php(string $script, string $what): array
{
    $code = 'register_shutdown_function(static function (): void {'
        . ' $e = error_get_last();'
        . ' if ($e !== null && ($e["type"] & (E_ERROR | E_PARSE | E_CORE_ERROR | E_COMPILE_ERROR | E_USER_ERROR | E_RECOVERABLE_ERROR))) {'
        . ' fwrite(STDERR, "PHP fatal error: " . $e["message"] . " in " . $e["file"] . ":" . $e["line"] . "\n"); } });'
        . ' $_GET = ["auto" => "1"]; $_REQUEST = $_GET; $_POST = [];'
        . ' $_SERVER["REQUEST_METHOD"] = "GET"; $_SERVER["HTTP_HOST"] = $_SERVER["SERVER_NAME"] = "localhost";'
        . ' $_SERVER["SERVER_PORT"] = "443"; $_SERVER["HTTPS"] = "on"; $_SERVER["QUERY_STRING"] = "auto=1";'
        . ' $_SERVER["REQUEST_URI"] = "/' . $script . '?auto=1";'
        . ' $_SERVER["PHP_SELF"] = $_SERVER["SCRIPT_NAME"] = "/' . $script . '";'
        . ' $_SERVER["SCRIPT_FILENAME"] = "' . RC_WEBROOT . '/' . $script . '";'
        . ' chdir("' . RC_WEBROOT . '"); require "' . $script . '";';
    $args = [PHP_BINARY, '-d', 'display_errors=stderr', '-d', 'log_errors=0', '-d', 'error_reporting=E_ALL', '-r', $code];
    $proc = proc_open($args, [0 => ['file', '/dev/null', 'r'], 1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, RC_WEBROOT);
    if (!is_resource($proc)) {
        throw new RcInstallError("could not start $what");
    }
    // Both pipes are read to the end without blocking each other: stderr can be long too.
    stream_set_blocking($pipes[1], false);
    stream_set_blocking($pipes[2], false);
    $out = $err = '';
    while (!feof($pipes[1]) || !feof($pipes[2])) {
        $read = array_filter([$pipes[1], $pipes[2]], static fn ($p) => !feof($p));
        $write = $except = null;
        if (stream_select($read, $write, $except, 5) === false) {
            break;
        }
        foreach ($read as $pipe) {
            $chunk = (string) fread($pipe, 65536);
            if ($pipe === $pipes[1]) {
                $out = substr($out . $chunk, -8 * RC_OUTPUT_TAIL);
            } else {
                $err = substr($err . $chunk, -8 * RC_OUTPUT_TAIL);
            }
        }
    }
    fclose($pipes[1]);
    fclose($pipes[2]);
    $status = proc_close($proc);
    $result = ['status' => $status, 'output' => rc_tail($out), 'errors' => rc_tail($err)];
    // REDCap exits 0 whatever happens: its words are logged every time, and the caller judges the
    // database, never the exit status.
    rc_log($status === 0 && $result['errors'] === '' ? 'info' : 'warning', "$what finished", [
        'exit_status' => $status, 'output' => $result['output'], 'errors' => $result['errors']]);
    return $result;
}

/** The last RC_OUTPUT_TAIL characters, tags and blank runs squeezed (REDCap may answer HTML). */
function rc_tail(string $text): string
{
    $text = trim((string) preg_replace('/\s+/', ' ', strip_tags($text)));
    return strlen($text) > RC_OUTPUT_TAIL ? '...' . substr($text, -RC_OUTPUT_TAIL) : $text;
}

/**
 * After REDCap's installer: the schema, the version row and the tables install.sql creates last.
 * Throws naming what is missing (the installer's own output was logged just before).
 */
function rc_check_install(mysqli $db): void
{
    if (!rc_schema_installed($db)) {
        throw new RcInstallError('REDCap installer finished but redcap_config does not exist (its output is logged above)');
    }
    $missing = array_values(array_filter(RC_LATE_INSTALL_TABLES, static fn ($t) => !rc_table_exists($db, $t)));
    if ($missing) {
        throw new RcInstallError('REDCap installer stopped part way: tables created late in install.sql are missing: '
            . implode(', ', $missing) . ' (its output is logged above)');
    }
    $version = rc_config_value($db, 'redcap_version');
    if ($version !== rc_image_version()) {
        throw new RcInstallError('REDCap installer finished but redcap_version is ' . var_export($version, true)
            . ', not this image\'s ' . rc_image_version() . ' (its output is logged above)');
    }
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
            'database_version' => $after, 'image_version' => $image, 'upgrader' => $said['output']]);
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

/**
 * REDCap features that move long work into cron jobs and have a redcap_config switch: seeded on
 * at the first install only (part of rc_first_boot's seeding), so the Control Center owns them
 * afterwards. App Runner cuts every request at 120 s; these keep long work out of the request
 * (docs/compute.md, "Long requests"). Facts from REDCap 15.7.6:
 * - bulk_record_delete_enable_global: Classes/BulkRecordDelete.php offers deleting records "using
 *   a background process" (cron job BackgroundRecordDelete) only when it is '1';
 *   ControlCenter/modules_settings.php sets it; install_data.sql's default is '1'.
 * The background Data Import (cron job BackgroundDataImport, Classes/DataImport.php) has no
 * redcap_config switch: REDCap always offers it.
 */
function rc_background_job_rows(): array
{
    return [
        'bulk_record_delete_enable_global' => '1',
    ];
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
    // A real address in place of install_data.sql's sample one (joe.user@projectredcap.org in
    // REDCap 15.7.6): REDCap's password recovery page needs no login and mails a reset link there.
    $email = (string) rc_env('REDCAP_ADMIN_EMAIL');
    $stmt = $db->prepare('UPDATE redcap_user_information SET user_email = ? WHERE username = ?');
    $stmt->bind_param('ss', $email, $user);
    $stmt->execute();
    return $user;
}

/** The image's marker table; created outside any transaction (DDL commits implicitly). */
function rc_ensure_state_table(mysqli $db): void
{
    $db->query('CREATE TABLE IF NOT EXISTS `' . RC_STATE_TABLE . '` (`name` varchar(64) NOT NULL,'
        . ' `value` varchar(255) NOT NULL, `updated_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,'
        . ' PRIMARY KEY (`name`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci'
        . " COMMENT='Written by the REDCap container image: configured = first boot seeded this database'");
}

/** When (and by which image version) this database was configured, or null. */
function rc_configured_marker(mysqli $db): ?string
{
    $r = $db->query('SELECT `value` FROM `' . RC_STATE_TABLE . "` WHERE `name` = 'configured'");
    $row = $r->fetch_row();
    return $row === null ? null : (string) $row[0];
}

function rc_write_configured_marker(mysqli $db, string $how): void
{
    $value = $how . ' by image ' . rc_image_version() . ' at ' . gmdate('Y-m-d\TH:i:s\Z');
    $stmt = $db->prepare('INSERT INTO `' . RC_STATE_TABLE . "` (`name`, `value`) VALUES ('configured', ?)"
        . ' ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), `updated_at` = CURRENT_TIMESTAMP');
    $stmt->bind_param('s', $value);
    $stmt->execute();
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
            // Judged by what it did, not by its exit status (always 0).
            rc_check_install($db);
            rc_log('info', 'REDCap installed', ['seconds' => round(microtime(true) - $started, 2)]);
            $outcome = 'installed';
        }
        rc_ensure_state_table($db);
        $marker = rc_configured_marker($db);
        $auth = rc_config_value($db, 'auth_meth_global');
        if ($marker !== null) {
            if ($auth === null || $auth === 'none') {
                // Configured on an earlier boot, and someone set authentication "none" since (in the
                // Control Center, or in the database): lock REDCap again at every start and change
                // nothing else, so passwords, the rotated S3 key and every setting stay.
                rc_set_config($db, 'auth_meth_global', 'table');
                rc_log('warning', 'authentication was none on a configured REDCap: set back to table, nothing else changed');
                $outcome = 'relocked';
            }
        } elseif ($auth === null || $auth === 'none') {
            // Right after install, or when an earlier boot died before seeding committed: seed, and
            // write the marker in the same transaction.
            $db->begin_transaction();
            try {
                $rows = rc_seed_rows();
                // Before the stack's rows (+ keeps the left's order): auth_meth_global stays the last written.
                $rows = rc_background_job_rows() + $rows;
                foreach ($rows as $field => $value) {
                    rc_set_config($db, $field, $value);
                }
                $admin = rc_seed_admin($db);
                rc_write_configured_marker($db, 'seeded');
                $db->commit();
            } catch (Throwable $e) {
                $db->rollback();
                throw $e;
            }
            rc_log('info', 'redcap_config seeded', ['rows' => array_keys($rows), 'administrator' => $admin]);
            $outcome = $outcome === 'installed' ? 'installed' : 'seeded';
        } else {
            // Authentication already set but no marker: a REDCap configured before the image kept
            // one (or by hand). Take it as it is; seeding would overwrite an administrator's work.
            rc_write_configured_marker($db, 'adopted');
            rc_log('warning', 'REDCap was configured without the image\'s marker: adopted as it is, nothing changed');
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
