"""Zero-downtime rotation of REDCap's S3 and SES IAM keys and of the cron header.

``handle_step`` runs one step of the Secrets Manager rotation protocol for the
kind in ``RotationConfig``; ``drive`` runs a whole rotation for emulators and
benchmarks; ``hygiene`` holds the daily previous-key clean-up.
"""

from redcap_ctl.rotation.clients import RotationClients, user_client
from redcap_ctl.rotation.config import DbTarget, Retry, RotationConfig, SecretKind
from redcap_ctl.rotation.protocol import STEPS, RotationEvent, StepResult, drive, handle_step, stage_pending
from redcap_ctl.rotation.smtp import SmtpTarget, derive_smtp_password
from redcap_ctl.rotation.values import RotationError

__all__ = [
    "STEPS",
    "DbTarget",
    "Retry",
    "RotationClients",
    "RotationConfig",
    "RotationError",
    "RotationEvent",
    "SecretKind",
    "SmtpTarget",
    "StepResult",
    "derive_smtp_password",
    "drive",
    "handle_step",
    "stage_pending",
    "user_client",
]
