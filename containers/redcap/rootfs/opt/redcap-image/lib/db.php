<?php
/**
 * Database connection settings, shared by REDCap's database.php and the first-boot code.
 * IAM mode (the only one the stack uses): an IAM token for each connection, reused for up to
 * 10 minutes by every connection of the task (rc_rds_token: AWS does not throttle connections
 * that present the same token), over TLS verified against the RDS CA bundle. Password mode
 * exists for local runs and tests only.
 */
declare(strict_types=1);

require_once __DIR__ . '/config.php';
require_once __DIR__ . '/aws.php';

const RC_DB_CA_BUNDLE = '/etc/ssl/certs/rds-ca-bundle.pem';

/** @return array{host:string,port:int,name:string,user:string,password:string} */
function rc_db_settings(bool $reader = false, ?int $now = null): array
{
    $host = $reader ? rc_env('DB_READ_HOSTNAME') : rc_env('DB_HOSTNAME');
    if ($host === null) {
        throw new RcConfigError('DB_READ_HOSTNAME: not set (no read replica)');
    }
    $port = (int) rc_env('DB_PORT');
    if (rc_db_auth_mode() === 'password') {
        // Local runs only: the stack never sets DB_AUTH_MODE.
        $user = rc_env('DB_IAM_USER') ?? 'redcap';
        $password = (string) rc_env('DB_PASSWORD');
    } else {
        $user = (string) rc_env('DB_IAM_USER');
        $password = rc_rds_token($host, $port, $user, (string) rc_env('REDCAP_REGION'), $now);
    }
    return ['host' => $host, 'port' => $port, 'name' => (string) rc_env('DB_NAME'), 'user' => $user, 'password' => $password];
}

/** A TLS connection (server certificate verified) for the image's own SQL. */
function rc_db_connect(): mysqli
{
    mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);
    $s = rc_db_settings();
    $db = mysqli_init();
    $db->options(MYSQLI_OPT_CONNECT_TIMEOUT, 5);
    $db->options(MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
    $db->ssl_set(null, null, RC_DB_CA_BUNDLE, null, null);
    $db->real_connect($s['host'], $s['user'], $s['password'], null, $s['port'], null, MYSQLI_CLIENT_SSL);
    $db->set_charset('utf8mb4');
    return $db;
}

/**
 * What REDCap's database.php must leave: every name REDCap's db_connect() reads
 * (redcap_vX/Config/init_functions.php), read-replica names only with DB_READ_HOSTNAME.
 * On failure the request ends with 503 and one log line naming the variable or endpoint.
 *
 * @return array<string, string|bool>
 */
function rc_redcap_connection_settings(): array
{
    try {
        $main = rc_db_settings();
        $settings = [
            // REDCap splits "host:port" itself (remove_db_port_from_hostname/get_db_port_by_hostname).
            'hostname' => $main['host'] . ':' . $main['port'],
            'db' => $main['name'],
            'username' => $main['user'],
            'password' => $main['password'],
            'salt' => (string) rc_secret('DB_SALT'),
            // With $db_ssl_ca set REDCap connects through mysqli_ssl_set + mysqli_real_connect, and
            // verifies the server certificate when $db_ssl_verify_server_cert is true.
            'db_ssl_key' => '',
            'db_ssl_cert' => '',
            'db_ssl_ca' => RC_DB_CA_BUNDLE,
            'db_ssl_capath' => '',
            'db_ssl_cipher' => '',
            'db_ssl_verify_server_cert' => true,
        ];
        if (rc_env('DB_READ_HOSTNAME') !== null) {
            $replica = rc_db_settings(true);
            $settings += [
                'read_replica_hostname' => $replica['host'] . ':' . $replica['port'],
                'read_replica_db' => $replica['name'],
                'read_replica_username' => $replica['user'],
                'read_replica_password' => $replica['password'],
                'read_replica_db_ssl_key' => '',
                'read_replica_db_ssl_cert' => '',
                'read_replica_db_ssl_ca' => RC_DB_CA_BUNDLE,
                'read_replica_db_ssl_capath' => '',
                'read_replica_db_ssl_cipher' => '',
                'read_replica_db_ssl_verify_server_cert' => true,
            ];
        }
        return $settings;
    } catch (Throwable $e) {
        // The message names a variable or a failing endpoint, never a value.
        rc_log('error', 'database settings unavailable', ['error' => get_class($e) . ': ' . $e->getMessage()]);
        if (PHP_SAPI !== 'cli') {
            http_response_code(503);
        }
        exit('REDCap is temporarily unavailable.');
    }
}
