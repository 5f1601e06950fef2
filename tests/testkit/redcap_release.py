"""A stand-in REDCap release zip with the real layout, for the image tests.

REDCap is licensed: its code never enters this repository. This stand-in has the folders and
entry points that the image relies on (``redcap/`` web root, ``database.php`` to replace,
``install.php`` with the unattended ``auto`` mode, one ``redcap_vX.Y.Z/`` folder with
``Resources/sql/install.sql`` and ``install_data.sql`` and a bundled ``aws-sdk-php``) and
behaves like REDCap where the tests look: the installer creates the tables and REDCap's
default config rows, including ``auth_meth_global = 'none'``; any page shows the
administrator's home while authentication is "none", and a login form otherwise.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

STANDIN_VERSION = "15.5.1"

_CONNECT = r"""<?php
// Stand-in for REDCap's connection code: the same database.php variables and TLS settings.
function standin_connect(): mysqli {
    global $hostname, $db, $username, $password, $db_ssl_ca, $db_ssl_verify_server_cert;
    require_once dirname(__DIR__, 2) . '/database.php';
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    $parts = explode(':', $hostname);
    $link = mysqli_init();
    $flags = 0;
    if (!empty($db_ssl_ca)) {
        $link->options(MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, (bool) $db_ssl_verify_server_cert);
        $link->ssl_set(null, null, $db_ssl_ca, null, null);
        $flags = MYSQLI_CLIENT_SSL;
    }
    $link->real_connect($parts[0], $username, $password, $db, (int) ($parts[1] ?? 3306), null, $flags);
    return $link;
}
function standin_config(mysqli $link, string $field): ?string {
    $r = $link->query("SELECT value FROM redcap_config WHERE field_name = '" . $link->real_escape_string($field) . "'");
    $row = $r->fetch_row();
    return $row === null ? null : $row[0];
}
function standin_page(string $title): void {
    $link = standin_connect();
    if (standin_config($link, 'auth_meth_global') === 'none') {
        echo "<h1>$title</h1><p>REDCap Control Center: logged in as site_admin (administrator)</p>";
        return;
    }
    echo "<h1>$title</h1><form id=\"login\" method=\"post\"><input name=\"username\"><input type=\"password\" name=\"password\"></form>";
}
"""

_INSTALL_PHP = r"""<?php
// Stand-in for REDCap's install.php: unattended mode (auto=1) runs the install SQL only when
// "select * from redcap_config" fails, as REDCap's does.
require __DIR__ . '/redcap_v@VERSION@/Config/init_functions.php';
$link = standin_connect();
if (!isset($_GET['auto'])) { echo 'REDCap installation page'; exit; }
try { $link->query('select * from redcap_config'); echo "-- already installed\n"; exit(0); } catch (mysqli_sql_exception $e) {}
$dir = __DIR__ . '/redcap_v@VERSION@/Resources/sql/';
$sql = file_get_contents($dir . 'install.sql') . "\n" . file_get_contents($dir . 'install_data.sql') . "\n"
    . "UPDATE redcap_config SET value = 'sha512' WHERE field_name = 'password_algo';\n"
    . "REPLACE INTO redcap_config (field_name, value) VALUES ('auth_meth_global', 'none'), ('redcap_version', '@VERSION@'), ('redcap_base_url', ''), ('project_contact_email', '');\n"
    . "INSERT INTO redcap_history_version (`date`, redcap_version) VALUES (CURDATE(), '@VERSION@');\n";
if (isset($_GET['sql'])) { echo $sql; }
$link->multi_query($sql);
do { if ($r = $link->store_result()) { $r->free(); } } while ($link->more_results() && $link->next_result());
"""

_UPGRADE_PHP = r"""<?php
// Stand-in for REDCap's upgrade.php. Unattended (auto=1) it upgrades only when the upgrade is
// "fast" (this version is listed in upgrade_fast_versions.txt), as REDCap's does; otherwise
// it changes nothing and the upgrade waits for an administrator on this page.
require __DIR__ . '/redcap_v@VERSION@/Config/init_functions.php';
if (!isset($_GET['auto'])) { echo 'REDCap upgrade page'; exit; }
$link = standin_connect();
$from = standin_config($link, 'redcap_version');
$fast = array_filter(array_map('trim', file(__DIR__ . '/redcap_v@VERSION@/Resources/sql/upgrade_fast_versions.txt')));
if ($from === '@VERSION@') { echo "-- already at @VERSION@\n"; exit(0); }
if (!in_array('@VERSION@', $fast, true)) { echo "-- $from to @VERSION@ is not a fast upgrade: an administrator must upgrade\n"; exit(0); }
$link->query("UPDATE redcap_config SET value = '@VERSION@' WHERE field_name = 'redcap_version'");
$link->query("INSERT INTO redcap_history_version (`date`, redcap_version) VALUES (CURDATE(), '@VERSION@')");
echo "-- upgraded from $from to @VERSION@\n";
"""

_INSTALL_SQL = """
CREATE TABLE redcap_config (field_name varchar(191) NOT NULL, value mediumtext, PRIMARY KEY (field_name))
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE redcap_auth (username varchar(191) NOT NULL, password varchar(255) DEFAULT NULL,
  password_salt varchar(100) DEFAULT NULL, legacy_hash int(1) NOT NULL DEFAULT 0, temp_pwd int(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (username)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE redcap_user_information (ui_id int(10) NOT NULL AUTO_INCREMENT, username varchar(191) DEFAULT NULL,
  user_email varchar(255) DEFAULT NULL, super_user int(1) NOT NULL DEFAULT 0, PRIMARY KEY (ui_id), UNIQUE KEY username (username))
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE redcap_history_version (`date` date NOT NULL, redcap_version varchar(30) NOT NULL)
  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
"""

_INSTALL_DATA_SQL = """
INSERT INTO redcap_config (field_name, value) VALUES ('password_algo', 'md5'), ('redcap_version', '4.0.0'),
  ('edoc_storage_option', '0'), ('language_global', 'English'), ('auto_report_stats', '1');
INSERT INTO redcap_user_information (username, user_email, super_user) VALUES ('site_admin', 'joe.user@project-redcap.org', 1);
"""


_PHP_INFO = r"""<?php
phpinfo(INFO_ENVIRONMENT | INFO_VARIABLES);
foreach (['DB_SALT', 'DB_PASSWORD', 'S3_USER_SECRET', 'SES_USER_SECRET', 'REDCAP_ADMIN_SECRET'] as $name) {
    echo "\n", $name, '=', var_export(getenv($name), true);
}
"""


def _page(title: str, depth: int, version: str = STANDIN_VERSION) -> str:
    up = "/".join([".."] * depth)
    prefix = f"__DIR__ . '/{up}/redcap_v{version}" if depth else f"__DIR__ . '/redcap_v{version}"
    return f"<?php\nrequire {prefix}/Config/init_functions.php';\nstandin_page('{title}');\n"


def release_files(version: str = STANDIN_VERSION, fast_versions: tuple[str, ...] = ()) -> dict[str, str]:
    """Path inside the zip -> content."""
    v = f"redcap/redcap_v{version}"
    return {
        "redcap/index.php": _page("REDCap", 0, version),
        "redcap/database.php": "<?php\n// Fill in your connection settings.\n$hostname = '';\n$db = '';\n"
        "$username = '';\n$password = '';\n$salt = '';\n",
        "redcap/install.php": _INSTALL_PHP.replace("@VERSION@", version),
        "redcap/upgrade.php": _UPGRADE_PHP.replace("@VERSION@", version),
        "redcap/cron.php": "<?php\necho 'cron done';\n",
        "redcap/api/index.php": _page("API", 1, version),
        "redcap/surveys/index.php": _page("Survey", 1, version),
        "redcap/languages/English.ini": "; stand-in\n",
        "redcap/temp/index.html": "",
        "redcap/edocs/index.html": "",
        "redcap/webtools2/index.php": "<?php\necho 'webtools2';\n",
        f"{v}/index.php": _page("Project home", 1, version),
        # What any page that shows phpinfo() would (REDCap's Control Center, an external module).
        f"{v}/ControlCenter/php_info.php": _PHP_INFO,
        f"{v}/Config/init_functions.php": _CONNECT,
        f"{v}/Resources/sql/install.sql": _INSTALL_SQL,
        f"{v}/Resources/sql/install_data.sql": _INSTALL_DATA_SQL,
        f"{v}/Resources/sql/upgrade_fast_versions.txt": "".join(f"{f}\n" for f in fast_versions),
        f"{v}/Resources/css/style.css": "body { font-family: sans-serif; }\n",
        f"{v}/Libraries/vendor/aws/aws-sdk-php/src/Sdk.php": "<?php\nnamespace Aws;\nclass Sdk {}\n",
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
