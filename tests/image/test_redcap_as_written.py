"""The image with REDCap as REDCap is written (issue 17, item 0): database.php read inside REDCap's
db_connect(), the installer judged by its result, the image's own "configured" marker, the first
administrator's address, and what Apache does for REDCap behind TLS termination."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from pathlib import Path

from testkit.image_harness import HOST, MariaDB, RedcapContainer, podman_env
from testkit.redcap_release import LATE_INSTALL_TABLES, SAMPLE_ADMIN_EMAIL, STANDIN_VERSION

from .conftest import BuiltImage, Database

HEALTH = "/healthz"
V = f"/redcap_v{STANDIN_VERSION}"
WEBROOT = "/var/www/redcap"
OLD_DATABASE_PHP = Path(__file__).parent / "fixtures" / "database_php_globals_only.php"
INIT = f"{WEBROOT}/redcap_v{STANDIN_VERSION}/Config/init_functions.php"


def wait_ready(container: RedcapContainer, timeout: float = 90) -> float:
    return container.wait_for(HEALTH, 200, timeout=timeout, need='"ready":true')


def config(mariadb: MariaDB, database: Database) -> dict[str, str]:
    return {row[0]: row[1] for row in mariadb.sql("SELECT field_name, value FROM redcap_config", database.name)}


def run_php(built_image: BuiltImage, container: RedcapContainer, code: str, *volumes: str) -> str:
    """PHP in a throw-away container of the image with this container's environment (secrets in a
    0600 env file, never on the command line); stdout and stderr together."""
    env_file = container.workdir / f"{container.name}-php.env"
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"{k}={v}\n" for k, v in container.env.items()))
    args = ["run", "--rm", "--network", "host", "--env-file", str(env_file), "--entrypoint", "php"]
    for volume in volumes:
        args += ["-v", volume]
    done = subprocess.run(
        ["podman", *args, built_image.ref, "-r", code],
        capture_output=True,
        text=True,
        env=podman_env(),
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def no_redirect(c: RedcapContainer, path: str, headers: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    conn = http.client.HTTPConnection(HOST, c.port, timeout=10)
    conn.request("GET", path, headers=headers)
    resp = conn.getresponse()
    return resp.status, resp.read().decode(errors="replace"), dict(resp.getheaders())


# --- database.php, as REDCap's db_connect() includes it -------------------------------------------

# In a function, twice, as REDCap's db_connect() does: every value it reads is a local there.
IN_A_FUNCTION = f"""
function probe(): array {{
    include '{WEBROOT}/database.php';
    include '{WEBROOT}/database.php';
    $names = ['hostname', 'db', 'username', 'password', 'salt', 'db_ssl_key', 'db_ssl_cert', 'db_ssl_ca',
        'db_ssl_capath', 'db_ssl_cipher', 'db_ssl_verify_server_cert'];
    $out = [];
    foreach ($names as $n) {{ $out[$n] = isset($$n); }}
    $out['host_port'] = $hostname;
    $out['verify'] = $db_ssl_verify_server_cert;
    return $out;
}}
echo json_encode(['function' => probe(), 'leaked_into_globals' => isset($GLOBALS['hostname'])]);
"""

# The stand-in's db_connect() (REDCap's way) on a normal page, twice in one request.
DB_CONNECT = f"""
$_SERVER['PHP_SELF'] = '/index.php';
require '{INIT}';
db_connect();
db_connect();
echo get_class($GLOBALS['rc_connection']), ' ', standin_config('redcap_version');
"""


def test_database_php_sets_plain_variables_where_redcap_includes_it(make_container, built_image, database):
    c = make_container()
    wait_ready(c)
    seen = json.loads(c.exec("php", "-r", IN_A_FUNCTION))
    inside = seen["function"]
    assert all(inside[n] for n in ("hostname", "db", "username", "password", "salt", "db_ssl_ca")), inside
    assert inside["host_port"] == f"{HOST}:{c.env['DB_PORT']}"
    assert inside["verify"] is True
    # Nothing but the including scope gets them: REDCap copies them into $GLOBALS itself.
    assert seen["leaked_into_globals"] is False
    assert c.exec("php", "-r", DB_CONNECT) == f"mysqli {STANDIN_VERSION}"
    # At file scope (install.php, upgrade.php, cron.php include it there): the same values.
    at_file_scope = f"require '{WEBROOT}/database.php'; echo $hostname, ' ', $db, ' ', strlen($salt) > 0 ? 'salt' : '';"
    assert c.exec("php", "-r", at_file_scope) == f"{HOST}:{c.env['DB_PORT']} {database.name} salt"


def test_a_database_php_that_sets_only_globals_fails_as_it_would_with_redcap(make_container, built_image):
    """The pre-issue-17 database.php against the stand-in's db_connect(): REDCap's error."""
    c = make_container()
    wait_ready(c)
    old = f"{OLD_DATABASE_PHP}:/opt/redcap-image/lib/database.php:ro"
    said = run_php(built_image, c, DB_CONNECT, old)
    assert "could not be found in your database connection file" in said
    assert "mysqli" not in said.split("file")[-1]  # it never connected
    # The same code with the image's database.php connects (the line above is the only difference).
    assert run_php(built_image, c, DB_CONNECT) == f"mysqli {STANDIN_VERSION}"


def test_first_boot_with_the_old_database_php_fails_with_the_fatal_error_logged(make_container, mariadb, database):
    c = make_container(volumes=(f"{OLD_DATABASE_PHP}:/opt/redcap-image/lib/database.php:ro",))
    assert c.wait_exit(timeout=90) == 69
    logs = c.logs()
    assert "REDCap installer finished but redcap_config does not exist" in logs
    # REDCap's installer silences every error (error_reporting(0)); its fatal one reaches the log anyway.
    finished = next(json.loads(line) for line in logs.splitlines() if '"REDCap installer finished"' in line)
    assert "PHP fatal error" in finished["errors"]
    assert "mysqli_error()" in finished["errors"]
    assert mariadb.sql(f"SHOW TABLES FROM `{database.name}`") == []


# --- The installer, judged by what it did ----------------------------------------------------------


def test_an_installer_that_prints_and_exits_0_without_installing_stops_first_boot(make_container, mariadb, database):
    # No CREATE privilege: every CREATE TABLE fails, REDCap ignores each failure and says it is done.
    mariadb.sql(f"REVOKE CREATE ON `{database.name}`.* FROM '{database.user}'@'%';")
    c = make_container()
    assert c.wait_exit(timeout=90) == 69
    logs = c.logs()
    finished = next(json.loads(line) for line in logs.splitlines() if '"REDCap installer finished"' in line)
    assert finished["exit_status"] == 0
    assert finished["output"] == "Install completed!"
    assert "REDCap installer finished but redcap_config does not exist (its output is logged above)" in logs
    assert '"outcome"' not in logs


def test_an_install_that_stopped_part_way_is_refused(make_container, built_image, tmp_path):
    # install.sql whose last CREATE TABLE fails: every earlier table exists, the installer still
    # says "Install completed!" and exits 0.
    from testkit.redcap_release import release_files

    sql = release_files()[f"redcap/redcap_v{STANDIN_VERSION}/Resources/sql/install.sql"]
    broken = sql.replace("CREATE TABLE `redcap_web_service_cache` (", "CREATE TABLE `redcap_web_service_cache` (,")
    assert broken != sql
    path = tmp_path / "install.sql"
    path.write_text(broken)
    path.chmod(0o644)
    c = make_container(volumes=(f"{path}:{WEBROOT}/redcap_v{STANDIN_VERSION}/Resources/sql/install.sql:ro",))
    assert c.wait_exit(timeout=90) == 69
    logs = c.logs()
    assert "tables created late in install.sql are missing: redcap_web_service_cache" in logs
    assert '"output":"Install completed!"' in logs


def test_an_install_that_left_another_redcap_version_is_refused(make_container, tmp_path):
    # The installer without its redcap_version UPDATE: install_data.sql's 4.0.0 stays.
    from testkit.redcap_release import release_files

    php = release_files()[f"redcap/redcap_v{STANDIN_VERSION}/install.php"]
    line = "print \"UPDATE redcap_config SET value = '$install_version' WHERE field_name = 'redcap_version';\\n\";"
    assert line in php
    path = tmp_path / "install.php"
    path.write_text(php.replace(line, ""))
    path.chmod(0o644)
    c = make_container(volumes=(f"{path}:{WEBROOT}/redcap_v{STANDIN_VERSION}/install.php:ro",))
    assert c.wait_exit(timeout=90) == 69
    assert f"redcap_version is '4.0.0', not this image's {STANDIN_VERSION}" in c.logs()


def test_install_uses_redcaps_unattended_get_and_is_checked(make_container, mariadb, database):
    c = make_container()
    wait_ready(c)
    rows = config(mariadb, database)
    # REDCap's own defaults arrived (only a GET with auto=1 sets them; a POST sets none), then seeding.
    assert rows["redcap_version"] == STANDIN_VERSION
    assert rows["password_algo"] == "sha512"
    assert rows["homepage_contact_email"] == "redcap@example.org"
    tables = {row[0] for row in mariadb.sql(f"SHOW TABLES FROM `{database.name}`")}
    assert set(LATE_INSTALL_TABLES) <= tables
    finished = next(json.loads(line) for line in c.logs().splitlines() if '"REDCap installer finished"' in line)
    assert (finished["exit_status"], finished["output"], finished["errors"]) == (0, "Install completed!", "")


# --- "Already configured": the image's marker, not the first administrator -------------------------


def test_first_administrator_gets_the_stacks_address_and_the_marker_is_written(make_container, mariadb, database):
    c = make_container()
    wait_ready(c)
    emails = mariadb.sql("SELECT username, user_email FROM redcap_user_information", database.name)
    assert emails == [["site_admin", c.env["REDCAP_ADMIN_EMAIL"]]]
    assert SAMPLE_ADMIN_EMAIL not in json.dumps(emails)
    ((marker,),) = mariadb.sql("SELECT value FROM rc_image_state WHERE name = 'configured'", database.name)
    assert marker.startswith(f"seeded by image {STANDIN_VERSION} at ")


def test_renaming_or_deleting_site_admin_never_reseeds_nor_stops_the_next_boot(make_container, mariadb, database):
    first = make_container()
    wait_ready(first)
    first.remove()
    # Hardening: site_admin renamed; meanwhile the sender and the S3 key changed.
    mariadb.sql(
        "UPDATE redcap_user_information SET username = 'alice' WHERE username = 'site_admin';"
        "UPDATE redcap_auth SET username = 'alice', password = 'alice-hash', temp_pwd = 0"
        " WHERE username = 'site_admin';"
        "UPDATE redcap_config SET value = 'help@example.org' WHERE field_name = 'from_email';"
        "UPDATE redcap_config SET value = 'AKIAROTATED00000' WHERE field_name = 'amazon_s3_key';",
        database.name,
    )
    renamed = make_container()
    wait_ready(renamed)
    assert '"outcome":"already-configured"' in renamed.logs()
    assert "redcap_config seeded" not in renamed.logs()
    renamed.remove()
    # Then deleted, and authentication set to "none": relocked, nothing seeded, no exit 69.
    mariadb.sql(
        "DELETE FROM redcap_user_information; DELETE FROM redcap_auth;"
        "UPDATE redcap_config SET value = 'none' WHERE field_name = 'auth_meth_global';",
        database.name,
    )
    deleted = make_container()
    wait_ready(deleted)
    logs = deleted.logs()
    assert '"outcome":"relocked"' in logs
    assert "redcap_config seeded" not in logs
    rows = config(mariadb, database)
    assert rows["auth_meth_global"] == "table"
    assert (rows["from_email"], rows["amazon_s3_key"]) == ("help@example.org", "AKIAROTATED00000")
    assert mariadb.sql("SELECT COUNT(*) FROM redcap_auth", database.name) == [["0"]]
    assert 'id="login"' in deleted.get("/")[1]


def test_a_boot_that_died_before_seeding_committed_seeds_on_the_next_one(make_container, mariadb, database):
    first = make_container()
    wait_ready(first)
    first.remove()
    # As if the transaction never committed: no marker, authentication and storage still REDCap's defaults.
    mariadb.sql(
        "DELETE FROM rc_image_state; UPDATE redcap_config SET value = 'none' WHERE field_name = 'auth_meth_global';"
        "UPDATE redcap_config SET value = '0' WHERE field_name = 'edoc_storage_option';",
        database.name,
    )
    again = make_container()
    wait_ready(again)
    assert '"outcome":"seeded"' in again.logs()
    assert config(mariadb, database)["auth_meth_global"] == "table"


# --- Apache, for REDCap behind the front end ---------------------------------------------------------


def test_a_database_seeded_before_the_marker_is_relocked_and_adopted_never_reseeded(make_container, mariadb, database):
    first = make_container()
    wait_ready(first)
    first.remove()
    # What an image from before the marker left: seeded (S3 storage on this bucket), no marker; since
    # then the S3 key rotated, site_admin was deleted and someone chose authentication "none".
    mariadb.sql(
        "DELETE FROM rc_image_state; DELETE FROM redcap_user_information; DELETE FROM redcap_auth;"
        "UPDATE redcap_config SET value = 'none' WHERE field_name = 'auth_meth_global';"
        "UPDATE redcap_config SET value = 'AKIAROTATED00000' WHERE field_name = 'amazon_s3_key';",
        database.name,
    )
    older = make_container()
    wait_ready(older)
    logs = older.logs()
    assert '"outcome":"relocked"' in logs
    assert "redcap_config seeded" not in logs
    rows = config(mariadb, database)
    assert (rows["auth_meth_global"], rows["amazon_s3_key"]) == ("table", "AKIAROTATED00000")
    ((marker,),) = mariadb.sql("SELECT value FROM rc_image_state WHERE name = 'configured'", database.name)
    assert marker.startswith("adopted")


def test_redcaps_sql_files_are_not_served(make_container):
    c = make_container()
    wait_ready(c)
    for name in ("install.sql", "install_data.sql"):
        status, body, _ = c.get(f"{V}/Resources/sql/{name}")
        assert status == 403, (name, status)
        assert "CREATE TABLE" not in body
        assert "INSERT" not in body
    assert c.get(f"{V}/Resources/css/style.css")[0] == 200  # the rule is about .sql only


def test_behind_tls_termination_php_sees_https_on_port_443(make_container):
    c = make_container()
    wait_ready(c)
    visitor = {"Host": "example.org", "X-Forwarded-Proto": "https"}
    status, body, _ = c.get(f"{V}/StandIn/server_info.php", headers=visitor)
    assert status == 200, body
    seen = json.loads(body)
    assert (seen["SERVER_PORT"], seen["HTTPS"], seen["SERVER_NAME"]) == ("443", "on", "example.org")
    # What REDCap builds while redcap_base_url is empty: no container port in it.
    assert seen["redcap_url"] == f"https://example.org{V}/index.php"


def test_redirect_from_an_old_version_folder_keeps_the_visitors_scheme_and_host(make_container):
    c = make_container()
    wait_ready(c)
    status, _, headers = no_redirect(
        c, "/redcap_v1.2.3/index.php?pid=5", {"Host": "example.org", "X-Forwarded-Proto": "https"}
    )
    assert status == 302
    assert headers["Location"] == f"https://example.org{V}/index.php?pid=5"


def test_the_client_address_cannot_be_forged(make_container):
    c = make_container()
    wait_ready(c)
    page = f"{V}/StandIn/server_info.php"
    # The visitor forges Client-IP and an X-Forwarded-For entry; the front end appended the real
    # address (203.0.113.7), and may add its own private hop after it.
    for xff in ("6.6.6.6, 203.0.113.7", "6.6.6.6,203.0.113.7, 10.0.4.5"):
        _, body, _ = c.get(page, headers={"Client-IP": "6.6.6.6", "X-Forwarded-For": xff})
        seen = json.loads(body)
        assert seen["HTTP_CLIENT_IP"] is None, xff
        assert seen["HTTP_X_FORWARDED_FOR"] == "203.0.113.7", xff
        assert seen["REMOTE_ADDR"] == "203.0.113.7", xff
        assert seen["redcap_client_ip"] == "203.0.113.7", xff
    # No header at all: the connection's own address.
    seen = json.loads(c.get(page)[1])
    assert seen["redcap_client_ip"] == seen["HTTP_X_FORWARDED_FOR"] == HOST


def _hang_up_after(c: RedcapContainer, path: str, seconds: float) -> bytes:
    with socket.create_connection((HOST, c.port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        first = s.recv(4096)
        time.sleep(seconds)
    return first


def test_cron_keeps_running_after_its_caller_hangs_up(make_container):
    c = make_container()
    wait_ready(c)
    # Both run the same 5-second job and the caller hangs up after 1 s; only cron.php may finish.
    assert _hang_up_after(c, "/cron.php?standin_seconds=5&standin_id=cron1", 1).startswith(b"HTTP/1.1 200")
    assert _hang_up_after(c, f"{V}/StandIn/slow_page.php?standin_seconds=5&standin_id=page1", 1).startswith(
        b"HTTP/1.1 200"
    )
    deadline = time.monotonic() + 20
    done = ""
    while time.monotonic() < deadline:
        done = c.exec("sh", "-c", f"ls {WEBROOT}/temp/ | grep '.done$' || true")
        if "standin-cron-cron1.done" in done:
            break
        time.sleep(0.5)
    time.sleep(2)  # the other job would have finished by now too
    done = c.exec("sh", "-c", f"ls {WEBROOT}/temp/ | grep '.done$' || true")
    assert "standin-cron-cron1.done" in done, done
    # Control: without ignore_user_abort PHP stops a job whose caller hung up (else this proves nothing).
    assert "standin-slow_page-page1.done" not in done
