"""Secrets Manager rotation function for REDCap's S3 key, SES SMTP key and cron header.

One code base, deployed once per secret kind (``SECRET_KIND``) so each copy
holds only the permissions its kind needs. Event logging stays off on purpose:
nothing secret is in the event, but nothing here should ever log payloads.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from redcap_ctl import clients
from redcap_ctl.observability import logger, metrics
from redcap_ctl.rotation import RotationClients, RotationConfig, SecretKind, handle_step
from redcap_ctl.rotation.consumers import is_ecs_service_arn

CONFIG = RotationConfig.from_env()
# The SES kind redeploys REDCap: App Runner or ECS, whichever COMPUTE_SERVICE_ARN names (one client only).
_ECS = CONFIG.kind is SecretKind.SES and is_ecs_service_arn(CONFIG.service_arn or "")
CLIENTS = RotationClients(
    secrets=clients.client("secretsmanager"),
    iam=clients.client("iam") if CONFIG.kind.is_iam else None,
    rds_data=clients.client("rds-data") if CONFIG.kind is SecretKind.S3 else None,
    apprunner=clients.client("apprunner") if CONFIG.kind is SecretKind.SES and not _ECS else None,
    ecs=clients.client("ecs") if _ECS else None,
    wafv2=clients.client("wafv2") if CONFIG.kind is SecretKind.CRON else None,
)


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, str]:
    metrics.add_dimension(name="SecretKind", value=CONFIG.kind.value)
    try:
        result = handle_step(event, CONFIG, CLIENTS)
    except Exception:
        # Secrets Manager sees the raised error and keeps AWSCURRENT; the metric feeds the alarm.
        metrics.add_metric(name="RotationFailed", unit=MetricUnit.Count, value=1)
        logger.exception("rotation step failed", extra={"step": str(event.get("Step", ""))})
        raise
    if result.step == "finishSecret":
        metrics.add_metric(name="RotationSucceeded", unit=MetricUnit.Count, value=1)
    logger.info("rotation step done", extra=result.as_dict())
    return result.as_dict()
