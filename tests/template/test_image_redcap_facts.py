"""docs/image.md's claims about how the image meets REDCap, tied to the image's code and the stand-in
release: the late install.sql tables, the marker table, and the Apache directives behind TLS."""

from __future__ import annotations

import re

from testkit import ROOT
from testkit.redcap_release import LATE_INSTALL_TABLES, STANDIN_VERSION, release_files

IMAGE = ROOT / "containers" / "redcap" / "rootfs"
INSTALL_PHP = (IMAGE / "opt" / "redcap-image" / "lib" / "install.php").read_text()
VHOST = (IMAGE / "etc" / "apache2" / "sites-available" / "redcap.conf").read_text()
DOCS = (ROOT / "docs" / "image.md").read_text()


def _php_string_list(constant: str) -> list[str]:
    match = re.search(rf"const {constant} = \[([^\]]*)\];", INSTALL_PHP)
    assert match, constant
    return re.findall(r"'([^']+)'", match.group(1))


def test_the_late_tables_the_image_checks_are_the_ones_install_sql_creates_last() -> None:
    assert tuple(_php_string_list("RC_LATE_INSTALL_TABLES")) == LATE_INSTALL_TABLES
    sql = release_files()[f"redcap/redcap_v{STANDIN_VERSION}/Resources/sql/install.sql"]
    created = re.findall(r"CREATE TABLE `([a-z_]+)`", sql)
    assert tuple(created[-len(LATE_INSTALL_TABLES) :]) == LATE_INSTALL_TABLES
    for table in LATE_INSTALL_TABLES:
        assert f"`{table}`" in DOCS


def test_the_marker_table_is_the_one_the_docs_name_and_not_one_of_redcaps() -> None:
    match = re.search(r"const RC_STATE_TABLE = '([a-z_]+)';", INSTALL_PHP)
    assert match
    assert not match.group(1).startswith("redcap_")
    assert f"`{match.group(1)}`" in DOCS


def _directives(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_apache_does_what_the_docs_say_behind_the_front_end() -> None:
    lines = _directives(VHOST)
    for directive in (
        "ServerName https://localhost:443",
        "UseCanonicalName Off",
        "RequestHeader unset Client-IP early",
        "RemoteIPHeader X-Forwarded-For",
        'RequestHeader set X-Forwarded-For "expr=%{REMOTE_ADDR}"',
        "php_flag ignore_user_abort On",
        '<FilesMatch "\\.sql$">',
    ):
        assert directive in lines, directive
    # mod_remoteip trusts the private ranges the docs list, and nothing public.
    trusted = " ".join(line.split(None, 1)[1] for line in lines if line.startswith("RemoteIPInternalProxy"))
    for cidr in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16", "127.0.0.0/8"):
        assert cidr in trusted.split(), cidr
        address, bits = cidr.split("/")
        short = re.sub(r"(\.0)+$", "", address) + "/" + bits  # docs write 10/8, 172.16/12, ...
        assert short in DOCS, short
    assert "0.0.0.0/0" not in trusted
    # ignore_user_abort applies to cron.php only.
    block = VHOST.split('<Files "cron.php">')[1].split("</Files>")[0]
    assert "php_flag ignore_user_abort On" in block
    assert sum("ignore_user_abort" in line for line in lines) == 1
    for url in (
        "https://httpd.apache.org/docs/2.4/mod/core.html#servername",
        "https://httpd.apache.org/docs/2.4/mod/mod_remoteip.html",
    ):
        assert url in VHOST
        assert url in DOCS
