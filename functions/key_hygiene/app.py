"""Daily key hygiene for the rotated secrets (EventBridge Scheduler, once a day).

Retires previous IAM keys after their grace periods and publishes
``SecretAgeDays`` and ``PreviousKeyInUse`` per ``SecretKind`` for the alarms.
Failures raise, so Lambda's Errors metric and its alarm see them.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from redcap_ctl import clients
from redcap_ctl.observability import logger
from redcap_ctl.rotation.hygiene import HygieneConfig, run

CONFIG = HygieneConfig.from_env()
SECRETS = clients.client("secretsmanager")
IAM = clients.client("iam") if any(kind.is_iam for kind, _ in CONFIG.secrets) else None


def _publish(name: str, value: float, kind: str) -> None:
    # One EMF record per kind: each needs its own SecretKind dimension value.
    with single_metric(name=name, unit=MetricUnit.Count, value=value) as metric:
        metric.add_dimension(name="service", value=os.environ["POWERTOOLS_SERVICE_NAME"])
        metric.add_dimension(name="SecretKind", value=kind)


@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    reports = run(CONFIG, SECRETS, IAM, datetime.now(UTC))
    for report in reports:
        _publish("SecretAgeDays", round(report.secret_age_days, 2), report.kind.value)
        if report.kind.is_iam:
            _publish("PreviousKeyInUse", 1 if report.previous_key_in_use else 0, report.kind.value)
    result = {"Secrets": [r.as_dict() for r in reports]}
    logger.info("key hygiene done", extra=result)
    return result
