"""The SQL that prepares Aurora for REDCap: its schema and the users that reach it.

Plain functions returning statements, so the custom resource (through the RDS Data API, as
the master user) and the image tests (against MariaDB, password-identified because MariaDB
has no IAM plugin) run exactly the same grants.
"""

from __future__ import annotations

import re

# What REDCap's installer and upgrader need on its own schema, and nothing server-wide
# (no GRANT OPTION, no replication, no FILE/PROCESS/SUPER).
REDCAP_PRIVILEGES: tuple[str, ...] = (
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "ALTER",
    "DROP",
    "INDEX",
    "REFERENCES",
    "CREATE TEMPORARY TABLES",
    "LOCK TABLES",
    "CREATE VIEW",
    "SHOW VIEW",
)

IAM_AUTHENTICATION = "IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'"

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,31}$")


class DatabaseSetupError(ValueError):
    """A property that cannot be used in SQL; the message names the field."""


def identifier(value: str, field: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise DatabaseSetupError(f"{field} must be 1-32 letters, digits or _ and start with a letter")
    return value


def schema_statement(db_name: str) -> str:
    name = identifier(db_name, "DatabaseName")
    return f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"


def app_user_statements(db_name: str, user: str, *, authentication: str = IAM_AUTHENTICATION) -> list[str]:
    """Idempotent: create the user if absent, (re)assert TLS and the grants on REDCap's schema."""
    name = identifier(db_name, "DatabaseName")
    account = f"'{identifier(user, 'UserName')}'@'%'"
    return [
        f"CREATE USER IF NOT EXISTS {account} {authentication} REQUIRE SSL",
        f"ALTER USER {account} REQUIRE SSL",
        f"GRANT {', '.join(REDCAP_PRIVILEGES)} ON `{name}`.* TO {account}",
    ]
