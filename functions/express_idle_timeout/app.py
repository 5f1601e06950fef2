"""Custom::ExpressIdleTimeout and ECS deployment starts: thin handler over redcap_ctl.express_idle_timeout.

CloudFormation sets the Express load balancer's idle timeout at create and after every update of
the Express service; an EventBridge rule invokes the same function when any deployment of the
service starts, so a value an Express update put back is replaced again.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from redcap_ctl.custom_resource import delete_props, make_helper
from redcap_ctl.observability import logger

helper = make_helper()

try:
    from redcap_ctl import clients, express_events, express_idle_timeout

    elbv2 = clients.client("elbv2")
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)


def physical_id(props: express_idle_timeout.Props) -> str:
    """The load balancer and the service: another of either is a new resource (the old one is released)."""
    return f"{props.load_balancer_arn}#{hashlib.sha256(props.service_arn.encode()).hexdigest()[:12]}"


@helper.create
@helper.update
def on_create_or_update(event: dict[str, Any], _context: Any) -> str:
    props = express_idle_timeout.parse_props(event["ResourceProperties"])
    seconds = express_idle_timeout.apply(elbv2, props)
    helper.Data.update({"IdleTimeoutSeconds": str(seconds)})
    return physical_id(props)


@helper.delete
def on_delete(event: dict[str, Any], _context: Any) -> None:
    props = delete_props(event, express_idle_timeout.parse_props)
    if props is None:
        return
    after = express_idle_timeout.release(elbv2, props)
    logger.info("Idle timeout released", extra={"seconds": after})


def on_deployment(event: dict[str, Any]) -> dict[str, Any]:
    props = express_idle_timeout.props_from_env(os.environ)
    if not express_events.is_deployment_start(event, props.service_arn):
        # The rule's pattern admits only these events; anything else is a misrouted invocation.
        logger.warning("Ignored an event that is not a deployment start of this service")
        return {"seconds": None}
    # Errors propagate: Lambda retries the asynchronous invocation and the errors alarm fires.
    return {"seconds": express_idle_timeout.apply(elbv2, props)}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    if "RequestType" not in event:
        logger.append_keys(deployment_id=event.get("detail", {}).get("deploymentId"))
        return on_deployment(event)
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    helper(event, context)
    return None
