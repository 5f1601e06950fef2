<?php
/**
 * Included by REDCap's database.php on every request: sets the variables REDCap reads.
 * $password is an IAM token made for this request's connection (credentials cached in APCu).
 */
declare(strict_types=1);

require_once __DIR__ . '/db.php';

(static function (): void {
    global $hostname, $db, $username, $password, $salt,
        $db_ssl_key, $db_ssl_cert, $db_ssl_ca, $db_ssl_capath, $db_ssl_cipher, $db_ssl_verify_server_cert,
        $read_replica_hostname, $read_replica_db, $read_replica_username, $read_replica_password,
        $read_replica_db_ssl_ca, $read_replica_db_ssl_verify_server_cert;
    try {
        $main = rc_db_settings();
        $hostname = $main['host'] . ':' . $main['port'];
        $db = $main['name'];
        $username = $main['user'];
        $password = $main['password'];
        $salt = (string) rc_secret('DB_SALT');
        $db_ssl_key = $db_ssl_cert = $db_ssl_capath = $db_ssl_cipher = '';
        $db_ssl_ca = RC_DB_CA_BUNDLE;
        $db_ssl_verify_server_cert = true;
        if (rc_env('DB_READ_HOSTNAME') !== null) {
            $replica = rc_db_settings(true);
            $read_replica_hostname = $replica['host'] . ':' . $replica['port'];
            $read_replica_db = $replica['name'];
            $read_replica_username = $replica['user'];
            $read_replica_password = $replica['password'];
            $read_replica_db_ssl_ca = RC_DB_CA_BUNDLE;
            $read_replica_db_ssl_verify_server_cert = true;
        }
    } catch (Throwable $e) {
        // The message names a variable or a failing endpoint, never a value.
        rc_log('error', 'database settings unavailable', ['error' => get_class($e) . ': ' . $e->getMessage()]);
        http_response_code(503);
        exit('REDCap is temporarily unavailable.');
    }
})();
