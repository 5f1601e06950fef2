"""The REDCap image, run for real: podman, a real MariaDB (TLS only), SMTP and credentials
stand-ins, all on loopback. Everything is checked over HTTP, SQL and the container's logs."""

from __future__ import annotations

import datetime as dt
import email
import hashlib
import json
import subprocess
import threading
import time
from typing import Any

import pytest

from testkit.image_harness import MariaDB, Pki, RedcapContainer, podman, podman_env
from testkit.redcap_release import STANDIN_VERSION

from .conftest import ADMIN_PASSWORD, BuiltImage, Database, Smtp

HEALTH = "/healthz"
PAGES = ("/", "/index.php", "/redcap_v15.5.1/index.php", "/api/", "/surveys/", "/install.php?auto=1")


def wait_ready(container: RedcapContainer, timeout: float = 90) -> float:
    return container.wait_for(HEALTH, 200, timeout=timeout, need='"ready":true')


def config(mariadb: MariaDB, database: Database) -> dict[str, str]:
    return {row[0]: row[1] for row in mariadb.sql("SELECT field_name, value FROM redcap_config", database.name)}


class HeldLock:
    """Holds the image's install lock from another session, as a slow first installer would."""

    def __init__(self, mariadb: MariaDB) -> None:
        cmd = [
            "podman",
            "exec",
            "-i",
            mariadb.name,
            "mariadb",
            "--socket=/tmp/mariadb.sock",
            "-N",
            "-B",
            "--unbuffered",
        ]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=podman_env())
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("SELECT GET_LOCK('redcap_image_install', 10);\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "1"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=20)


def test_health_answers_before_install_and_every_other_page_is_503(make_container, mariadb, database):
    lock = HeldLock(mariadb)
    try:
        c = make_container()
        c.wait_for(HEALTH, 200, timeout=30)
        assert c.health() == {"status": "ok", "ready": False}
        for path in PAGES:
            status, body, headers = c.get(path)
            assert status == 503, (path, status, body)
            assert headers.get("Retry-After") == "30"
        # Nothing was installed while the lock was held elsewhere.
        assert mariadb.sql(f"SHOW TABLES FROM `{database.name}`") == []
    finally:
        lock.release()
    wait_ready(c)
    assert c.health() == {"status": "ok", "ready": True}


def test_health_needs_no_database_round_trip(make_container, mariadb, database):
    c = make_container()
    wait_ready(c)
    before = int(mariadb.sql("SHOW GLOBAL STATUS LIKE 'Connections'")[0][1])
    for _ in range(20):
        assert c.health()["status"] == "ok"
    after = int(mariadb.sql("SHOW GLOBAL STATUS LIKE 'Connections'")[0][1])
    assert after - before <= 1  # the SHOW itself


def test_two_instances_started_together_install_once(make_container, mariadb, database):
    first, second = make_container(start=False), make_container(start=False)
    threads = [threading.Thread(target=c.start) for c in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_ready(first)
    wait_ready(second)
    logs = first.logs() + second.logs()
    assert logs.count('"message":"REDCap installed"') == 1
    assert logs.count('"message":"redcap_config seeded"') == 1
    assert mariadb.sql("SELECT COUNT(*) FROM redcap_history_version", database.name) == [["1"]]


def test_no_page_is_served_without_login(make_container):
    c = make_container()
    wait_ready(c)
    for path in PAGES:
        status, body, _ = c.get(path)
        assert status == 200, (path, status)
        assert "Control Center" not in body, path
    for path in ("/", "/api/", "/surveys/", "/redcap_v15.5.1/index.php"):
        assert 'id="login"' in c.get(path)[1], path


def test_config_rows_seeded_once_and_kept_on_later_boots(make_container, mariadb, database):
    c = make_container()
    wait_ready(c)
    rows = config(mariadb, database)
    assert rows["auth_meth_global"] == "table"
    assert rows["redcap_base_url"] == "https://redcap.example.org/"
    assert rows["edoc_storage_option"] == "2"
    assert rows["amazon_s3_bucket"] == "redcap-files-123456789012"
    assert rows["amazon_s3_endpoint"] == "us-east-1"
    assert rows["amazon_s3_key"] == "AKIAFIRSTKEY0000"
    assert rows["from_email"] == rows["project_contact_email"] == "redcap@example.org"
    assert rows["password_algo"] == "sha512"  # REDCap's installer chose it; the image never changes it
    assert rows["read_replica_enable"] == "0"
    # The administrator: table login, the stack's password, a new one asked at first login.
    (user, hashed, salt, legacy, temp) = mariadb.sql(
        "SELECT username, password, password_salt, legacy_hash, temp_pwd FROM redcap_auth", database.name
    )[0]
    assert (user, legacy, temp) == ("site_admin", "0", "1")
    assert len(salt) == 100
    assert hashed == hashlib.sha512((ADMIN_PASSWORD + salt).encode()).hexdigest()
    c.remove()

    # An administrator and the key rotation change rows; the next boot keeps their values.
    mariadb.sql(
        "UPDATE redcap_config SET value = 'admin@example.org' WHERE field_name = 'from_email';"
        "UPDATE redcap_config SET value = 'AKIAROTATEDKEY00' WHERE field_name = 'amazon_s3_key';"
        "UPDATE redcap_auth SET temp_pwd = 0, password = 'changed';",
        database.name,
    )
    again = make_container(env={"REDCAP_BASE_URL": "https://other.example.org/"})
    wait_ready(again)
    assert '"outcome":"already-configured"' in again.logs()
    after = config(mariadb, database)
    assert after["from_email"] == "admin@example.org"
    assert after["amazon_s3_key"] == "AKIAROTATEDKEY00"
    assert after["redcap_base_url"] == "https://redcap.example.org/"
    assert mariadb.sql("SELECT temp_pwd, password FROM redcap_auth", database.name) == [["0", "changed"]]


def test_authentication_none_is_never_served_again(make_container, mariadb, database):
    c = make_container()
    wait_ready(c)
    c.remove()
    # Since the first boot: a new administrator password, a rotated S3 key, a new sender; then
    # someone sets authentication "none".
    mariadb.sql(
        "UPDATE redcap_auth SET password = 'changed-hash', temp_pwd = 0 WHERE username = 'site_admin';"
        "UPDATE redcap_config SET value = 'AKIAROTATED00000' WHERE field_name = 'amazon_s3_key';"
        "UPDATE redcap_config SET value = 'help@example.org' WHERE field_name = 'from_email';"
        "UPDATE redcap_config SET value = 'none' WHERE field_name = 'auth_meth_global';",
        database.name,
    )
    again = make_container()
    wait_ready(again)
    rows = config(mariadb, database)
    assert rows["auth_meth_global"] == "table"
    assert 'id="login"' in again.get("/")[1]
    # Locked again and nothing else touched.
    assert (rows["amazon_s3_key"], rows["from_email"]) == ("AKIAROTATED00000", "help@example.org")
    login = mariadb.sql("SELECT password, temp_pwd FROM redcap_auth WHERE username = 'site_admin'", database.name)
    assert login == [["changed-hash", "0"]]
    assert "authentication was none on a configured REDCap" in again.logs()


def test_mail_reaches_ses_through_starttls_with_the_configuration_set(make_container, smtp: Smtp):
    c = make_container()
    wait_ready(c)
    before = len(smtp.server.messages)
    script = "exit(mail('someone@example.org', 'REDCap test', 'Hello from REDCap') ? 0 : 1);"
    c.exec("php", "-r", script)
    deadline = time.monotonic() + 10
    while len(smtp.server.messages) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(smtp.server.messages) == before + 1
    message = email.message_from_bytes(smtp.server.messages[-1])
    assert message["X-SES-CONFIGURATION-SET"] == "redcap-events"
    assert message["Subject"] == "REDCap test"
    assert smtp.username in smtp.server.logins
    # The credentials file is the web user's alone.
    assert c.exec("stat", "-c", "%U %a", "/run/redcap/msmtprc").strip() == "redcap 600"


def test_mail_is_off_with_a_clear_message_before_the_first_ses_rotation(make_container):
    c = make_container(env={"SES_USER_SECRET": json.dumps({"UserName": "redcap-ses"})})
    wait_ready(c)
    assert "mail is off until the first SES key rotation" in c.logs()
    done = subprocess.run(
        ["podman", "exec", c.name, "php", "-r", "exit(mail('a@example.org', 's', 'b') ? 0 : 1);"],
        capture_output=True,
        text=True,
        env=podman_env(),
        check=False,
    )
    assert done.returncode == 1


@pytest.mark.parametrize(
    ("env", "drop", "message"),
    [
        ({}, ("DB_PORT",), "DB_PORT: required but not set"),
        ({"LISTEN_PORT": "http"}, (), "LISTEN_PORT: must be a port number"),
        ({"HEALTH_CHECK_PATH": "/"}, (), "HEALTH_CHECK_PATH: must not be /"),
        ({"REDCAP_FROM_EMAIL": "not-an-address"}, (), "REDCAP_FROM_EMAIL: must be an email address"),
        (
            {"SES_USER_SECRET": '{"UserName": "u", "SmtpUsername": "x", "SmtpPassword": oops'},
            (),
            "SES_USER_SECRET: not valid JSON",
        ),
        ({"S3_USER_SECRET": '{"UserName": "u", "AccessKeyId": "AKIA-ONLY-HALF"}'}, (), "S3_USER_SECRET: needs all of"),
        (
            {"REDCAP_ADMIN_SECRET": '{"username": "site_admin"}'},
            (),
            "REDCAP_ADMIN_SECRET: missing or empty key password",
        ),
        ({"DB_SALT": "short"}, (), "DB_SALT: must be at least 16 characters"),
        # A control character in a secret would reach a configuration file or SQL row: a newline in
        # SmtpPassword would add msmtp directives (another host, TLS off).
        (
            {"SES_USER_SECRET": json.dumps({"UserName": "u", "SmtpUsername": "AKIAX", "SmtpPassword": "p\nhost x"})},
            (),
            "SES_USER_SECRET: key SmtpPassword contains a control character",
        ),
        (
            {"REDCAP_ADMIN_SECRET": json.dumps({"username": "site_admin", "password": "initial\tpassword"})},
            (),
            "REDCAP_ADMIN_SECRET: key password contains a control character",
        ),
        ({"DB_SALT": "a-long-enough-salt\x07value"}, (), "DB_SALT: contains a control character"),
        ({"DB_AUTH_MODE": "trust"}, (), "DB_AUTH_MODE: must be iam or password"),
        # Issue 18: the administrator's parameters, refused outside the template's ranges.
        ({"REQUEST_TIMEOUT_SECONDS": "30"}, (), "REQUEST_TIMEOUT_SECONDS: must be a whole number of seconds"),
        ({"MAX_UPLOAD_SIZE_MB": "4096"}, (), "MAX_UPLOAD_SIZE_MB: must be a whole number of megabytes"),
        ({"MAX_UPLOAD_SIZE_MB": "64M"}, (), "MAX_UPLOAD_SIZE_MB: must be a whole number of megabytes"),
        # Trixie moved the backward-compatible aliases to tzdata-legacy, which the image lacks.
        ({"TIMEZONE": "US/Eastern"}, (), "TIMEZONE: is not a time zone in this image's tzdata"),
        ({"TIMEZONE": "Mars/Olympus_Mons"}, (), "TIMEZONE: is not a time zone in this image's tzdata"),
        ({"TIMEZONE": "europe/paris"}, (), "TIMEZONE: must be an IANA time zone name"),
        ({}, ("TIMEZONE",), "TIMEZONE: required but not set"),
    ],
)
def test_bad_environment_exits_with_one_line_naming_the_variable(make_container, env, drop, message):
    c = make_container(env=env, drop=drop)
    assert c.wait_exit(timeout=30) == 64
    logs = c.logs().strip().splitlines()
    assert logs == [f"configuration error: {logs[0].split(': ', 1)[1]}"]
    assert message in logs[0]
    for value in env.values():
        if len(value) > 8:
            assert value not in logs[0]


def test_unreachable_database_retries_with_backoff_then_exits_with_the_cause(make_container):
    from testkit.image_harness import free_port

    c = make_container(env={"DB_PORT": str(free_port()), "REDCAP_DB_WAIT_SECONDS": "6"})
    started = time.monotonic()
    assert c.wait_exit(timeout=60) == 69
    assert time.monotonic() - started >= 5
    logs = c.logs()
    retries = [json.loads(line) for line in logs.splitlines() if "retrying" in line]
    assert len(retries) >= 2
    waits = [r["retry_in_s"] for r in retries]
    assert waits[:2] == [1, 2]  # doubling backoff, the last wait clamped to the deadline
    assert sum(waits) <= 6
    assert "database unreachable after" in logs
    assert "MySQL error 2002" in logs


def test_a_database_certificate_outside_the_rds_bundle_is_refused(make_container, tmp_path):
    # The image's RDS CA bundle replaced by another CA: the same MariaDB, now untrusted.
    other = Pki.create(tmp_path / "other-ca")
    c = make_container(
        env={"REDCAP_DB_WAIT_SECONDS": "3"}, volumes=(f"{other.ca}:/etc/ssl/certs/rds-ca-bundle.pem:ro",)
    )
    assert c.wait_exit(timeout=60) == 69
    logs = c.logs()
    assert "database unreachable after" in logs
    # The server answered; TLS verification refused it (OpenSSL's reason reaches the log).
    assert "Cannot connect to MySQL using SSL" in logs
    assert "certificate verify failed" in logs


def test_iam_mode_fetches_credentials_from_the_endpoint_and_sends_a_token(make_container, credentials):
    env = {
        "DB_AUTH_MODE": "",
        "DB_PASSWORD": "",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials.url,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": credentials.authorization,
        "REDCAP_DB_WAIT_SECONDS": "2",
    }
    before = credentials.requests
    c = make_container(env=env)
    assert c.wait_exit(timeout=60) == 69
    logs = c.logs()
    # MariaDB has no IAM plugin: the token is refused as a password, which proves it was sent.
    assert "Access denied for user" in logs
    assert credentials.requests > before
    assert credentials.secret_access_key not in logs
    assert credentials.token not in logs
    assert "X-Amz-Signature" not in logs


def test_token_is_byte_for_byte_botocore_generate_db_auth_token(built_image: BuiltImage):
    from unittest import mock

    import botocore.session

    creds = {
        "AccessKeyId": "AKIDEXAMPLE",
        "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "Token": "tok/en+==",
    }
    now = 1764331200  # 2025-11-28T12:00:00Z
    cases = [
        ("db.cluster-abc.us-east-1.rds.amazonaws.com", 3306, "redcap_iam", "us-east-1", creds),
        (
            "reader.cluster-ro-x.eu-west-2.rds.amazonaws.com",
            13306,
            "user_with_underscore",
            "eu-west-2",
            {**creds, "Token": None},
        ),
    ]
    for host, port, user, region, c in cases:
        php = (
            "require '/opt/redcap-image/lib/aws.php';"
            f"echo rc_rds_auth_token({json.dumps(host)}, {port}, {json.dumps(user)}, {json.dumps(region)},"
            f" json_decode({json.dumps(json.dumps(c))}, true), {now});"
        )
        ours = podman("run", "--rm", "--network", "none", "--entrypoint", "php", built_image.ref, "-r", php)
        session = botocore.session.Session()
        session.set_credentials(c["AccessKeyId"], c["SecretAccessKey"], c["Token"])
        client = session.create_client("rds", region_name=region)
        frozen = dt.datetime.fromtimestamp(now, dt.UTC).replace(tzinfo=None)
        with mock.patch("botocore.auth.get_current_datetime", return_value=frozen):
            theirs = client.generate_db_auth_token(host, port, user, Region=region)
        assert ours == theirs


def test_credentials_are_cached_until_shortly_before_they_expire(built_image: BuiltImage, credentials):
    php = "require '/opt/redcap-image/lib/aws.php';for ($i = 0; $i < 5; $i++) { rc_role_credentials(); }echo 'ok';"
    args = [
        *("run", "--rm", "--network", "host", "--entrypoint", "php"),
        *("-e", f"AWS_CONTAINER_CREDENTIALS_FULL_URI={credentials.url}"),
        *("-e", f"AWS_CONTAINER_AUTHORIZATION_TOKEN={credentials.authorization}"),
        *(built_image.ref, "-r", php),
    ]
    before = credentials.requests
    assert podman(*args) == "ok"
    assert credentials.requests == before + 1
    # Credentials that expire within the refresh margin (5 minutes) are fetched again each time.
    credentials.lifetime = dt.timedelta(minutes=4)
    try:
        before = credentials.requests
        assert podman(*args) == "ok"
        assert credentials.requests == before + 5
    finally:
        credentials.lifetime = dt.timedelta(hours=6)


def test_iam_token_is_reused_for_ten_minutes_never_past_its_credentials(built_image: BuiltImage, credentials):
    # AWS does not throttle connections that present the same token (docs/performance.md): one
    # token serves 600 s of new connections, per user, and no longer than its credentials last.
    php = (
        "require '/opt/redcap-image/lib/aws.php';$n = time();"
        "$t = fn (int $dt, string $u = 'redcap_iam') => rc_rds_token('db.example', 3306, $u, 'us-east-1', $n + $dt);"
        "$a = $t(0);"
        "echo json_encode([$a === $t(1), $a === $t(419), $a === $t(599), $a === $t(600), $a === $t(1, 'other'),"
        " str_contains($t(600), 'X-Amz-Date=' . gmdate('Ymd\\THis\\Z', $n + 600))]);"
    )
    args = [
        *("run", "--rm", "--network", "host", "--entrypoint", "php"),
        *("-e", f"AWS_CONTAINER_CREDENTIALS_FULL_URI={credentials.url}"),
        *("-e", f"AWS_CONTAINER_AUTHORIZATION_TOKEN={credentials.authorization}"),
        *(built_image.ref, "-r", php),
    ]
    assert json.loads(podman(*args)) == [True, True, True, False, False, True]
    # Credentials that expire in 12 minutes are refreshed 5 minutes before: the token with them.
    credentials.lifetime = dt.timedelta(minutes=12)
    try:
        assert json.loads(podman(*args))[:3] == [True, True, False]
    finally:
        credentials.lifetime = dt.timedelta(hours=6)


def test_runs_as_non_root_with_an_immutable_web_root(make_container):
    c = make_container()
    wait_ready(c)
    assert c.exec("id", "-u").strip() == "10001"
    users = {line.split()[0] for line in podman("top", c.name, "user").splitlines()[1:]}
    assert users == {"redcap"}
    assert (
        c.exec("sh", "-c", "touch /var/www/redcap/index.php 2>/dev/null && echo writable || echo read-only").strip()
        == "read-only"
    )
    for folder in ("temp", "edocs", "modules"):
        probe = f"/var/www/redcap/{folder}/probe"
        c.exec("sh", "-c", f"echo x > {probe} && rm {probe}")


def test_sigterm_stops_the_container_in_under_two_seconds(make_container):
    c = make_container()
    wait_ready(c)
    started = time.monotonic()
    podman("stop", "-t", "10", c.name)
    assert time.monotonic() - started < 2.0
    assert int(podman("inspect", "-f", "{{.State.ExitCode}}", c.name).strip()) in (0, 143)


def test_apache_denies_private_folders_rewrites_old_versions_and_hides_itself(make_container):
    c = make_container()
    wait_ready(c)
    for path in ("/temp/", "/temp/x.csv", "/edocs/index.html", "/webtools2/index.php", "/.htaccess"):
        assert c.get(path)[0] == 403, path
    req_status, _, req_headers = _no_redirect(c, "/redcap_v14.9.9/DataEntry/index.php?pid=1")
    assert req_status == 302
    assert req_headers["Location"].endswith("/redcap_v15.5.1/DataEntry/index.php?pid=1")
    _, _, headers = c.get("/")
    assert headers["Server"] == "Apache"
    assert "X-Powered-By" not in headers
    _, _, https_headers = c.get("/", headers={"X-Forwarded-Proto": "https"})
    assert "max-age" in https_headers.get("Strict-Transport-Security", "")


def _no_redirect(c: RedcapContainer, path: str) -> tuple[int, str, dict[str, Any]]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=5)
    conn.request("GET", path)
    resp = conn.getresponse()
    return resp.status, resp.read().decode(), dict(resp.getheaders())


def test_php_settings_match_redcaps_configuration_check(built_image: BuiltImage):
    keys = [
        *("max_input_vars", "upload_max_filesize", "post_max_size", "expose_php", "display_errors"),
        *("session.cookie_secure", "session.cookie_httponly", "opcache.validate_timestamps", "sendmail_path"),
    ]
    php = "foreach (json_decode($argv[1]) as $k) { echo $k, '=', ini_get($k), PHP_EOL; }"
    out = podman(
        "run", "--rm", "--network", "none", "--entrypoint", "php", built_image.ref, "-r", php, "--", json.dumps(keys)
    )
    values = dict(line.split("=", 1) for line in out.splitlines())
    assert values["max_input_vars"] == "100000"
    assert values["upload_max_filesize"] == values["post_max_size"] == "64M"
    assert values["expose_php"] in ("", "0")
    assert values["display_errors"] in ("", "0")
    assert values["session.cookie_secure"] == values["session.cookie_httponly"] == "1"
    assert values["opcache.validate_timestamps"] in ("", "0")
    assert values["sendmail_path"] == "/opt/redcap-image/bin/sendmail"
    modules = podman("run", "--rm", "--network", "none", "--entrypoint", "php", built_image.ref, "-m").lower()
    for ext in (
        "curl",
        "openssl",
        "mbstring",
        "zip",
        "dom",
        "xmlreader",
        "gd",
        "fileinfo",
        "mysqli",
        "imagick",
        "apcu",
        # LDAP sign-in (docs/sign-in.md): REDCap's PEAR Auth LDAP container needs PHP's ldap extension.
        "ldap",
    ):
        assert ext in modules.split(), ext


# What Apache's PHP sees, from a probe page put into the web root as root (the web user cannot).
PROBE = """<?php
header('Content-Type: application/json');
$keys = ['max_execution_time', 'upload_max_filesize', 'post_max_size', 'date.timezone'];
$out = array_combine($keys, array_map('ini_get', $keys));
$out['timezone'] = date_default_timezone_get();
$out['files'] = array_map(static fn ($f) => ['error' => $f['error'], 'size' => $f['size']], $_FILES);
echo json_encode($out);
"""


def _put_probe(c: RedcapContainer) -> None:
    c.exec("sh", "-c", "cat > /var/www/redcap/probe.php", user="0", input_text=PROBE)


def _upload(c: RedcapContainer, size: int) -> tuple[int, dict[str, Any]]:
    import http.client

    boundary = "redcap-probe-boundary"
    body = b"".join(
        [
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'.encode(),
            b"Content-Type: application/octet-stream\r\n\r\n",
            b"x" * size,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=60)
    conn.request("POST", "/probe.php", body=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read().decode())


def test_administrator_settings_reach_apaches_php_and_apache_at_every_start(make_container):
    """Issue 18 items 2 and 3: MaxUploadSizeMB, Timezone and RequestTimeoutSeconds come from the
    environment at every start, with the web root untouched by the runtime user."""
    env = {"REQUEST_TIMEOUT_SECONDS": "900", "MAX_UPLOAD_SIZE_MB": "80", "TIMEZONE": "America/Argentina/Buenos_Aires"}
    c = make_container(env=env)
    wait_ready(c)
    _put_probe(c)
    status, body, _ = c.get("/probe.php")
    assert status == 200, body
    values = json.loads(body)
    assert values["max_execution_time"] == "900"
    assert values["upload_max_filesize"] == "80M"
    assert values["post_max_size"] == "88M"
    assert values["date.timezone"] == values["timezone"] == "America/Argentina/Buenos_Aires"
    # A 70 MB file passes the 80 MB limit; with the default 64 MB (below) PHP refuses it.
    status, uploaded = _upload(c, 70 * 1024 * 1024)
    assert status == 200
    assert uploaded["files"]["file"] == {"error": 0, "size": 70 * 1024 * 1024}
    # Apache's Timeout reads the same variable (redcap-security.conf): it is in Apache's environment.
    environ = c.exec("sh", "-c", APACHE_ENVIRON)
    assert "REQUEST_TIMEOUT_SECONDS=900" in environ.splitlines()
    assert "/opt/redcap-image/bin/redcap-image php-settings" in c.exec("cat", "/opt/redcap-image/bin/entrypoint")

    default = make_container()
    wait_ready(default)
    _put_probe(default)
    values = json.loads(default.get("/probe.php")[1])
    assert (values["max_execution_time"], values["upload_max_filesize"], values["timezone"]) == ("300", "64M", "UTC")
    _, refused = _upload(default, 70 * 1024 * 1024)
    # UPLOAD_ERR_INI_SIZE (1): the file exceeds upload_max_filesize.
    assert refused["files"]["file"]["error"] == 1


def test_imagemagick_7_reads_pdf_for_inline_pdfs(built_image: BuiltImage):
    """REDCap's inline PDFs: Imagick (ImageMagick 7 on trixie) with Ghostscript reads a PDF, and the
    policy file that allows it is ImageMagick 7's, as the package ships it."""
    run = ("run", "--rm", "--network", "none", "--entrypoint", "bash", built_image.ref, "-c")
    script = (
        "gs -q -sDEVICE=pdfwrite -o /tmp/x.pdf -c showpage"
        " && php -r '$i = new Imagick(); $i->readImage(\"/tmp/x.pdf\"); echo $i->getImageFormat();'"
    )
    assert podman(*run, script).strip() == "PDF"
    files = podman(*run, "dpkg -L imagemagick-7-common").split()
    assert "/etc/ImageMagick-7/policy.xml" in files
    policy = podman(*run, "cat /etc/ImageMagick-7/policy.xml")
    assert '<policy domain="coder" rights="read" pattern="PDF" />' in policy
    assert "PHP 8.4." in podman(*run, "php -v")


def test_only_redcaps_own_aws_sdk_is_in_the_image(built_image: BuiltImage):
    run_as_root = ("run", "--rm", "--user", "0", "--network", "none", "--entrypoint", "find", built_image.ref)
    found = podman(*run_as_root, "/", "-xdev", "-type", "d", "-name", "aws-sdk-php")
    assert found.split() == ["/var/www/redcap/redcap_v15.5.1/Libraries/vendor/aws/aws-sdk-php"]


# Every Apache process's environment, NUL-separated in /proc, one variable a line.
APACHE_ENVIRON = (
    'for d in /proc/[0-9]*; do [ "$(cat $d/comm 2>/dev/null)" = apache2 ] && tr "\\0" "\\n" < $d/environ; done; true'
)


def test_no_secret_reaches_logs_process_arguments_or_the_web_servers_environment(make_container, database, smtp):
    c = make_container()
    wait_ready(c)
    assert c.get("/")[0] == 200
    ps = podman("top", c.name, "args")
    env = c.env
    secrets_ = [database.password, smtp.password, ADMIN_PASSWORD, env["DB_SALT"], "first-secret-key"]
    # What a page showing phpinfo() (or calling getenv) sees: no secret at all.
    status, page, _ = c.get(f"/redcap_v{STANDIN_VERSION}/ControlCenter/php_info.php")
    assert status == 200
    assert "DB_SALT=false" in page
    assert "REDCAP_ADMIN_SECRET=false" in page
    # Every Apache process's environment, as /proc shows it to code running as the same user.
    environ = c.exec("sh", "-c", APACHE_ENVIRON)
    assert "APACHE_RUN_USER=redcap" in environ  # the loop did read Apache's environment
    for value in secrets_:
        assert value not in c.logs()
        assert value not in ps
        assert value not in page
        assert value not in environ
    # The one secret a request needs is a file only the web user reads.
    assert c.exec("stat", "-c", "%a %U", "/run/redcap/secrets", "/run/redcap/secrets/DB_SALT").split() == [
        "700", "redcap", "600", "redcap",
    ]  # fmt: skip


def test_rotation_user_may_only_set_the_two_s3_key_rows(make_container, mariadb: MariaDB, database: Database):
    """The S3 rotation's Data API user, made with the stack's own statements, against REDCap's tables."""
    from redcap_ctl.database import ROTATION_PROCEDURE, rotation_user_statements

    c = make_container()
    wait_ready(c)
    user, password = f"rot_{database.name[-8:]}", "rotation-" + database.password
    mariadb.sql(";\n".join(rotation_user_statements(database.name, user, password)) + ";\n")
    # An option file written through stdin keeps the password off every command line.
    option_file = f"/tmp/{user}.cnf"
    podman("exec", "-i", mariadb.name, "sh", "-c", f"umask 077; cat > {option_file}",
           input_text=f"[client]\nuser={user}\npassword={password}\n")  # fmt: skip

    def as_rotation_user(sql: str) -> subprocess.CompletedProcess[str]:
        cmd = ["podman", "exec", "-i", mariadb.name, "mariadb", f"--defaults-extra-file={option_file}",
               "-h", "127.0.0.1", "-P", str(mariadb.port), "--ssl", "-N", "-B", database.name]  # fmt: skip
        return subprocess.run(cmd, input=sql, capture_output=True, text=True, env=podman_env(), check=False)

    done = as_rotation_user(f"CALL {ROTATION_PROCEDURE}('AKIANEWKEY000000', 'new-secret-value');")
    assert done.returncode == 0, done.stderr
    rows = config(mariadb, database)
    assert (rows["amazon_s3_key"], rows["amazon_s3_secret"]) == ("AKIANEWKEY000000", "new-secret-value")
    for forbidden in (
        "SELECT value FROM redcap_config WHERE field_name = 'amazon_s3_secret';",
        "UPDATE redcap_config SET value = 'x' WHERE field_name = 'auth_meth_global';",
        "SELECT password FROM redcap_auth;",
        "DROP TABLE redcap_config;",
    ):
        refused = as_rotation_user(forbidden)
        assert refused.returncode != 0, forbidden
        assert "denied" in refused.stderr, refused.stderr
    assert config(mariadb, database)["auth_meth_global"] == "table"


# --- Upgrades: REDCap's unattended (fast) upgrade under the install lock, else the administrator ---
@pytest.fixture(scope="module")
def newer_images(built_image: BuiltImage) -> dict[str, str]:
    """15.6.0, a fast upgrade from 15.5.1, and 15.7.0, which REDCap does not upgrade unattended."""
    from testkit.image_harness import build_redcap_image
    from testkit.redcap_release import write_release_zip

    refs = {}
    for version, fast in (("15.6.0", ("15.6.0",)), ("15.7.0", ())):
        folder = built_image.workdir / f"release-{version}"
        folder.mkdir(exist_ok=True)
        zip_path = write_release_zip(folder, version, fast_versions=fast)
        refs[version] = build_redcap_image(zip_path, built_image.pki.ca, tag=f"localhost/redcap:{version}")["IMAGE"]
    return refs


def test_upgrade_runs_unattended_only_where_redcap_offers_it(make_container, mariadb, database, newer_images):
    first = make_container()
    wait_ready(first)
    first.remove()
    assert config(mariadb, database)["redcap_version"] == "15.5.1"

    fast = make_container(image=newer_images["15.6.0"])
    wait_ready(fast)
    assert config(mariadb, database)["redcap_version"] == "15.6.0"
    assert "REDCap upgraded unattended" in fast.logs()
    assert '"outcome":"upgraded"' in fast.logs()
    fast.remove()

    slow = make_container(image=newer_images["15.7.0"])
    wait_ready(slow)
    logs = slow.logs()
    assert config(mariadb, database)["redcap_version"] == "15.6.0", "REDCap declined: nothing may change"
    assert "an administrator must run upgrade.php from an AdminCidrs address" in logs
    assert "15.6.0 to 15.7.0 is not a fast upgrade" in logs
    slow.remove()

    # Back to the old image on the upgraded database: it stays up but never serves REDCap (503),
    # so an App Runner rollback completes and nothing runs old code on the new schema.
    old = make_container()
    deadline = time.monotonic() + 90
    while "refusing to run REDCap on a newer database" not in old.logs():
        assert time.monotonic() < deadline, old.logs()
        time.sleep(0.5)
    assert "database holds REDCap 15.6.0, newer than this image's 15.5.1" in old.logs()
    assert old.running()
    assert old.health() == {"status": "ok", "ready": False}
    assert old.get("/")[0] == 503
    assert config(mariadb, database)["redcap_version"] == "15.6.0"


# REDCap's database.php, as a request includes it: the read-replica variables it leaves behind.
# Read inside a function, as REDCap's db_connect() reads them (its locals, not globals).
REPLICA_SETTINGS = (
    'function replica(): array { require "/var/www/redcap/database.php"; return ['
    '"host" => $read_replica_hostname ?? null, "db" => $read_replica_db ?? null,'
    ' "user" => $read_replica_username ?? null, "password_set" => !empty($read_replica_password),'
    ' "ca" => $read_replica_db_ssl_ca ?? null, "verify" => $read_replica_db_ssl_verify_server_cert ?? null]; }'
    " echo json_encode(replica());"
)


def test_read_replica_follows_db_read_hostname(make_container, mariadb, database):
    # The reader endpoint is the same MariaDB here: what matters is what REDCap is told.
    with_reader = make_container(env={"DB_READ_HOSTNAME": "localhost"})
    wait_ready(with_reader)
    assert config(mariadb, database)["read_replica_enable"] == "1"
    settings = json.loads(with_reader.exec("php", "-r", REPLICA_SETTINGS))
    assert settings == {
        "host": f"localhost:{with_reader.env['DB_PORT']}",
        "db": database.name,
        "user": database.user,
        "password_set": True,
        "ca": settings["ca"],
        "verify": True,
    }
    assert settings["ca"].endswith(".pem")
    with_reader.remove()
    # Readers removed (DbReaderCount back to 0): the next boot turns REDCap's replica use off.
    without = make_container()
    wait_ready(without)
    assert config(mariadb, database)["read_replica_enable"] == "0"
    assert json.loads(without.exec("php", "-r", REPLICA_SETTINGS))["host"] is None
