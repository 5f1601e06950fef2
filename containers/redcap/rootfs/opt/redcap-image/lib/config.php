<?php
/**
 * The image's only door to its environment. Every variable the image reads is named in
 * contract.json and read through rc_env() or rc_secret(); a test checks both lists against
 * template.yaml. Error messages name the variable and the problem, never the value.
 */
declare(strict_types=1);

final class RcConfigError extends RuntimeException {}

function rc_contract(): array
{
    static $contract = null;
    if ($contract === null) {
        $contract = json_decode((string) file_get_contents(__DIR__ . '/../contract.json'), true, 16, JSON_THROW_ON_ERROR);
    }
    return $contract;
}

/**
 * Where the entrypoint leaves the secrets a web request needs (DB_SALT, and DB_PASSWORD in local
 * password mode): Apache starts without any secret in its environment, so no page, phpinfo()
 * included, and no /proc/<apache>/environ can show one.
 */
const RC_SECRET_DIR = '/run/redcap/secrets';

function rc_raw(string $name): ?string
{
    $value = getenv($name);
    if (($value === false || $value === '') && is_file(RC_SECRET_DIR . '/' . $name)) {
        $value = (string) file_get_contents(RC_SECRET_DIR . '/' . $name);
    }
    return ($value === false || $value === '') ? null : $value;
}

/** A plain variable from the contract, validated by its kind; null when optional and unset. */
function rc_env(string $name): ?string
{
    $contract = rc_contract();
    $spec = $contract['variables'][$name] ?? null;
    if ($spec === null) {
        $local = $contract['local_only'][$name] ?? ($contract['platform'][$name] ?? null);
        if ($local === null) {
            throw new LogicException("$name is not in the image contract");
        }
        return rc_raw($name);
    }
    $value = rc_raw($name);
    if ($value === null) {
        if ($spec['required'] && !($name === 'DB_IAM_USER' && rc_db_auth_mode() === 'password')) {
            throw new RcConfigError("$name: required but not set");
        }
        return null;
    }
    $problem = rc_kind_problem($spec['kind'], $value);
    if ($problem !== null) {
        throw new RcConfigError("$name: $problem");
    }
    return $value;
}

/** A secret from the contract: a plain string (salt) or a JSON object with the listed keys. */
function rc_secret(string $name): string|array
{
    $spec = rc_contract()['secrets'][$name] ?? null;
    if ($spec === null) {
        throw new LogicException("$name is not a secret of the image contract");
    }
    $value = rc_raw($name);
    if ($value === null) {
        throw new RcConfigError("$name: required but not set");
    }
    if ($spec['kind'] === 'salt') {
        if (rc_has_control_character($value)) {
            throw new RcConfigError("$name: contains a control character (newline, tab, ...)");
        }
        if (strlen($value) < 16 || preg_match('/\s/', $value)) {
            throw new RcConfigError("$name: must be at least 16 characters without spaces");
        }
        return $value;
    }
    try {
        $data = json_decode($value, true, 8, JSON_THROW_ON_ERROR);
    } catch (JsonException) {
        // Never echo the text: it is secret material.
        throw new RcConfigError("$name: not valid JSON");
    }
    if (!is_array($data) || array_is_list($data)) {
        throw new RcConfigError("$name: must be a JSON object");
    }
    // Values end up in configuration files (msmtp reads one directive a line) and SQL rows: a
    // newline in SmtpPassword would add directives, e.g. another host without TLS.
    foreach ($data as $key => $item) {
        if (is_string($item) && rc_has_control_character($item)) {
            throw new RcConfigError("$name: key $key contains a control character (newline, tab, ...)");
        }
    }
    foreach ($spec['keys'] as $key) {
        if (!isset($data[$key]) || !is_string($data[$key]) || $data[$key] === '') {
            throw new RcConfigError("$name: missing or empty key $key");
        }
    }
    $optional = $spec['optional_keys'] ?? [];
    $present = array_filter($optional, static fn ($k) => isset($data[$k]));
    if ($present && count($present) !== count($optional)) {
        throw new RcConfigError("$name: needs all of " . implode(', ', $optional) . ' or none');
    }
    foreach ($present as $key) {
        if (!is_string($data[$key]) || $data[$key] === '') {
            throw new RcConfigError("$name: key $key must be a non-empty string");
        }
    }
    return $data;
}

/** ASCII control characters (C0 and DEL): never part of a key, password, name or address. */
function rc_has_control_character(string $value): bool
{
    return preg_match('/[\x00-\x1F\x7F]/', $value) === 1;
}

function rc_db_auth_mode(): string
{
    $mode = rc_raw('DB_AUTH_MODE') ?? 'iam';
    if ($mode !== 'iam' && $mode !== 'password') {
        throw new RcConfigError('DB_AUTH_MODE: must be iam or password');
    }
    if ($mode === 'password' && rc_raw('DB_PASSWORD') === null) {
        throw new RcConfigError('DB_PASSWORD: required when DB_AUTH_MODE is password');
    }
    return $mode;
}

function rc_kind_problem(string $kind, string $value): ?string
{
    switch ($kind) {
        case 'port':
            return (ctype_digit($value) && (int) $value >= 1 && (int) $value <= 65535) ? null : 'must be a port number (1-65535)';
        case 'path':
            if (!preg_match('#^/[A-Za-z0-9._~/-]*$#', $value)) {
                return 'must be an absolute URL path of letters, digits and ._~/-';
            }
            return $value === '/' ? 'must not be / (that is REDCap itself)' : null;
        case 'hostname':
            return preg_match('/^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/', $value) ? null : 'must be a host name';
        case 'identifier':
            return preg_match('/^[A-Za-z][A-Za-z0-9_]{0,63}$/', $value) ? null : 'must be a MySQL identifier (letters, digits, _)';
        case 'region':
            return preg_match('/^[a-z]{2}(-[a-z]+)+-\d$/', $value) ? null : 'must be an AWS Region name';
        case 'url':
            return preg_match('#^https://[A-Za-z0-9.-]+(:\d+)?/$#', $value) ? null : 'must be an https:// URL ending in /';
        case 'email':
            return filter_var($value, FILTER_VALIDATE_EMAIL) !== false ? null : 'must be an email address';
        case 'bucket':
            return preg_match('/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/', $value) ? null : 'must be an S3 bucket name';
        case 'name':
            return preg_match('/^[A-Za-z0-9_-]{1,64}$/', $value) ? null : 'must be letters, digits, _ or -';
        case 'request_timeout':
            // The template's RequestTimeoutSeconds range (MinValue/MaxValue).
            return rc_whole_number_between($value, 60, 3600) ? null : 'must be a whole number of seconds from 60 to 3600';
        case 'upload_mb':
            // The template's MaxUploadSizeMB range; REDCap's Configuration Check wants more than 10 MB.
            return rc_whole_number_between($value, 16, 1024) ? null : 'must be a whole number of megabytes from 16 to 1024';
        case 'timezone':
            return rc_timezone_problem($value);
    }
    throw new LogicException("unknown kind $kind");
}

function rc_whole_number_between(string $value, int $min, int $max): bool
{
    return preg_match('/^[1-9][0-9]{0,5}$/', $value) === 1 && (int) $value >= $min && (int) $value <= $max;
}

/**
 * An IANA time zone name that this image's tzdata holds: PHP knows it as a current identifier
 * and /usr/share/zoneinfo has its file (Debian's PHP reads the system tzdata). Backward-compatible
 * aliases (US/Eastern, ...) are refused: trixie moved them to tzdata-legacy, which is not installed.
 */
function rc_timezone_problem(string $value): ?string
{
    if (!preg_match('#^(UTC|[A-Z][A-Za-z_-]+(/[A-Za-z0-9][A-Za-z0-9_+-]*){1,2})$#', $value)) {
        return 'must be an IANA time zone name such as Europe/Paris or UTC';
    }
    if (!in_array($value, DateTimeZone::listIdentifiers(), true) || !is_file('/usr/share/zoneinfo/' . $value)) {
        return 'is not a time zone in this image\'s tzdata (use a current IANA name such as America/New_York)';
    }
    return null;
}

/** Validates the whole contract at start; the first problem wins. */
function rc_check_all(): void
{
    rc_db_auth_mode();
    foreach (array_keys(rc_contract()['variables']) as $name) {
        rc_env($name);
    }
    foreach (array_keys(rc_contract()['secrets']) as $name) {
        rc_secret($name);
    }
    rc_env('REDCAP_DB_WAIT_SECONDS') === null || ctype_digit((string) rc_env('REDCAP_DB_WAIT_SECONDS'))
        || throw new RcConfigError('REDCAP_DB_WAIT_SECONDS: must be a whole number of seconds');
}

function rc_log(string $level, string $message, array $fields = []): void
{
    // One JSON line per event on stderr (the container log); callers never pass secrets.
    $line = json_encode(['level' => $level, 'component' => 'redcap-image', 'message' => $message] + $fields, JSON_UNESCAPED_SLASHES);
    file_put_contents('php://stderr', $line . "\n");
}
