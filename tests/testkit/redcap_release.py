"""A stand-in REDCap release zip with the real layout, for the image tests.

REDCap is licensed: its code never enters this repository. This stand-in is written in our own
words; it has the folders and entry points the image relies on (``redcap/`` web root,
``database.php`` to replace, ``install.php``, ``upgrade.php``, ``cron.php``, one
``redcap_vX.Y.Z/`` folder with ``Resources/sql/install.sql`` and ``install_data.sql`` and a bundled
``aws-sdk-php``) and behaves like REDCap wherever the image depends on REDCap's behaviour. Each such
behaviour names, beside it, the REDCap file it was read from: public copies of REDCap 15.7.6
(``redcap_v15.7.6/...``) were read for facts only (see docs/image.md, "The stand-in release").

The behaviours that matter most, because the image broke on them before:

- ``db_connect()`` includes ``database.php`` *inside the function* and reads its variables as
  locals (only its connection handles are global), includes it again in the same request, and
  splits ``host:port`` itself. A ``database.php`` that sets only globals fails here with REDCap's
  "could not be found" error, as it would with REDCap.
- ``install.php`` and ``upgrade.php`` call ``error_reporting(0)``, run their SQL one statement at
  a time ignoring failures, print little, and exit 0 whatever happened.
- A non-POST request with ``auto`` is REDCap's unattended install and sets REDCap's defaults
  (``auth_meth_global = 'none'``); a POST from the command line has no defaults at all.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

STANDIN_VERSION = "15.5.1"
# REDCap 15.7.6 Resources/sql/install.sql creates its tables in alphabetical order; these two come
# last. The image checks for them after an install (lib/install.php RC_LATE_INSTALL_TABLES).
LATE_INSTALL_TABLES = ("redcap_validation_types", "redcap_web_service_cache")
# REDCap 15.7.6 Resources/sql/install_data.sql: the sample address of the super user site_admin.
SAMPLE_ADMIN_EMAIL = "joe.user@projectredcap.org"

_INIT_FUNCTIONS = r"""<?php
// Stand-in for REDCap's Config/init_functions.php: only what the image relies on, in our own words.

// REDCap 15.7.6 Config/init_functions.php get_db_port_by_hostname(): the text after the first ':'
// of $hostname when it is numeric, else MySQL's 3306; null without a hostname.
function standin_db_port(?string $hostname): ?int {
    if ($hostname === null) { return null; }
    $parts = explode(':', $hostname, 2);
    return (isset($parts[1]) && is_numeric($parts[1])) ? (int) $parts[1] : 3306;
}
// REDCap 15.7.6 Config/init_functions.php remove_db_port_from_hostname(): everything from the
// first ':' on is dropped.
function standin_db_host(?string $hostname): ?string {
    return $hostname === null ? null : explode(':', $hostname, 2)[0];
}

// REDCap 15.7.6 Config/init_functions.php db_connect():
// - declares only its connection handles global, then runs `include $db_conn_file;` INSIDE the
//   function, so database.php's $hostname, $db, $username, $password, $salt, $db_ssl_* and
//   $read_replica_* are read as local variables of the function;
// - database.php is the web root's (three folders up from Config/);
// - errors are not reported on install.php (its PHP_SELF): the installer carries on without a
//   connection; elsewhere a missing value or a failed connection stops the page with a message;
// - with $db_ssl_ca set it connects through mysqli_ssl_set + mysqli_real_connect, MYSQLI_CLIENT_SSL
//   when $db_ssl_verify_server_cert is true (else "don't verify", 64);
// - with read-replica values it connects to the replica through a recursive call (which includes
//   database.php again), or else includes database.php once more to reset the values;
// - an empty $salt stops every page but install.php;
// - at the end it copies the values into $GLOBALS itself.
function db_connect(bool $replica = false): bool {
    global $rc_connection, $rc_replica_connection;
    $db_conn_file = dirname(__DIR__, 2) . DIRECTORY_SEPARATOR . 'database.php';
    include $db_conn_file;
    $reportErrors = basename((string) ($_SERVER['PHP_SELF'] ?? '')) !== 'install.php';
    $replicaConfigured = isset($read_replica_username) && $read_replica_username != '';
    if ($replica) {
        if (!$replicaConfigured) { return false; }
        $hostname = $read_replica_hostname ?? '';
        $username = $read_replica_username ?? '';
        $password = $read_replica_password ?? '';
        $db = $read_replica_db ?? '';
        if (isset($read_replica_db_ssl_ca) && $read_replica_db_ssl_ca != '') {
            $db_ssl_key = $read_replica_db_ssl_key ?? '';
            $db_ssl_cert = $read_replica_db_ssl_cert ?? '';
            $db_ssl_ca = $read_replica_db_ssl_ca;
            $db_ssl_capath = $read_replica_db_ssl_capath ?? null;
            $db_ssl_cipher = $read_replica_db_ssl_cipher ?? null;
            $db_ssl_verify_server_cert = $read_replica_db_ssl_verify_server_cert ?? false;
        }
    }
    $error = '';
    $link = false;
    if (!isset($username) || !isset($password) || !isset($db) || !isset($hostname)) {
        $error = "One or more database connection values (\$hostname, \$db, \$username, \$password)"
            . " could not be found in your database connection file [$db_conn_file].";
    } else {
        try {
            $link = mysqli_init();
            if (isset($db_ssl_ca) && $db_ssl_ca != '') {
                mysqli_options($link, MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
                mysqli_ssl_set($link, ($db_ssl_key ?? '') ?: null, ($db_ssl_cert ?? '') ?: null, $db_ssl_ca, ($db_ssl_capath ?? '') ?: null, ($db_ssl_cipher ?? '') ?: null);
                $flags = (isset($db_ssl_verify_server_cert) && $db_ssl_verify_server_cert) ? MYSQLI_CLIENT_SSL : 64;
                $ok = mysqli_real_connect($link, standin_db_host($hostname), $username, $password, $db, standin_db_port($hostname), null, $flags);
            } else {
                $ok = mysqli_real_connect($link, standin_db_host($hostname), $username, $password, $db, standin_db_port($hostname));
            }
            if (!$ok) { $link = false; }
        } catch (Throwable $e) {
            $link = false;
        }
        if ($link === false) {
            if ($replica) { include $db_conn_file; return false; }
            $error = "Your database connection file [$db_conn_file] could not connect to the database server.";
        }
    }
    // REDCap 15.7.6: mysqli_report(MYSQLI_REPORT_OFF) after connecting (PHP 8.1 throws by default).
    mysqli_report(MYSQLI_REPORT_OFF);
    if ($replica) {
        $rc_replica_connection = $link;
        return $link !== false;
    }
    $rc_connection = $link === false ? null : $link;
    if ($replicaConfigured && $link !== false) {
        if (standin_config('read_replica_enable') === '1') {
            db_connect(true);
        } else {
            include $db_conn_file;
        }
    }
    if ($reportErrors && $error !== '') {
        exit("CRITICAL ERROR: REDCap server is offline! $error");
    }
    if ($reportErrors && (!isset($salt) || empty($salt))) {
        exit("ERROR: REDCap could not find the variable \$salt defined in [$db_conn_file].");
    }
    $GLOBALS['hostname'] = $hostname ?? null;
    $GLOBALS['username'] = $username ?? null;
    $GLOBALS['password'] = $password ?? null;
    $GLOBALS['db'] = $db ?? null;
    $GLOBALS['salt'] = $salt ?? null;
    return true;
}

// REDCap 15.7.6 Config/init_functions.php db_query(): false without a connection, false on error.
function db_query(string $sql) {
    $conn = $GLOBALS['rc_connection'] ?? null;
    if (!$conn) { return false; }
    try { return mysqli_query($conn, $sql); } catch (Throwable $e) { return false; }
}
// REDCap 15.7.6 db_error(): mysqli_error() of the connection; with none, PHP 8 stops with a TypeError.
function db_error(): string {
    return mysqli_error($GLOBALS['rc_connection'] ?? null);
}
// REDCap 15.7.6 db_multi_query(): splits the text into statements and runs each with db_query(),
// ignoring failures; always returns true.
function db_multi_query(string $sql): bool {
    $lines = array_filter(explode("\n", $sql), static fn ($l) => !str_starts_with(ltrim($l), '--'));
    foreach (preg_split('/;\s*(\n|$)/', implode("\n", $lines)) as $statement) {
        if (trim($statement) !== '') { db_query($statement); }
    }
    return true;
}

function standin_config(string $field): ?string {
    $q = db_query("SELECT value FROM redcap_config WHERE field_name = '" . mysqli_real_escape_string($GLOBALS['rc_connection'], $field) . "'");
    if (!$q) { return null; }
    $row = mysqli_fetch_row($q);
    return $row === null ? null : (string) $row[0];
}

// Any REDCap page: connect first (stopping with REDCap's error when that fails), then, with
// authentication "none" (install.php's default auth_meth_global in REDCap 15.7.6), everyone who
// reaches the site is an administrator; otherwise the login form.
function standin_page(string $title): void {
    db_connect();
    if (standin_config('auth_meth_global') === 'none') {
        echo "<h1>$title</h1><p>REDCap Control Center: logged in as site_admin (administrator)</p>";
        return;
    }
    echo "<h1>$title</h1><form id=\"login\" method=\"post\"><input name=\"username\"><input type=\"password\" name=\"password\"></form>";
}
"""

# The web-root install.php and upgrade.php hand over to the version folder's: redcap_v15.7.6/install.php
# uses $install_version (and "redcap_vX/" paths) when its caller set it, as the web-root one does.
_ROOT_HANDOVER = r"""<?php
$install_version = '@VERSION@';
require __DIR__ . '/redcap_v@VERSION@/@SCRIPT@';
"""

_INSTALL_PHP = r"""<?php
// Stand-in for REDCap's redcap_vX/install.php (REDCap 15.7.6):
// - error_reporting(0) first: nothing it does shows an error, fatal ones included;
error_reporting(0);
// - a non-POST request with `auto` is the unattended install: sql = auto = 1;
if ($_SERVER['REQUEST_METHOD'] != 'POST' && isset($_GET['auto'])) {
    $_GET['sql'] = $_GET['auto'] = 1;
}
$install_version = $install_version ?? substr(basename(__DIR__), strlen('redcap_v'));
require_once __DIR__ . '/Config/init_functions.php';
ob_start();
// - its form's default values, used as $_POST by the unattended GET (a POST from the command
//   line has none: $_POST stays empty): authentication "none", stats reporting on, no base URL,
//   sample contact addresses, local file storage;
$defaults = [
    'auth_meth_global' => 'none', 'auto_report_stats' => '1', 'redcap_base_url' => '',
    'project_contact_email' => 'email@yoursite.edu', 'homepage_contact_email' => 'email@yoursite.edu',
    'edoc_storage_option' => '0', 'language_global' => 'English', 'api_enabled' => '1',
];
if (!isset($_GET['sql'])) {
    echo '<h4>REDCap ' . $install_version . ' Installation Module</h4>';
}
if ($_SERVER['REQUEST_METHOD'] != 'POST' && isset($_GET['sql'])) {
    $_POST = $defaults;
}
if ($_SERVER['REQUEST_METHOD'] == 'POST' || isset($_GET['sql'])) {
    // - the SQL: install.sql, install_data.sql, password_algo set to the best hash, one UPDATE per
    //   form value, the redcap_version row, a redcap_history_version row;
    print file_get_contents(__DIR__ . '/Resources/sql/install.sql');
    print file_get_contents(__DIR__ . '/Resources/sql/install_data.sql');
    print "\nUPDATE redcap_config SET value = 'sha512' WHERE field_name = 'password_algo';\n";
    foreach ($_POST as $field => $value) {
        print "UPDATE redcap_config SET value = '" . addslashes((string) $value) . "' WHERE field_name = '" . addslashes((string) $field) . "';\n";
    }
    print "UPDATE redcap_config SET value = '$install_version' WHERE field_name = 'redcap_version';\n";
    print "REPLACE INTO redcap_history_version (`date`, redcap_version) VALUES (CURDATE(), '$install_version');\n";
    // - unattended: runs it only when "select * from redcap_config" fails, statement by statement
    //   (db_multi_query ignores failures), and says only "Install completed!" or "No need to install".
    if (isset($_GET['sql']) && isset($_GET['auto'])) {
        db_connect();
        db_query('select * from redcap_config');
        $installSQL = ob_get_clean();
        if (db_error() != '') {
            db_multi_query($installSQL);
            print 'Install completed!';
        } else {
            print 'No need to install';
        }
    }
}
// - and ends with exit status 0 whatever happened.
"""

_UPGRADE_PHP = r"""<?php
// Stand-in for REDCap's upgrade.php (REDCap 15.7.6): error_reporting(0); unattended (auto=1) it
// upgrades only when every step is "fast" (the version is listed in upgrade_fast_versions.txt)
// and the database user may change the structure (Upgrade::hasDbStructurePrivileges: CREATE,
// ALTER, INDEX, REFERENCES, DROP); it runs the upgrade SQL statement by statement, ignoring
// failures, and bumps redcap_version even when earlier statements failed; it always exits 0.
error_reporting(0);
require_once __DIR__ . '/Config/init_functions.php';
if (!isset($_GET['auto'])) { echo 'REDCap upgrade page'; return; }
db_connect();
$target = substr(basename(__DIR__), strlen('redcap_v'));
$from = standin_config('redcap_version');
$fast = array_filter(array_map('trim', (array) file(__DIR__ . '/Resources/sql/upgrade_fast_versions.txt')));
if ($from === $target) { echo "-- already at $target\n"; return; }
if (!in_array($target, $fast, true)) { echo "-- $from to $target is not a fast upgrade: an administrator must upgrade\n"; return; }
$grants = '';
$q = db_query('SHOW GRANTS FOR CURRENT_USER()');
while ($q && ($row = mysqli_fetch_row($q))) { $grants .= strtoupper($row[0]) . "\n"; }
foreach (['CREATE', 'ALTER', 'INDEX', 'REFERENCES', 'DROP'] as $privilege) {
    if (!str_contains($grants, 'ALL PRIVILEGES') && !preg_match('/\b' . $privilege . '\b/', $grants)) {
        echo "-- the database user lacks $privilege: an administrator must upgrade\n";
        return;
    }
}
$sqlFile = __DIR__ . "/Resources/sql/upgrade_$target.sql";
$sql = (is_file($sqlFile) ? file_get_contents($sqlFile) : '')
    . "\nUPDATE redcap_config SET value = '$target' WHERE field_name = 'redcap_version';\n"
    . "REPLACE INTO redcap_history_version (`date`, redcap_version) VALUES (CURDATE(), '$target');\n";
db_multi_query($sql);
echo "-- upgraded from $from to $target\n";
"""

# cron.php: REDCap 15.7.6's (redcap_v15.7.6/cron.php: NOAUTH, CRON, System::increaseMaxExecTime(7200),
# Cron::execute()) runs over HTTP with no login and does not set ignore_user_abort. The
# stand-in works for ?standin_seconds=N seconds (at most 20), writing output every second as a
# long job's progress would, then leaves temp/standin-<script>-<id>.done. PHP notices a caller that
# hung up only when it writes; without ignore_user_abort it stops there.
_SLOW_JOB = r"""<?php
require __DIR__ . '@INIT@';
db_connect();
$seconds = min(20, max(0, (int) ($_GET['standin_seconds'] ?? 0)));
$id = preg_replace('/[^A-Za-z0-9]/', '', (string) ($_GET['standin_id'] ?? 'run'));
for ($i = 0; $i < $seconds; $i++) {
    echo str_repeat(' ', 8192), "working $i\n";
    while (ob_get_level() > 0) { ob_end_flush(); }
    flush();
    sleep(1);
}
file_put_contents('@TEMP@/standin-' . basename(__FILE__, '.php') . "-$id.done", 'done');
echo 'cron done';
"""

# What REDCap would see behind the front end, without a database: the request variables, a URL
# built as REDCap builds one while redcap_base_url is empty (scheme from HTTPS, the host, and
# ":SERVER_PORT" whenever that port is not 443), and the client address REDCap logs and bans by (a
# Client-IP header first, else the first X-Forwarded-For entry, else REMOTE_ADDR). Both rules are
# from the project's reading of public copies of REDCap 15.7.6 (the reference notes "More facts
# from public copies of REDCap 15.7.6"); the exact file was not pinned down, so this probe states
# the rule, not REDCap's code.
_SERVER_INFO = r"""<?php
header('Content-Type: application/json');
$https = !empty($_SERVER['HTTPS']) && strtolower((string) $_SERVER['HTTPS']) !== 'off';
$port = (string) ($_SERVER['SERVER_PORT'] ?? '');
$url = ($https ? 'https' : 'http') . '://' . ($_SERVER['SERVER_NAME'] ?? '') . ($port !== '443' ? ":$port" : '') . '/redcap_v@VERSION@/index.php';
if (!empty($_SERVER['HTTP_CLIENT_IP'])) {
    $client = $_SERVER['HTTP_CLIENT_IP'];
} elseif (!empty($_SERVER['HTTP_X_FORWARDED_FOR'])) {
    $client = trim(explode(',', $_SERVER['HTTP_X_FORWARDED_FOR'])[0]);
} else {
    $client = $_SERVER['REMOTE_ADDR'] ?? '';
}
echo json_encode([
    'SERVER_PORT' => $port, 'HTTPS' => $_SERVER['HTTPS'] ?? null, 'SERVER_NAME' => $_SERVER['SERVER_NAME'] ?? null,
    'REQUEST_SCHEME' => $_SERVER['REQUEST_SCHEME'] ?? null, 'REMOTE_ADDR' => $_SERVER['REMOTE_ADDR'] ?? null,
    'HTTP_CLIENT_IP' => $_SERVER['HTTP_CLIENT_IP'] ?? null, 'HTTP_X_FORWARDED_FOR' => $_SERVER['HTTP_X_FORWARDED_FOR'] ?? null,
    'redcap_url' => $url, 'redcap_client_ip' => $client,
]);
"""

# A few of REDCap's tables with the columns the image touches; the two tables install.sql creates
# last close the file, as in REDCap 15.7.6 Resources/sql/install.sql.
_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci"
_INSTALL_SQL = f"""
CREATE TABLE `redcap_auth` (`username` varchar(191) NOT NULL, `password` varchar(255) DEFAULT NULL,
  `password_salt` varchar(255) DEFAULT NULL, `legacy_hash` int(1) NOT NULL DEFAULT '0', `temp_pwd` int(1) NOT NULL DEFAULT '0',
  PRIMARY KEY (`username`)) {_TABLE_OPTIONS};

CREATE TABLE `redcap_config` (`field_name` varchar(191) NOT NULL DEFAULT '', `value` mediumtext,
  PRIMARY KEY (`field_name`)) {_TABLE_OPTIONS};

CREATE TABLE `redcap_history_version` (`date` date DEFAULT NULL, `redcap_version` varchar(20) DEFAULT NULL) {_TABLE_OPTIONS};

CREATE TABLE `redcap_user_information` (`ui_id` int(10) NOT NULL AUTO_INCREMENT, `username` varchar(191) DEFAULT NULL,
  `user_email` varchar(255) DEFAULT NULL, `super_user` tinyint(1) NOT NULL DEFAULT '0',
  `account_manager` tinyint(1) NOT NULL DEFAULT '0', `access_system_config` tinyint(1) NOT NULL DEFAULT '0',
  `access_system_upgrade` tinyint(1) NOT NULL DEFAULT '0', `access_external_module_install` tinyint(1) NOT NULL DEFAULT '0',
  `admin_rights` tinyint(1) NOT NULL DEFAULT '0', `access_admin_dashboards` tinyint(1) NOT NULL DEFAULT '0',
  PRIMARY KEY (`ui_id`), UNIQUE KEY `username` (`username`)) {_TABLE_OPTIONS};

CREATE TABLE `redcap_validation_types` (`validation_name` varchar(191) NOT NULL, `validation_label` varchar(255) DEFAULT NULL,
  UNIQUE KEY `validation_name` (`validation_name`)) {_TABLE_OPTIONS};

CREATE TABLE `redcap_web_service_cache` (`cache_id` int(10) NOT NULL AUTO_INCREMENT, `project_id` int(10) DEFAULT NULL,
  `service` varchar(50) DEFAULT NULL, PRIMARY KEY (`cache_id`)) {_TABLE_OPTIONS};
"""

# REDCap 15.7.6 Resources/sql/install_data.sql: every redcap_config row (the installer then only
# UPDATEs them), password_algo md5 and redcap_version 4.0.0 until the installer's own UPDATEs, and
# the super user site_admin with all seven admin flags and a sample address.
_INSTALL_DATA_SQL = """
INSERT INTO redcap_config (field_name, value) VALUES ('password_algo', 'md5'), ('redcap_version', '4.0.0'),
  ('auth_meth_global', 'none'), ('auto_report_stats', '1'), ('redcap_base_url', ''), ('project_contact_email', ''),
  ('homepage_contact_email', ''), ('from_email', ''), ('edoc_storage_option', '0'), ('language_global', 'English'),
  ('api_enabled', '1'), ('read_replica_enable', '0');
INSERT INTO redcap_user_information (username, user_email, super_user, account_manager, access_system_config,
  access_system_upgrade, access_external_module_install, admin_rights, access_admin_dashboards)
  VALUES ('site_admin', '@SAMPLE_ADMIN_EMAIL@', 1, 1, 1, 1, 1, 1, 1);
""".replace("@SAMPLE_ADMIN_EMAIL@", SAMPLE_ADMIN_EMAIL)

_PHP_INFO = r"""<?php
phpinfo(INFO_ENVIRONMENT | INFO_VARIABLES);
foreach (['DB_SALT', 'DB_PASSWORD', 'S3_USER_SECRET', 'SES_USER_SECRET', 'REDCAP_ADMIN_SECRET'] as $name) {
    echo "\n", $name, '=', var_export(getenv($name), true);
}
"""


# REDCap's API answers a POST whose token belongs to no user with 403 and "ERROR: You do not have
# permissions to use the API" ({"error": ...} when format=json): the "bad token" tests of
# OuhscBbmc/REDCapR (tests/testthat/, e.g. test-users-export.R) expect exactly this from a real
# REDCap. The stand-in has no API tokens, so every POST gets it (after connecting, as REDCap
# connects before it checks the token). A GET shows a page, as before.
_API_PHP = r"""<?php
require __DIR__ . '/../redcap_v@VERSION@/Config/init_functions.php';
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    db_connect();
    http_response_code(403);
    $message = 'You do not have permissions to use the API';
    if (($_POST['format'] ?? 'xml') === 'json') {
        header('Content-Type: application/json');
        echo json_encode(['error' => $message]);
    } else {
        echo "ERROR: $message";
    }
    return;
}
standin_page('API');
"""


def _page(title: str, depth: int, version: str = STANDIN_VERSION) -> str:
    up = "/".join([".."] * depth)
    prefix = f"__DIR__ . '/{up}/redcap_v{version}" if depth else f"__DIR__ . '/redcap_v{version}"
    return f"<?php\nrequire {prefix}/Config/init_functions.php';\nstandin_page('{title}');\n"


def release_files(version: str = STANDIN_VERSION, fast_versions: tuple[str, ...] = ()) -> dict[str, str]:
    """Path inside the zip -> content."""
    v = f"redcap/redcap_v{version}"
    slow = _SLOW_JOB.replace("@TEMP@", "/var/www/redcap/temp")
    return {
        "redcap/index.php": _page("REDCap", 0, version),
        # REDCap's database.php: the four connection values and $salt for the site to fill in.
        "redcap/database.php": "<?php\n// Fill in your connection settings.\n$hostname = '';\n$db = '';\n"
        "$username = '';\n$password = '';\n$salt = '';\n",
        "redcap/install.php": _ROOT_HANDOVER.replace("@VERSION@", version).replace("@SCRIPT@", "install.php"),
        "redcap/upgrade.php": _ROOT_HANDOVER.replace("@VERSION@", version).replace("@SCRIPT@", "upgrade.php"),
        "redcap/cron.php": slow.replace("@INIT@", f"/redcap_v{version}/Config/init_functions.php"),
        "redcap/api/index.php": _API_PHP.replace("@VERSION@", version),
        "redcap/surveys/index.php": _page("Survey", 1, version),
        "redcap/languages/English.ini": "; stand-in\n",
        "redcap/temp/index.html": "",
        "redcap/edocs/index.html": "",
        "redcap/webtools2/index.php": "<?php\necho 'webtools2';\n",
        f"{v}/index.php": _page("Project home", 1, version),
        f"{v}/install.php": _INSTALL_PHP,
        f"{v}/upgrade.php": _UPGRADE_PHP,
        # What any page that shows phpinfo() would (REDCap's Control Center, an external module).
        f"{v}/ControlCenter/php_info.php": _PHP_INFO,
        f"{v}/Config/init_functions.php": _INIT_FUNCTIONS,
        f"{v}/Resources/sql/install.sql": _INSTALL_SQL,
        f"{v}/Resources/sql/install_data.sql": _INSTALL_DATA_SQL,
        f"{v}/Resources/sql/upgrade_fast_versions.txt": "".join(f"{f}\n" for f in fast_versions),
        f"{v}/Resources/css/style.css": "body { font-family: sans-serif; }\n",
        f"{v}/Libraries/vendor/aws/aws-sdk-php/src/Sdk.php": "<?php\nnamespace Aws;\nclass Sdk {}\n",
        # Probes for the image tests, not REDCap pages: the request as PHP sees it, and the same
        # slow job as cron.php under another name (ignore_user_abort applies to cron.php only).
        f"{v}/StandIn/server_info.php": _SERVER_INFO.replace("@VERSION@", version),
        f"{v}/StandIn/slow_page.php": slow.replace("@INIT@", "/../Config/init_functions.php"),
    }


def write_release_zip(directory: Path, version: str = STANDIN_VERSION, fast_versions: tuple[str, ...] = ()) -> Path:
    """Writes ``redcap<version>.zip`` into ``directory`` and returns its path."""
    path = directory / f"redcap{version}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in sorted(release_files(version, fast_versions).items()):
            zf.writestr(name, content)
    return path


if __name__ == "__main__":
    import sys

    print(write_release_zip(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
