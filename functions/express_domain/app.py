"""Custom::ExpressHostHeader and its activation events: thin handler over redcap_ctl.express_domain.

Two kinds of event reach this function:
- CloudFormation's Create/Update/Delete (crhelper answers it);
- ``{"Activate": {...}}``, the constant input of the EventBridge rules on ACM's "ACM Certificate
  Available" event and on the reconcile schedule: once the certificate is issued, it goes on the
  Express listener and the host names on its rule.
"""

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
    route53 = clients.client("route53")
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)


def _create(props: express_domain.Props, stack_id: str) -> str:
    # Never waits for ACM: the stack completes with the certificate PENDING_VALIDATION (a zone the
    # stack created cannot validate before it is delegated), and the activation events finish the job.
    arn = express_domain.ensure_certificate(elbv2, acm, props, stack_id)
    express_domain.write_records(elbv2, route53, props, express_domain.validation_records(acm, arn))
    express_domain.activate(elbv2, acm, props, arn)
    helper.Data.update(express_domain.data(elbv2, acm, props, arn))
    # The rule is what the names live on: a new rule (a replaced service) is a new resource.
    return props.rule_arn


@helper.create
def on_create(event: dict[str, Any], _context: Any) -> str:
    return _create(express_domain.parse_props(event["ResourceProperties"]), str(event["StackId"]))


@helper.update
def on_update(event: dict[str, Any], _context: Any) -> str:
    props = express_domain.parse_props(event["ResourceProperties"])
    if props.rule_arn != event.get("PhysicalResourceId"):
        # Replacement: CloudFormation deletes the old resource (old rule) after this succeeds.
        return _create(props, str(event["StackId"]))
    try:
        old_hosts = express_domain.parse_props(event.get("OldResourceProperties", {})).host_names
    except InputError:
        old_hosts = ()
    express_domain.release(elbv2, props.rule_arn, [h for h in old_hosts if h not in props.host_names])
    return _create(props, str(event["StackId"]))


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
    express_domain.remove(elbv2, acm, route53, props, rule)


def _activate(event: dict[str, Any]) -> dict[str, str]:
    payload = event["Activate"]
    props = express_domain.parse_props(payload)
    status = express_domain.reconcile(elbv2, acm, route53, props, str(payload.get("StackId", "")))
    logger.info("custom domain reconciled", extra={"status": status, "trigger": event.get("Trigger", "")})
    return {"CertificateStatus": status}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> Any:
    if "Activate" in event:
        # Not CloudFormation: an error propagates, so Lambda retries and the errors alarm fires.
        return _activate(event)
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    helper(event, context)
    return None
