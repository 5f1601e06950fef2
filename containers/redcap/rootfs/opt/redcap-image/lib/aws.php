<?php
/**
 * Role credentials from the container credentials endpoint, and the RDS IAM authentication
 * token (a SigV4-presigned "connect" request, as botocore's generate_db_auth_token makes it).
 *
 * Written here rather than taken from aws-sdk-php: REDCap bundles its own aws-sdk-php, and a
 * second copy beside it broke REDCap's S3 uploads elsewhere (aws-samples/redcap-on-aws #103).
 */
declare(strict_types=1);

require_once __DIR__ . '/config.php';

final class RcAwsError extends RuntimeException {}

const RC_CREDENTIALS_CACHE_KEY = 'redcap-image:role-credentials';
/** Credentials are refreshed this long before they expire. */
const RC_CREDENTIALS_MARGIN_SECONDS = 300;
const RC_RDS_TOKEN_SECONDS = 900;
/**
 * How long one IAM token serves new connections (of its 900 s life). AWS throttles IAM database
 * authentication at 200 new connections per second, except connections that present the same
 * token, and recommends reusing tokens (Aurora User Guide, "IAM database authentication",
 * limitations; docs/performance.md). The server checks a token only when a connection
 * authenticates, so every connection still gets at least 300 s of the token's life.
 */
const RC_RDS_TOKEN_REUSE_SECONDS = 600;
const RC_RDS_TOKEN_CACHE_PREFIX = 'redcap-image:rds-token:';

/**
 * @return array{AccessKeyId:string,SecretAccessKey:string,Token:?string,Expiration:int}
 */
function rc_role_credentials(?int $now = null): array
{
    $now ??= time();
    $cached = function_exists('apcu_fetch') ? apcu_fetch(RC_CREDENTIALS_CACHE_KEY) : false;
    if (is_array($cached) && $cached['Expiration'] - RC_CREDENTIALS_MARGIN_SECONDS > $now) {
        return $cached;
    }
    $credentials = rc_fetch_container_credentials();
    if (function_exists('apcu_store')) {
        apcu_store(RC_CREDENTIALS_CACHE_KEY, $credentials, max(1, $credentials['Expiration'] - RC_CREDENTIALS_MARGIN_SECONDS - $now));
    }
    return $credentials;
}

/** @return array{AccessKeyId:string,SecretAccessKey:string,Token:?string,Expiration:int} */
function rc_fetch_container_credentials(): array
{
    $relative = rc_env('AWS_CONTAINER_CREDENTIALS_RELATIVE_URI');
    $full = rc_env('AWS_CONTAINER_CREDENTIALS_FULL_URI');
    if ($relative !== null) {
        $url = 'http://169.254.170.2' . $relative;
    } elseif ($full !== null) {
        $url = $full;
    } else {
        throw new RcAwsError('no container credentials endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI)');
    }
    $headers = [];
    $tokenFile = rc_env('AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE');
    $token = $tokenFile !== null ? trim((string) @file_get_contents($tokenFile)) : rc_env('AWS_CONTAINER_AUTHORIZATION_TOKEN');
    if ($token !== null && $token !== '') {
        $headers[] = 'Authorization: ' . $token;
    }
    $lastError = '';
    for ($attempt = 1; $attempt <= 3; $attempt++) {
        $curl = curl_init($url);
        curl_setopt_array($curl, [
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_CONNECTTIMEOUT => 2,
            CURLOPT_TIMEOUT => 5,
            CURLOPT_HTTPHEADER => $headers,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
            CURLOPT_FOLLOWLOCATION => false,
        ]);
        $body = curl_exec($curl);
        $status = (int) curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
        $lastError = $body === false ? curl_error($curl) : "HTTP $status";
        curl_close($curl);
        if ($body !== false && $status === 200) {
            $data = json_decode((string) $body, true);
            if (!is_array($data) || !isset($data['AccessKeyId'], $data['SecretAccessKey'], $data['Expiration'])) {
                throw new RcAwsError('the credentials endpoint answered without AccessKeyId/SecretAccessKey/Expiration');
            }
            $expiration = strtotime((string) $data['Expiration']);
            if ($expiration === false) {
                throw new RcAwsError('the credentials endpoint answered a malformed Expiration');
            }
            return [
                'AccessKeyId' => (string) $data['AccessKeyId'],
                'SecretAccessKey' => (string) $data['SecretAccessKey'],
                'Token' => isset($data['Token']) ? (string) $data['Token'] : null,
                'Expiration' => $expiration,
            ];
        }
        usleep(200000 * $attempt);
    }
    throw new RcAwsError("the container credentials endpoint failed: $lastError");
}

/**
 * The IAM token for a new connection as this task's role: one token per host, port, user,
 * Region and role key, shared by every Apache process through APCu (as the role credentials
 * are) for RC_RDS_TOKEN_REUSE_SECONDS, and never past the point where the credentials that
 * signed it are refreshed.
 */
function rc_rds_token(string $host, int $port, string $user, string $region, ?int $now = null): string
{
    $now ??= time();
    $credentials = rc_role_credentials($now);
    $key = RC_RDS_TOKEN_CACHE_PREFIX . hash('sha256', implode("\n", [$host, (string) $port, $user, $region, $credentials['AccessKeyId']]));
    $cached = function_exists('apcu_fetch') ? apcu_fetch($key) : false;
    if (is_array($cached) && isset($cached['token'], $cached['from'], $cached['until'])
        && $cached['from'] <= $now && $now < $cached['until']) {
        return (string) $cached['token'];
    }
    $token = rc_rds_auth_token($host, $port, $user, $region, $credentials, $now);
    $until = min($now + RC_RDS_TOKEN_REUSE_SECONDS, $credentials['Expiration'] - RC_CREDENTIALS_MARGIN_SECONDS);
    if ($until > $now && function_exists('apcu_store')) {
        apcu_store($key, ['token' => $token, 'from' => $now, 'until' => $until], $until - $now);
    }
    return $token;
}

function rc_uri_encode(string $value): string
{
    // RFC 3986 unreserved characters stay; everything else is %XX (SigV4's encoding).
    return str_replace('%7E', '~', rawurlencode($value));
}

/**
 * The IAM authentication token for one connection: what botocore's
 * rds.generate_db_auth_token(host, port, user, region) returns for the same credentials and clock.
 *
 * @param array{AccessKeyId:string,SecretAccessKey:string,Token:?string} $credentials
 */
function rc_rds_auth_token(string $host, int $port, string $user, string $region, array $credentials, ?int $now = null): string
{
    $now ??= time();
    $amzDate = gmdate('Ymd\THis\Z', $now);
    $day = gmdate('Ymd', $now);
    $scope = "$day/$region/rds-db/aws4_request";
    $hostHeader = "$host:$port";
    $operation = ['Action' => 'connect', 'DBUser' => $user];
    $auth = [
        'X-Amz-Algorithm' => 'AWS4-HMAC-SHA256',
        'X-Amz-Credential' => $credentials['AccessKeyId'] . '/' . $scope,
        'X-Amz-Date' => $amzDate,
        'X-Amz-Expires' => (string) RC_RDS_TOKEN_SECONDS,
        'X-Amz-SignedHeaders' => 'host',
    ];
    if (($credentials['Token'] ?? null) !== null) {
        $auth['X-Amz-Security-Token'] = (string) $credentials['Token'];
    }
    $encode = static function (array $params): array {
        $pairs = [];
        foreach ($params as $k => $v) {
            $pairs[] = [rc_uri_encode((string) $k), rc_uri_encode((string) $v)];
        }
        return $pairs;
    };
    $join = static fn (array $pairs): string => implode('&', array_map(static fn ($p) => $p[0] . '=' . $p[1], $pairs));

    $canonicalPairs = $encode($operation + $auth);
    sort($canonicalPairs);
    $canonicalRequest = implode("\n", [
        'GET',
        '/',
        $join($canonicalPairs),
        'host:' . $hostHeader . "\n",
        'host',
        hash('sha256', ''),
    ]);
    $stringToSign = implode("\n", ['AWS4-HMAC-SHA256', $amzDate, $scope, hash('sha256', $canonicalRequest)]);
    $key = hash_hmac('sha256', 'aws4_request',
        hash_hmac('sha256', 'rds-db',
            hash_hmac('sha256', $region,
                hash_hmac('sha256', $day, 'AWS4' . $credentials['SecretAccessKey'], true), true), true), true);
    $signature = hash_hmac('sha256', $stringToSign, $key);
    return $hostHeader . '/?' . $join($encode($operation)) . '&' . $join($encode($auth)) . '&X-Amz-Signature=' . $signature;
}
