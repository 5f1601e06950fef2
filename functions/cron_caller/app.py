"""Cron caller: GET REDCap's cron.php with the secret header, once per schedule tick.

Invoked asynchronously by EventBridge Scheduler with no retries (a missed tick is
replaced by the next one); failures raise so Lambda's Errors metric and the alarm
see them. The logic lives in ``redcap_ctl.cron``.
"""

from __future__ import annotations

import functools
from typing import Any

import urllib3
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.typing import LambdaContext

from redcap_ctl import clients, cron
from redcap_ctl.errors import InputError
from redcap_ctl.observability import logger, metrics

# Built once per container: the provider's cache is what makes the secret
# cheap to read every minute, and the pool keeps the TLS session warm.
SECRETS = SecretsProvider(boto3_client=clients.client("secretsmanager"))
HTTP = urllib3.PoolManager(num_pools=1, maxsize=1)


@functools.cache
def config() -> cron.CronConfig:
    # Parsed on first use rather than at import, so a bad variable is reported
    # through the structured logger with the field name.
    return cron.CronConfig.from_env()


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Only the schedule's own fields are logged, never the whole event.
    logger.append_keys(scheduled_time=str(event.get("scheduledTime", "")) or None)
    try:
        settings = config()
    except InputError as err:
        # The field and the problem only: InputError never carries the value itself.
        logger.error("cron caller misconfigured", extra={"field": err.field, "problem": err.problem})
        raise
    result = cron.call_cron(
        settings,
        SECRETS,
        HTTP,
        remaining_seconds=lambda: context.get_remaining_time_in_millis() / 1000,
    )
    return {
        "outcome": result.outcome.value,
        "status": result.status,
        "latency_ms": result.latency_ms,
        "attempts": result.attempts,
    }
