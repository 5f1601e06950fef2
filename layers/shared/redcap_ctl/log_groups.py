"""Custom::ServiceLogGroups: log groups that AWS services create, claimed for the stack's key and retention.

Aurora writes its exported audit, error and slow-query logs, and App Runner its application and
service logs (REDCap's access log carries survey hashes and record ids), to log groups the
services create themselves: without this they are encrypted only with an AWS-owned key and never
expire. The App Runner groups' names hold the service id, known only once the service exists,
and App Runner creates them at once; so instead of ``AWS::Logs::LogGroup`` resources (which would
fail with "already exists"), this resource claims each group:

- missing: create it with the stack's KMS key;
- present: associate the KMS key (what arrives from then on is encrypted with it);
- either way: set the retention to ``LogRetentionDays``.

Every step is idempotent, so Create and Update do the same; Delete leaves the groups (their
retention expires them, and App Runner or Aurora may still be writing while the stack goes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.budget import Budget
from redcap_ctl.errors import ControlPlaneError, InputError

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

logger = Logger(child=True)

CALL_RESERVE_S = 10.0
# The values CloudWatch Logs accepts for PutRetentionPolicy.
RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
_KNOWN = {"ServiceToken", "LogGroupNames", "KmsKeyArn", "RetentionInDays"}


@dataclass(frozen=True)
class Settings:
    names: tuple[str, ...]
    kms_key_arn: str
    retention_days: int


def parse_settings(props: Mapping[str, Any]) -> Settings:
    unknown = sorted(set(props) - _KNOWN)
    if unknown:
        raise InputError(unknown[0], "unknown property")
    names = props.get("LogGroupNames")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.startswith("/") for n in names):
        raise InputError("LogGroupNames", "must be a non-empty list of log group names")
    key = props.get("KmsKeyArn")
    if not isinstance(key, str) or not key.startswith("arn:") or ":key/" not in key:
        raise InputError("KmsKeyArn", "must be a KMS key ARN")
    try:
        days = int(str(props.get("RetentionInDays", "")))
    except ValueError:
        raise InputError("RetentionInDays", "must be a number of days") from None
    if days not in RETENTION_DAYS:
        raise InputError("RetentionInDays", "must be a retention CloudWatch Logs offers")
    return Settings(tuple(dict.fromkeys(names)), key, days)


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def claim(logs: CloudWatchLogsClient, settings: Settings, budget: Budget) -> list[str]:
    """Create or claim every group; the names of those that already existed."""
    existed = []
    for name in settings.names:
        budget.check(f"claim log group {name}")
        try:
            try:
                logs.create_log_group(logGroupName=name, kmsKeyId=settings.kms_key_arn)
            except ClientError as err:
                if _code(err) != "ResourceAlreadyExistsException":
                    raise
                existed.append(name)
                logs.associate_kms_key(logGroupName=name, kmsKeyId=settings.kms_key_arn)
            logs.put_retention_policy(logGroupName=name, retentionInDays=settings.retention_days)
        except ClientError as err:
            raise ControlPlaneError(f"claiming log group {name}: {_code(err)}") from err
        logger.info("Log group claimed", extra={"log_group": name, "existed": name in existed})
    return existed
