"""Custom::GuardDutyProtection: thin crhelper handler over redcap_ctl.guardduty."""

from __future__ import annotations

from typing import Any

from redcap_ctl.budget import Budget
from redcap_ctl.custom_resource import make_helper
from redcap_ctl.observability import logger

helper = make_helper()

try:
    from redcap_ctl import clients, guardduty
    from redcap_ctl.errors import InputError

    GUARDDUTY = clients.client("guardduty")
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)


def _budget(context: Any) -> Budget:
    return Budget(context.get_remaining_time_in_millis, guardduty.CALL_RESERVE_S)


def _physical_id(outcome: guardduty.Outcome, settings: guardduty.Settings) -> str:
    # Stable for the life of the resource: Update returns the id it was given, so CloudFormation
    # never sees a replacement and never sends a Delete that would undo the update.
    return f"guardduty:{outcome.detector_id}:{settings.owner}"


@helper.create
def on_create(event: dict[str, Any], context: Any) -> str:
    settings = guardduty.parse_settings(event["ResourceProperties"], event["StackId"])
    outcome = guardduty.ensure(GUARDDUTY, settings, event["ServiceToken"], budget=_budget(context))
    helper.Data.update(outcome.data())
    return _physical_id(outcome, settings)


@helper.update
def on_update(event: dict[str, Any], context: Any) -> str:
    settings = guardduty.parse_settings(event["ResourceProperties"], event["StackId"])
    try:
        previous: str | None = guardduty.parse_settings(event.get("OldResourceProperties", {}), event["StackId"]).owner
    except InputError:
        previous = None
    outcome = guardduty.ensure(
        GUARDDUTY, settings, event["ServiceToken"], budget=_budget(context), previous_owner=previous
    )
    helper.Data.update(outcome.data())
    return str(event["PhysicalResourceId"])


@helper.delete
def on_delete(event: dict[str, Any], context: Any) -> None:
    try:
        settings = guardduty.parse_settings(event["ResourceProperties"], event["StackId"])
    except InputError as err:
        # A resource whose properties never parsed never changed anything (its Create failed first).
        logger.warning(
            "Delete with invalid properties: nothing was changed by this resource", extra={"error": str(err)}
        )
        return
    done = guardduty.release(
        GUARDDUTY, settings.owner, settings.revert_on_delete, event["ServiceToken"], budget=_budget(context)
    )
    logger.info("GuardDuty protection released", extra={"result": done, "owner": settings.owner})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> None:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    helper(event, context)
