<?php
/**
 * Included by REDCap's database.php (one `require` line) wherever REDCap reads its connection
 * settings. It sets them as plain variables in whatever scope includes it:
 *
 * - REDCap's db_connect() (redcap_vX/Config/init_functions.php) runs `include $db_conn_file;`
 *   inside the function and then reads $hostname, $db, $username, $password, $salt, the $db_ssl_*
 *   and $read_replica_* values as local variables of that function; it declares only its
 *   connection handles global. Values set through `global` or $GLOBALS alone are unset there.
 * - install.php, upgrade.php and cron.php include it at file scope (the global scope).
 * - db_connect() includes it again in the same request (to reset the values after a read-replica
 *   attempt, and through its recursive replica connection), so this file defines nothing: the
 *   functions live in db.php, loaded once with require_once.
 *
 * $password is an IAM token made for this connection (role credentials are cached in APCu).
 * Every variable this file leaves besides REDCap's starts with $rc_image_.
 */
declare(strict_types=1);

require_once __DIR__ . '/db.php';

$rc_image_settings = rc_redcap_connection_settings();
$hostname = $rc_image_settings['hostname'];
$db = $rc_image_settings['db'];
$username = $rc_image_settings['username'];
$password = $rc_image_settings['password'];
$salt = $rc_image_settings['salt'];
$db_ssl_key = $rc_image_settings['db_ssl_key'];
$db_ssl_cert = $rc_image_settings['db_ssl_cert'];
$db_ssl_ca = $rc_image_settings['db_ssl_ca'];
$db_ssl_capath = $rc_image_settings['db_ssl_capath'];
$db_ssl_cipher = $rc_image_settings['db_ssl_cipher'];
$db_ssl_verify_server_cert = $rc_image_settings['db_ssl_verify_server_cert'];
if (isset($rc_image_settings['read_replica_hostname'])) {
    $read_replica_hostname = $rc_image_settings['read_replica_hostname'];
    $read_replica_db = $rc_image_settings['read_replica_db'];
    $read_replica_username = $rc_image_settings['read_replica_username'];
    $read_replica_password = $rc_image_settings['read_replica_password'];
    $read_replica_db_ssl_key = $rc_image_settings['read_replica_db_ssl_key'];
    $read_replica_db_ssl_cert = $rc_image_settings['read_replica_db_ssl_cert'];
    $read_replica_db_ssl_ca = $rc_image_settings['read_replica_db_ssl_ca'];
    $read_replica_db_ssl_capath = $rc_image_settings['read_replica_db_ssl_capath'];
    $read_replica_db_ssl_cipher = $rc_image_settings['read_replica_db_ssl_cipher'];
    $read_replica_db_ssl_verify_server_cert = $rc_image_settings['read_replica_db_ssl_verify_server_cert'];
}
unset($rc_image_settings);
