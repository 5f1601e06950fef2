"""Custom::ServiceLogGroups: thin crhelper handler over redcap_ctl.log_groups."""

from __future__ import annotations

from typing import Any

from redcap_ctl.budget import Budget
from redcap_ctl.custom_resource import make_helper
from redcap_ctl.observability import logger

helper = make_helper()

try:
    from redcap_ctl import clients, log_groups

    LOGS = clients.client("logs")
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)


def _claim(event: dict[str, Any], context: Any) -> None:
    settings = log_groups.parse_settings(event["ResourceProperties"])
    budget = Budget(context.get_remaining_time_in_millis, log_groups.CALL_RESERVE_S)
    existed = log_groups.claim(LOGS, settings, budget)
    helper.Data.update({"Claimed": len(settings.names), "AlreadyExisted": len(existed)})


@helper.create
def on_create(event: dict[str, Any], context: Any) -> str:
    _claim(event, context)
    return f"service-log-groups:{event['StackId'].split('/')[1]}:{event['LogicalResourceId']}"


@helper.update
def on_update(event: dict[str, Any], context: Any) -> str:
    # Same id: groups a changed service no longer uses keep their retention and expire on their own.
    _claim(event, context)
    return str(event["PhysicalResourceId"])


@helper.delete
def on_delete(_event: dict[str, Any], _context: Any) -> None:
    # The groups stay: the services may still write while the stack is deleted, and retention expires them.
    logger.info("Service log groups left in place; their retention expires them")


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> None:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    helper(event, context)
