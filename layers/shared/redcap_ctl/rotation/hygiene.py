"""Daily key hygiene: retire previous IAM keys, and notice rotations that stalled.

After a rotation the previous key stays Active so that consumers can follow
(REDCap re-reads ``redcap_config``, App Runner redeploys). This check then

- deactivates a previous key once it has gone unused for ``deactivate_after``
  after the rotation (IAM's last-used time, which lags by a few hours, is why
  the default is a whole day);
- deletes a deactivated key after a further ``delete_after`` (IAM does not
  record when a key was deactivated, so both graces count from the key's last
  activity: a deleted key has been unused for at least their sum);
- reports a previous key still in use ``max_grace`` after the rotation
  (a consumer did not follow) and the age of every secret, for the alarms.

A key staged AWSPENDING belongs to a rotation in progress and is never touched.
Secret ages come from the version list's dates; only the IAM kinds read values
(AWSCURRENT and AWSPENDING), because the live key ids exist nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.config import optional_env, parse_int
from redcap_ctl.errors import InputError
from redcap_ctl.rotation.config import SecretKind
from redcap_ctl.rotation.iam_keys import KeyInfo, iam_reason, list_keys
from redcap_ctl.rotation.values import CURRENT, PENDING, KeySecret, RotationError, get_value, mask

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = Logger(child=True)

_SECRET_ENV = {SecretKind.S3: "S3_SECRET_ARN", SecretKind.SES: "SES_SECRET_ARN", SecretKind.CRON: "CRON_SECRET_ARN"}


@dataclass(frozen=True)
class HygieneConfig:
    secrets: tuple[tuple[SecretKind, str], ...]
    deactivate_after: timedelta = timedelta(hours=24)
    delete_after: timedelta = timedelta(hours=24 * 7)
    max_grace: timedelta = timedelta(hours=72)
    rotation_days: int = 90
    slack_days: int = 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HygieneConfig:
        env = os.environ if environ is None else environ
        secrets = tuple((kind, env[name].strip()) for kind, name in _SECRET_ENV.items() if env.get(name, "").strip())
        if not secrets:
            raise InputError(
                "S3_SECRET_ARN", "at least one of S3_SECRET_ARN, SES_SECRET_ARN, CRON_SECRET_ARN is required"
            )

        def hours(name: str, default: str) -> timedelta:
            return timedelta(hours=parse_int(optional_env(name, default, env), name, minimum=1, maximum=24 * 365))

        config = cls(
            secrets=secrets,
            deactivate_after=hours("DEACTIVATE_AFTER_HOURS", "24"),
            delete_after=hours("DELETE_AFTER_HOURS", "168"),
            max_grace=hours("PREVIOUS_KEY_MAX_GRACE_HOURS", "72"),
            rotation_days=parse_int(optional_env("ROTATION_DAYS", "90", env), "ROTATION_DAYS", minimum=1, maximum=1000),
            slack_days=parse_int(optional_env("ROTATION_SLACK_DAYS", "3", env), "ROTATION_SLACK_DAYS", minimum=0),
        )
        if config.max_grace < config.deactivate_after:
            raise InputError("PREVIOUS_KEY_MAX_GRACE_HOURS", "must be at least DEACTIVATE_AFTER_HOURS")
        return config


@dataclass
class KindReport:
    kind: SecretKind
    secret_age_days: float
    overdue: bool
    previous_key_in_use: bool = False
    actions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "SecretKind": self.kind.value,
            "SecretAgeDays": round(self.secret_age_days, 2),
            "Overdue": self.overdue,
            "PreviousKeyInUse": self.previous_key_in_use,
            "Actions": list(self.actions),
        }


def _current_since(secrets: SecretsManagerClient, secret_id: str) -> tuple[datetime, str | None]:
    """When the AWSCURRENT value was created (its rotation), and the pending version id if any.

    From the version list's dates, never from the value: the age of the cron header needs no read
    of the header itself, and the IAM kinds read their values only to learn the live key ids.
    """
    versions = secrets.list_secret_version_ids(SecretId=secret_id)["Versions"]
    current = next((v for v in versions if CURRENT in v.get("VersionStages", [])), None)
    pending = next(
        (v for v in versions if PENDING in v.get("VersionStages", []) and CURRENT not in v.get("VersionStages", [])),
        None,
    )
    if current is None or "CreatedDate" not in current:
        raise RotationError("the secret has no AWSCURRENT version")
    return current["CreatedDate"], pending["VersionId"] if pending else None


def check_secret(
    kind: SecretKind,
    secret_id: str,
    config: HygieneConfig,
    secrets: SecretsManagerClient,
    iam: IAMClient | None,
    now: datetime,
) -> KindReport:
    rotated_at, pending_id = _current_since(secrets, secret_id)
    age_days = (now - rotated_at).total_seconds() / 86400
    report = KindReport(kind, age_days, overdue=age_days > config.rotation_days + config.slack_days)
    if not kind.is_iam:
        return report
    if iam is None:
        raise RuntimeError("IAM kinds need an IAM client")

    current = KeySecret.parse(get_value(secrets, secret_id, stage=CURRENT) or "", "AWSCURRENT value")
    pending_key = None
    if pending_id:
        text = get_value(secrets, secret_id, stage=PENDING, version_id=pending_id)
        pending_key = KeySecret.parse(text, "AWSPENDING value").access_key_id if text else None
    for key in list_keys(iam, current.user_name):
        if key.key_id in (current.access_key_id, pending_key):
            continue
        _retire(key, current.user_name, rotated_at, config, iam, now, report)
    return report


def _retire(
    key: KeyInfo,
    user: str,
    rotated_at: datetime,
    config: HygieneConfig,
    iam: IAMClient,
    now: datetime,
    report: KindReport,
) -> None:
    # A key younger than the current version was never a previous key; count from its creation.
    since = max(rotated_at, key.created)
    used_after = key.last_used is not None and key.last_used > since
    last_activity = key.last_used if used_after and key.last_used is not None else since
    idle = now - last_activity
    label = mask(key.key_id)
    try:
        if key.status == "Active":
            if idle >= config.deactivate_after:
                iam.update_access_key(UserName=user, AccessKeyId=key.key_id, Status="Inactive")
                report.actions.append(f"deactivated {label}")
                logger.info("deactivated previous key", extra={"key": label, "kind": report.kind.value})
            elif used_after and now - since >= config.max_grace:
                report.previous_key_in_use = True
                logger.warning(
                    "previous key still in use after the maximum grace; a consumer did not follow",
                    extra={"key": label, "kind": report.kind.value},
                )
        elif idle >= config.deactivate_after + config.delete_after:
            iam.delete_access_key(UserName=user, AccessKeyId=key.key_id)
            report.actions.append(f"deleted {label}")
            logger.info("deleted deactivated key", extra={"key": label, "kind": report.kind.value})
    except ClientError as err:
        raise iam_reason(err, f"retiring key {label}") from None


def run(
    config: HygieneConfig,
    secrets: SecretsManagerClient,
    iam: IAMClient | None,
    now: datetime,
) -> list[KindReport]:
    return [check_secret(kind, secret_id, config, secrets, iam, now) for kind, secret_id in config.secrets]
