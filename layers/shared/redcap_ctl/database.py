"""The SQL that prepares Aurora for REDCap: its schema and the users that reach it.

Plain functions returning statements, so the custom resource (through the RDS Data API, as
the master user) and the image tests (against MariaDB, password-identified because MariaDB
has no IAM plugin) run exactly the same grants.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from redcap_ctl.budget import Budget
from redcap_ctl.config import require_str
from redcap_ctl.errors import ControlPlaneError, InputError
from redcap_ctl.rotation.config import DbTarget

if TYPE_CHECKING:
    from mypy_boto3_rds_data import RDSDataServiceClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

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

# The S3 key rotation's only door into the database: a definer-rights procedure that changes
# exactly the two redcap_config rows holding REDCap's S3 key. Its user may run it and nothing
# else (no SELECT, no UPDATE on any table). A procedure, not a view: it can be created before
# REDCap installs redcap_config (the table is resolved when it runs).
ROTATION_PROCEDURE = "redcap_ctl_set_s3_key"

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


def native_password_hash(password: str) -> str:
    """MySQL's mysql_native_password hash, so only the hash travels in the SQL text."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()  # noqa: S324 - MySQL's format


def rotation_user_statements(db_name: str, user: str, password: str) -> list[str]:
    """Idempotent: the procedure (re)created, the user with the secret's password, EXECUTE on it only."""
    name = identifier(db_name, "DatabaseName")
    account = f"'{identifier(user, 'RotationUserName')}'@'%'"
    auth = f"IDENTIFIED WITH mysql_native_password AS '{native_password_hash(password)}'"
    procedure = f"`{name}`.`{ROTATION_PROCEDURE}`"
    return [
        f"DROP PROCEDURE IF EXISTS {procedure}",
        # Names passed identifier(); the values arrive as the procedure's parameters.
        f"CREATE PROCEDURE {procedure}(IN key_id VARCHAR(128), IN secret_key VARCHAR(255)) "  # noqa: S608
        "MODIFIES SQL DATA SQL SECURITY DEFINER "
        f"UPDATE `{name}`.redcap_config SET value = CASE field_name "
        "WHEN 'amazon_s3_key' THEN key_id WHEN 'amazon_s3_secret' THEN secret_key END "
        "WHERE field_name IN ('amazon_s3_key', 'amazon_s3_secret')",
        f"CREATE USER IF NOT EXISTS {account} {auth}",
        # Follows the secret if it was ever changed by hand.
        f"ALTER USER {account} {auth}",
        f"GRANT EXECUTE ON PROCEDURE {procedure} TO {account}",
    ]


# ----- The custom resources (Custom::RedcapDatabase, Custom::RedcapBaseUrl) -----
# They run SQL as the Aurora master user through the RDS Data API. That identity stays with
# these resources (and break-glass use): the running REDCap never reads the master secret.

_ARN = re.compile(r"^arn:aws[a-z-]*:(rds|secretsmanager):[a-z0-9-]+:\d{12}:.+$")
_BASE_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:\d+)?/$")
_NOT_INSTALLED = ("doesn't exist", "does not exist")


class DatabaseUnavailable(ControlPlaneError):
    """The Data API could not run a statement; the message names the step, never SQL values."""


@dataclass(frozen=True)
class DatabaseProps:
    target: DbTarget
    iam_user: str
    rotation_secret_arn: str


@dataclass(frozen=True)
class BaseUrlProps:
    target: DbTarget
    base_url: str


def _target(props: Mapping[str, Any]) -> DbTarget:
    cluster, secret = require_str(props, "ClusterArn"), require_str(props, "SecretArn")
    if not _ARN.match(cluster) or ":cluster:" not in cluster:
        raise InputError("ClusterArn", "must be an Aurora cluster ARN")
    if not _ARN.match(secret) or ":secret:" not in secret:
        raise InputError("SecretArn", "must be a Secrets Manager secret ARN")
    db = require_str(props, "DatabaseName")
    try:
        identifier(db, "DatabaseName")
    except DatabaseSetupError as err:
        raise InputError("DatabaseName", str(err).split(" ", 1)[1]) from None
    return DbTarget(cluster, secret, db)


def parse_database_props(props: Mapping[str, Any]) -> DatabaseProps:
    user = require_str(props, "IamUserName")
    try:
        identifier(user, "IamUserName")
    except DatabaseSetupError as err:
        raise InputError("IamUserName", str(err).split(" ", 1)[1]) from None
    rotation = require_str(props, "RotationUserSecretArn")
    if not _ARN.match(rotation) or ":secret:" not in rotation:
        raise InputError("RotationUserSecretArn", "must be a Secrets Manager secret ARN")
    return DatabaseProps(_target(props), user, rotation)


def refuse_snapshot_change(
    old_props: Mapping[str, Any], new_props: Mapping[str, Any], rolling_back: Callable[[], bool]
) -> None:
    """Update: refuse a change of DbSnapshotIdentifier, which has already replaced the cluster.

    CloudFormation's AWS::RDS::DBCluster reference (SnapshotIdentifier): a later update with a different
    SnapshotIdentifier restores a NEW cluster, an empty one creates an empty cluster, and the original
    cluster is deleted. CloudFormation deletes a replaced resource only in the cleanup after the whole
    update succeeded, so failing here rolls the stack back to the old cluster, whose data is untouched.
    The rollback then sends this resource an Update with the properties swapped (docs/image-build.md,
    "CloudFormation's own rollback takes no snapshot"): that one must succeed, so ``rolling_back`` (the
    stack's status, asked only when the identifier differs) lets it through. Properties from a stack
    made before this property existed count as "" (no snapshot).
    """
    old = str(old_props.get("SnapshotIdentifier", "") or "")
    new = str(new_props.get("SnapshotIdentifier", "") or "")
    if old != new and not rolling_back():
        # Kept short: crhelper truncates a long Reason before CloudFormation shows it.
        raise InputError(
            "SnapshotIdentifier",
            f"DbSnapshotIdentifier may not change (that replaces the Aurora cluster); set it back to "
            f'{old or "empty"!r} and restore into a NEW stack (docs/runbook.md "Restore")',
        )


def parse_base_url_props(props: Mapping[str, Any]) -> BaseUrlProps:
    url = require_str(props, "BaseUrl")
    if not url.startswith("https://"):
        url = "https://" + url
    if not url.endswith("/"):
        url += "/"
    if not _BASE_URL.match(url):
        raise InputError("BaseUrl", "must be a host name or an https:// URL")
    return BaseUrlProps(_target(props), url)


def _execute(
    rds_data: RDSDataServiceClient,
    target: DbTarget,
    sql: str,
    step: str,
    budget: Budget,
    *,
    database: str | None = None,
    parameters: list[Any] | None = None,
) -> Any:
    """One statement; waits out Aurora's auto-pause resume within the time budget."""
    kwargs: dict[str, Any] = {"resourceArn": target.cluster_arn, "secretArn": target.secret_arn, "sql": sql}
    if database:
        kwargs["database"] = database
    if parameters:
        kwargs["parameters"] = parameters
    delay = 2.0
    while True:
        budget.check(step)
        try:
            return rds_data.execute_statement(**kwargs)
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code == "DatabaseResumingException":
                budget.sleep(delay, "the Aurora cluster to resume")
                delay = min(delay * 2, 15)
                continue
            message = str(err.response.get("Error", {}).get("Message", ""))
            # Data API messages quote MySQL's error text, which names objects, never parameter values.
            raise DatabaseUnavailable(f"{step} failed: {code}: {message[:300]}") from None


def rotation_credentials(secrets: SecretsManagerClient, secret_arn: str) -> tuple[str, str]:
    """username/password of the rotation user's Data API secret; errors never quote the value."""
    try:
        text = secrets.get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")["SecretString"]
        data = json.loads(text)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        raise DatabaseUnavailable(f"reading RotationUserSecretArn failed: {code}") from None
    except (KeyError, ValueError):
        raise InputError("RotationUserSecretArn", "the secret must be JSON with username and password") from None
    if not isinstance(data, dict):
        raise InputError("RotationUserSecretArn", "the secret must be a JSON object")
    user, password = data.get("username"), data.get("password")
    if not isinstance(user, str) or not isinstance(password, str) or len(password) < 16:
        raise InputError("RotationUserSecretArn", "the secret needs username and a password of 16+ characters")
    try:
        identifier(user, "username")
    except DatabaseSetupError:
        raise InputError("RotationUserSecretArn", "username must be 1-32 letters, digits or _") from None
    return user, password


def ensure_database(
    rds_data: RDSDataServiceClient, secrets: SecretsManagerClient, props: DatabaseProps, budget: Budget
) -> dict[str, str]:
    """Create/Update: REDCap's schema, its IAM-authenticated user and the rotation user, idempotently."""
    t = props.target
    rotation_user, rotation_password = rotation_credentials(secrets, props.rotation_secret_arn)
    _execute(rds_data, t, schema_statement(t.database), "creating the REDCap schema", budget)
    for sql in app_user_statements(t.database, props.iam_user):
        _execute(rds_data, t, sql, f"preparing database user {props.iam_user}", budget)
    for sql in rotation_user_statements(t.database, rotation_user, rotation_password):
        _execute(rds_data, t, sql, f"preparing rotation user {rotation_user}", budget)
    return {"DatabaseName": t.database, "IamUserName": props.iam_user, "RotationUserName": rotation_user}


def set_base_url(
    rds_data: RDSDataServiceClient,
    props: BaseUrlProps,
    previous: str | None,
    budget: Budget,
    wait: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Point ``redcap_base_url`` at the service, unless an administrator has chosen another URL.

    The row is changed only while it is empty or still holds what the stack wrote before
    (``previous``). REDCap may still be installing when the service reports RUNNING (its health
    check answers before install), so a missing table is waited for within the budget.
    """
    t = props.target
    sql = (
        "UPDATE redcap_config SET value = :url WHERE field_name = 'redcap_base_url'"
        " AND (value IS NULL OR value = '' OR value = :previous)"
    )
    params = [
        {"name": "url", "value": {"stringValue": props.base_url}},
        {"name": "previous", "value": {"stringValue": previous or props.base_url}},
    ]
    while True:
        try:
            resp = _execute(rds_data, t, sql, "setting redcap_base_url", budget, database=t.database, parameters=params)
        except DatabaseUnavailable as err:
            if any(m in str(err) for m in _NOT_INSTALLED):
                budget.sleep(wait, "REDCap's first install to create redcap_config")
                continue
            raise
        return "updated" if int(resp.get("numberOfRecordsUpdated", 0)) else "kept"
