"""Custom::DevStackCleanup: thin crhelper handler over redcap_ctl.stack_cleanup (dev stacks only)."""

from __future__ import annotations

from typing import Any

from redcap_ctl.budget import Budget
from redcap_ctl.custom_resource import make_helper
from redcap_ctl.observability import logger

helper = make_helper()

try:
    from redcap_ctl import clients, stack_cleanup
    from redcap_ctl.errors import InputError

    S3 = clients.client("s3")
    IAM = clients.client("iam")
    CLOUDFORMATION = clients.client("cloudformation")
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)


def _physical_id(event: dict[str, Any]) -> str:
    # One cleanup per stack; stable, so an Update never looks like a replacement (whose Delete would empty data).
    return f"dev-stack-cleanup:{event['StackId'].split('/')[1]}"


@helper.create
def on_create(event: dict[str, Any], _context: Any) -> str:
    stack_cleanup.parse_settings(event["ResourceProperties"])
    return _physical_id(event)


@helper.update
def on_update(event: dict[str, Any], _context: Any) -> str:
    stack_cleanup.parse_settings(event["ResourceProperties"])
    return str(event["PhysicalResourceId"])


@helper.delete
def on_delete(event: dict[str, Any], context: Any) -> None:
    if not str(event.get("PhysicalResourceId", "")).startswith("dev-stack-cleanup:"):
        # CloudFormation deletes a resource whose Create failed with crhelper's placeholder id: nothing to undo.
        logger.info("Delete of a resource that was never created: nothing to clean")
        return
    try:
        settings = stack_cleanup.parse_settings(event["ResourceProperties"])
    except InputError as err:
        logger.warning("Delete with invalid properties: nothing cleaned", extra={"error": str(err)})
        return
    going, status = stack_cleanup.stack_is_going(CLOUDFORMATION, event["StackId"])
    if not going:
        # The resource left the template (e.g. dev switched to prod): the data stays.
        logger.warning("Removed from the template while the stack stays: nothing cleaned", extra={"status": status})
        return
    budget = Budget(context.get_remaining_time_in_millis, stack_cleanup.CALL_RESERVE_S)
    removed = stack_cleanup.clean(S3, IAM, settings, budget)
    logger.info("Dev stack cleaned for deletion", extra={"objects": removed.objects, "access_keys": removed.keys})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> None:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    helper(event, context)
