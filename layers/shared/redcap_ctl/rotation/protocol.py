"""The Secrets Manager rotation protocol: preconditions, then one of four steps.

Shape of AWS's own rotation templates: the handler checks that rotation is
enabled, that the token is a version of the secret staged AWSPENDING, and
short-circuits when that version is already AWSCURRENT; each step is safe to
run again. Two deliberate differences, both for failure recovery:

- finishSecret on a version that is already AWSCURRENT still refreshes the
  consumers (idempotent), because a retried finishSecret is the only way a
  failed consumer refresh gets done.
- createSecret cleans up what a failed run left behind (see ``iam_keys``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from redcap_ctl.errors import InputError
from redcap_ctl.rotation import consumers, cron, iam_keys
from redcap_ctl.rotation.clients import RotationClients
from redcap_ctl.rotation.config import RotationConfig, SecretKind
from redcap_ctl.rotation.smtp import SmtpAuthRejected, check_smtp_auth
from redcap_ctl.rotation.values import (
    CURRENT,
    PENDING,
    KeySecret,
    RotationError,
    get_value,
    smtp_credentials,
    version_with,
)

logger = Logger(child=True)

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


@dataclass(frozen=True)
class RotationEvent:
    secret_id: str
    token: str
    step: str

    @classmethod
    def parse(cls, event: Mapping[str, Any]) -> RotationEvent:
        values = {}
        for field in ("SecretId", "ClientRequestToken", "Step"):
            value = event.get(field)
            if not isinstance(value, str) or not value.strip():
                raise InputError(field, "is required")
            values[field] = value.strip()
        if values["Step"] not in STEPS:
            raise InputError("Step", f"must be one of {', '.join(STEPS)}")
        return cls(values["SecretId"], values["ClientRequestToken"], values["Step"])


@dataclass(frozen=True)
class StepResult:
    step: str
    kind: SecretKind
    outcome: str

    def as_dict(self) -> dict[str, str]:
        return {"Step": self.step, "SecretKind": self.kind.value, "Outcome": self.outcome}


def handle_step(event: Mapping[str, Any], config: RotationConfig, clients: RotationClients) -> StepResult:
    ev = RotationEvent.parse(event)
    meta = clients.secrets.describe_secret(SecretId=ev.secret_id)
    if not meta.get("RotationEnabled"):
        raise RotationError("the secret is not enabled for rotation")
    versions = meta.get("VersionIdsToStages", {})
    if ev.token not in versions:
        raise RotationError("the ClientRequestToken is not a version of the secret")
    stages = versions[ev.token]
    if CURRENT in stages:
        if ev.step == "finishSecret":
            outcome = _refresh_consumers(ev.secret_id, config, clients)
            return StepResult(ev.step, config.kind, f"already-current; {outcome}")
        logger.info("version is already AWSCURRENT; nothing to do", extra={"step": ev.step})
        return StepResult(ev.step, config.kind, "already-current")
    if PENDING not in stages:
        raise RotationError("the version is not staged AWSPENDING")

    logger.info("rotation step", extra={"step": ev.step, "version": ev.token})
    if ev.step == "createSecret":
        outcome = _create(ev, config, clients)
    elif ev.step == "setSecret":
        outcome = _set(ev, config, clients)
    elif ev.step == "testSecret":
        outcome = _test(ev, config, clients)
    else:
        outcome = _finish(ev, versions, config, clients)
    return StepResult(ev.step, config.kind, outcome)


def _create(ev: RotationEvent, config: RotationConfig, clients: RotationClients) -> str:
    if config.kind is SecretKind.CRON:
        return cron.create(ev.secret_id, ev.token, clients)
    return iam_keys.create_key(ev.secret_id, ev.token, config, clients)


def _set(ev: RotationEvent, config: RotationConfig, clients: RotationClients) -> str:
    if config.kind is SecretKind.CRON:
        return cron.widen(ev.secret_id, ev.token, config, clients)
    return iam_keys.set_key(ev.secret_id, ev.token, clients)


def _test(ev: RotationEvent, config: RotationConfig, clients: RotationClients) -> str:
    if config.kind is SecretKind.CRON:
        return cron.verify(ev.secret_id, ev.token, config, clients)
    iam_keys.verify_key(ev.secret_id, ev.token, config, clients)
    if config.kind is SecretKind.SES:
        text = get_value(clients.secrets, ev.secret_id, stage=PENDING, version_id=ev.token) or ""
        username, password = smtp_credentials(text, config.region)
        _smtp_login(config, clients, username, password)
        return "sts-iam-smtp-ok"
    return "sts-iam-s3-ok"


def _smtp_login(config: RotationConfig, clients: RotationClients, username: str, password: str) -> None:
    if config.smtp is None:
        raise RotationError("ses-smtp rotation needs SMTP_HOST")
    delays = config.propagation.delays()
    for attempt in range(config.propagation.attempts):
        try:
            check_smtp_auth(config.smtp, username, password)
            return
        except SmtpAuthRejected:
            # SES SMTP learns about new IAM keys a little after IAM itself.
            if attempt == config.propagation.attempts - 1:
                raise
            logger.info("SMTP AUTH rejected the new key; retrying")
            clients.sleep(delays[attempt])


def _finish(
    ev: RotationEvent, versions: Mapping[str, list[str]], config: RotationConfig, clients: RotationClients
) -> str:
    current_version = version_with(versions, CURRENT)
    kwargs: dict[str, Any] = {"SecretId": ev.secret_id, "VersionStage": CURRENT, "MoveToVersionId": ev.token}
    if current_version:
        kwargs["RemoveFromVersionId"] = current_version
    clients.secrets.update_secret_version_stage(**kwargs)
    logger.info("moved AWSCURRENT to the new version", extra={"version": ev.token})
    return "finished; " + _refresh_consumers(ev.secret_id, config, clients)


def _refresh_consumers(secret_id: str, config: RotationConfig, clients: RotationClients) -> str:
    if config.kind is SecretKind.CRON:
        return cron.narrow(secret_id, config, clients)
    text = get_value(clients.secrets, secret_id, stage=CURRENT)
    if text is None:
        raise RotationError("the secret has no AWSCURRENT value")
    key = KeySecret.parse(text, "AWSCURRENT value")
    key_id, secret = key.credentials()
    if config.kind is SecretKind.S3:
        if config.db is None:
            raise RotationError("s3-access-key rotation needs DB_CLUSTER_ARN, DB_SECRET_ARN and DB_NAME")
        rows = consumers.update_redcap_s3_keys(clients.need_rds_data(), config.db, key_id, secret, clients.sleep)
        return "redcap-not-installed" if rows is None else "redcap-config-updated"
    if config.service_arn is None:
        raise RotationError("ses-smtp rotation needs COMPUTE_SERVICE_ARN")
    if consumers.is_ecs_service_arn(config.service_arn):
        ref = consumers.EcsServiceRef.from_arn(config.service_arn)
        consumers.redeploy_ecs_service(clients.need_ecs(), ref)
        return "ecs-deployment-started"
    consumers.redeploy_app_runner(clients.need_apprunner(), config.service_arn)
    return "app-runner-deployment-started"


def stage_pending(clients: RotationClients, secret_id: str, token: str, kind: SecretKind) -> None:
    """Stage ``token`` as AWSPENDING the way RotateSecret does, for emulators without rotation.

    Secrets Manager creates an empty AWSPENDING version; the API cannot, so
    this stages a placeholder that createSecret recognises and replaces: the
    user name alone for IAM kinds, a copy of AWSCURRENT for the cron header.
    """
    current = get_value(clients.secrets, secret_id, stage=CURRENT)
    if current is None:
        raise RotationError("the secret has no AWSCURRENT value")
    placeholder = (
        json.dumps({"UserName": KeySecret.parse(current, "AWSCURRENT value").user_name}) if kind.is_iam else current
    )
    clients.secrets.put_secret_value(
        SecretId=secret_id, ClientRequestToken=token, SecretString=placeholder, VersionStages=[PENDING]
    )


def drive(
    secret_id: str,
    config: RotationConfig,
    clients: RotationClients,
    token: str | None = None,
) -> list[StepResult]:
    """Run a whole rotation (stage + four steps) against whatever endpoints boto3 is pointed at.

    For ``make local`` and benchmarks: on AWS, use ``aws secretsmanager
    rotate-secret`` instead, which stages the version and invokes the function.
    The secret must have rotation enabled (in moto: ``rotate_secret`` with
    ``RotationRules`` and ``RotateImmediately=False`` once).
    """
    token = token or str(uuid.uuid4())
    stage_pending(clients, secret_id, token, config.kind)
    event = {"SecretId": secret_id, "ClientRequestToken": token}
    return [handle_step({**event, "Step": step}, config, clients) for step in STEPS]
