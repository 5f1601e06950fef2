"""Custom::ExpressHostHeader: thin crhelper handler over redcap_ctl.express_domain."""

from __future__ import annotations

from typing import Any

from redcap_ctl.custom_resource import make_helper
from redcap_ctl.observability import logger

helper = make_helper()

try:
    from redcap_ctl import clients, express_domain
    from redcap_ctl.errors import InputError

    elbv2 = clients.client("elbv2")
    acm = clients.client("acm")
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)


def _create(props: express_domain.Props) -> str:
    express_domain.ensure(elbv2, props)
    helper.Data.update(express_domain.data(elbv2, acm, props))
    # The rule is what the names live on: a new rule (a replaced service) is a new resource.
    return props.rule_arn


@helper.create
def on_create(event: dict[str, Any], _context: Any) -> str:
    return _create(express_domain.parse_props(event["ResourceProperties"]))


@helper.update
def on_update(event: dict[str, Any], _context: Any) -> str:
    props = express_domain.parse_props(event["ResourceProperties"])
    if props.rule_arn != event.get("PhysicalResourceId"):
        # Replacement: CloudFormation deletes the old resource (old rule) after this succeeds.
        return _create(props)
    try:
        old_hosts = express_domain.parse_props(event.get("OldResourceProperties", {})).host_names
    except InputError:
        old_hosts = ()
    express_domain.release(elbv2, props.rule_arn, [h for h in old_hosts if h not in props.host_names])
    express_domain.ensure(elbv2, props)
    helper.Data.update(express_domain.data(elbv2, acm, props))
    return props.rule_arn


@helper.delete
def on_delete(event: dict[str, Any], _context: Any) -> None:
    try:
        props = express_domain.parse_props(event["ResourceProperties"])
    except InputError as err:
        # Properties that never parsed never added anything (Create failed on them first).
        logger.warning("Delete with invalid properties: nothing to release", extra={"error": str(err)})
        return
    rule = str(event.get("PhysicalResourceId", ""))
    if not rule.startswith("arn:"):
        # A failed Create answers with crhelper's generated id: it added nothing.
        logger.info("Delete of a resource that never created anything", extra={"physical_id": rule})
        return
    express_domain.release(elbv2, rule, props.host_names)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> None:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    helper(event, context)
