"""Custom::AppRunnerCustomDomain: thin crhelper handler over redcap_ctl.custom_domain."""

from __future__ import annotations

from typing import Any

from redcap_ctl.budget import Budget
from redcap_ctl.custom_resource import make_helper, response_tls
from redcap_ctl.observability import logger

helper = make_helper()

try:
    from redcap_ctl import clients, custom_domain
    from redcap_ctl.errors import InputError

    # Parsed once per container; a bad value fails every request with a clear reason.
    POLL = custom_domain.PollPolicy.from_env()
    apprunner = clients.client("apprunner")
    route53 = clients.client("route53")
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)


def _budget(context: Any) -> Budget:
    return Budget(context.get_remaining_time_in_millis, POLL.margin)


@helper.create
def on_create(event: dict[str, Any], context: Any) -> str:
    props = custom_domain.parse_props(event["ResourceProperties"])
    result = custom_domain.create(apprunner, route53, props, _budget(context), POLL, prepare=response_tls)
    helper.Data.update(result.data)
    return result.physical_id


@helper.update
def on_update(event: dict[str, Any], context: Any) -> str:
    new = custom_domain.parse_props(event["ResourceProperties"])
    try:
        old: custom_domain.Props | None = custom_domain.parse_props(event.get("OldResourceProperties", {}))
    except InputError:
        # Old properties that no longer parse cannot name anything we created.
        old = None
    result = custom_domain.update(
        apprunner, route53, new, old, event.get("PhysicalResourceId", ""), _budget(context), POLL, response_tls
    )
    helper.Data.update(result.data)
    return result.physical_id


@helper.delete
def on_delete(event: dict[str, Any], context: Any) -> None:
    custom_domain.delete(
        apprunner, route53, event.get("PhysicalResourceId", ""), event["ResourceProperties"], _budget(context), POLL
    )


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> None:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    helper(event, context)
