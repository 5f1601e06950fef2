"""Custom::ExpressCanaryAlarm and ECS deployment starts: thin handler over redcap_ctl.express_canary.

CloudFormation sets REDCap's rule at create and after every update of the Express service; an
EventBridge rule invokes the same function when any deployment of the service starts, so a rule
that an Express update put back is replaced before the canary's first datapoint.
"""

from __future__ import annotations

import os
from typing import Any

from redcap_ctl.custom_resource import delete_props, make_helper
from redcap_ctl.observability import logger

helper = make_helper()

try:
    from redcap_ctl import clients, express_canary, express_events

    ecs = clients.client("ecs")
    cloudwatch = clients.client("cloudwatch")
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)


def _apply(props: express_canary.Props) -> str:
    names = express_canary.apply(ecs, cloudwatch, props.cluster, props.service_arn, props.rule, props.managed_alarms)
    helper.Data.update({"AlarmNames": ",".join(names), "Rule": props.rule.describe()})
    # The service is what the rule lives on: a replaced service is a new resource.
    return props.service_arn


@helper.create
@helper.update
def on_create_or_update(event: dict[str, Any], _context: Any) -> str:
    return _apply(express_canary.parse_props(event["ResourceProperties"]))


@helper.delete
def on_delete(event: dict[str, Any], _context: Any) -> None:
    props = delete_props(event, express_canary.parse_props)
    if props is None:
        return
    # The service the rule was set on (the physical id), which a replaced service no longer is.
    service = str(event["PhysicalResourceId"])
    restored = express_canary.restore(ecs, cloudwatch, props.cluster, service, props.managed_alarms)
    logger.info("Express's rule put back", extra={"alarms": restored})


def on_deployment(event: dict[str, Any]) -> dict[str, Any]:
    props = express_canary.props_from_env(os.environ)
    if not express_events.is_deployment_start(event, props.service_arn):
        # The rule's pattern admits only these events; anything else is a misrouted invocation.
        logger.warning("Ignored an event that is not a deployment start of this service")
        return {"alarms": []}
    # Errors propagate: Lambda retries the asynchronous invocation and the errors alarm fires.
    names = express_canary.apply(ecs, cloudwatch, props.cluster, props.service_arn, props.rule, props.managed_alarms)
    return {"alarms": names}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    if "RequestType" not in event:
        logger.append_keys(deployment_id=event.get("detail", {}).get("deploymentId"))
        return on_deployment(event)
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    helper(event, context)
    return None
