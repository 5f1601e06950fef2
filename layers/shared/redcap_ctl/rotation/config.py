"""Rotation configuration, parsed once from the function's environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from redcap_ctl.config import optional_env, parse_int, require_env
from redcap_ctl.errors import InputError
from redcap_ctl.rotation.smtp import SmtpTarget
from redcap_ctl.waf import PatternSetRef


class SecretKind(StrEnum):
    S3 = "s3-access-key"
    SES = "ses-smtp"
    CRON = "cron-header"

    @property
    def is_iam(self) -> bool:
        return self is not SecretKind.CRON


def parse_kind(value: str, field: str = "SECRET_KIND") -> SecretKind:
    try:
        return SecretKind(value.strip())
    except ValueError:
        allowed = ", ".join(k.value for k in SecretKind)
        raise InputError(field, f"must be one of {allowed}") from None


@dataclass(frozen=True)
class DbTarget:
    """Where REDCap's ``redcap_config`` lives, reached through the RDS Data API."""

    cluster_arn: str
    secret_arn: str
    database: str


@dataclass(frozen=True)
class Retry:
    attempts: int = 8
    # Seconds before the first retry; doubled each time, capped at max_delay.
    delay: float = 2.0
    max_delay: float = 15.0

    def delays(self) -> list[float]:
        out, d = [], self.delay
        for _ in range(self.attempts - 1):
            out.append(min(d, self.max_delay))
            d *= 2
        return out


@dataclass(frozen=True)
class RotationConfig:
    kind: SecretKind
    region: str
    bucket: str | None = None
    probe_prefix: str = "_rotation-probe/"
    db: DbTarget | None = None
    smtp: SmtpTarget | None = None
    service_arn: str | None = None
    pattern_set: PatternSetRef | None = None
    # IAM keys take a few seconds to become usable everywhere (eventual consistency).
    propagation: Retry = Retry()
    # A non-current key may be deleted only after this long without use.
    previous_key_idle_hours: int = 24

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RotationConfig:
        env = os.environ if environ is None else environ
        kind = parse_kind(require_env("SECRET_KIND", env))
        region = require_env("AWS_REGION", env)
        attempts = optional_env("IAM_PROPAGATION_ATTEMPTS", "8", env)
        delay_ms = optional_env("IAM_PROPAGATION_DELAY_MS", "2000", env)
        propagation = Retry(
            attempts=parse_int(attempts, "IAM_PROPAGATION_ATTEMPTS", minimum=1, maximum=20),
            delay=parse_int(delay_ms, "IAM_PROPAGATION_DELAY_MS", minimum=0, maximum=60_000) / 1000,
        )
        idle = parse_int(
            optional_env("PREVIOUS_KEY_IDLE_HOURS", "24", env), "PREVIOUS_KEY_IDLE_HOURS", minimum=0, maximum=8760
        )
        if kind is SecretKind.S3:
            return cls(
                kind=kind,
                region=region,
                bucket=require_env("FILE_BUCKET", env),
                probe_prefix=optional_env("PROBE_PREFIX", "_rotation-probe/", env),
                db=DbTarget(
                    cluster_arn=require_env("DB_CLUSTER_ARN", env),
                    secret_arn=require_env("DB_SECRET_ARN", env),
                    database=require_env("DB_NAME", env),
                ),
                propagation=propagation,
                previous_key_idle_hours=idle,
            )
        if kind is SecretKind.SES:
            ca_file = optional_env("SMTP_CA_FILE", "", env) or None
            return cls(
                kind=kind,
                region=region,
                smtp=SmtpTarget(
                    host=require_env("SMTP_HOST", env),
                    port=parse_int(optional_env("SMTP_PORT", "587", env), "SMTP_PORT", minimum=1, maximum=65535),
                    timeout=float(parse_int(optional_env("SMTP_TIMEOUT", "10", env), "SMTP_TIMEOUT", minimum=1)),
                    ca_file=ca_file,
                ),
                # App Runner or ECS (Express) service ARN: the redeploy follows the compute type.
                service_arn=require_env("COMPUTE_SERVICE_ARN", env),
                propagation=propagation,
                previous_key_idle_hours=idle,
            )
        return cls(
            kind=kind,
            region=region,
            pattern_set=PatternSetRef.from_arn(require_env("CRON_PATTERN_SET_ARN", env)),
        )
