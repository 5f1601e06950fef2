"""Custom::ExpressIdleTimeout: the Express load balancer's idle timeout follows RequestTimeoutSeconds.

An Application Load Balancer closes a connection on which nothing was sent or received for its
idle timeout (attribute ``idle_timeout.timeout_seconds``, 1-4000 s, 60 s by default; ELB API
reference, LoadBalancerAttribute). A REDCap page that computes for longer than that before its
first byte (a large report, export or import) ends with a 504 from the load balancer.
``AWS::ECS::ExpressGatewayService`` has no property for the attributes of the load balancer it
provisions (CloudFormation template reference, AWS::ECS::ExpressGatewayService), and AWS documents
that Express keeps changes made to its resources through their own APIs unless an Express update
asks for them (ECS developer guide, "Updating Resources Outside of Express Mode"). So this sets the
attribute with ``ModifyLoadBalancerAttributes`` on the managed load balancer, after every
CloudFormation update of the service (``ServiceRevision`` follows it) and when any deployment of
the service starts (an EventBridge rule invokes the same function).

The load balancer is shared by every Express service in the VPC: its idle timeout is theirs too.
Ownership is kept in tags on the load balancer: each REDCap service that wants a value tags it
(``redcap-ctl:idle-timeout:<digest of its service ARN>`` = seconds), the highest wanted value is
applied, and the value last applied is tagged (``redcap-ctl:idle-timeout``). A value this module
did not write (set by hand or by another tool) is never lowered, and Delete puts the ALB default
(60 s) back only when the current value is the one this module wrote and no other REDCap service
still wants one. Every call is safe to repeat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.config import parse_from_env
from redcap_ctl.errors import ControlPlaneError, InputError

# No mypy_boto3 stubs for ELBv2 are pinned (requirements/dev.in): the client is Any here.
ElbClient = Any

logger = Logger(child=True)

ATTRIBUTE = "idle_timeout.timeout_seconds"
# ELB API reference, LoadBalancerAttribute: "The valid range is 1-4000 seconds. The default is 60 seconds."
ALB_DEFAULT = 60
ALB_MAX = 4000
# The stack's parameter admits 60-3600 (PHP's max_execution_time follows the same value).
MIN_SECONDS = 60
MAX_SECONDS = 3600
OWNER_PREFIX = "redcap-ctl:idle-timeout:"
APPLIED_TAG = "redcap-ctl:idle-timeout"
_GONE = ("LoadBalancerNotFound", "LoadBalancerNotFoundException")


@dataclass(frozen=True)
class Props:
    load_balancer_arn: str
    service_arn: str
    seconds: int


def parse_props(props: Mapping[str, Any]) -> Props:
    lb = str(props.get("LoadBalancerArn", "")).strip()
    if not lb.startswith("arn:") or ":elasticloadbalancing:" not in lb or ":loadbalancer/app/" not in lb:
        raise InputError("LoadBalancerArn", "must be an Application Load Balancer ARN")
    service = str(props.get("ServiceArn", "")).strip()
    if not service.startswith("arn:") or ":ecs:" not in service or ":service/" not in service:
        raise InputError("ServiceArn", "must be an ECS service ARN")
    raw = str(props.get("IdleTimeoutSeconds", "")).strip()
    if not raw.isdigit() or not MIN_SECONDS <= int(raw) <= MAX_SECONDS:
        raise InputError("IdleTimeoutSeconds", f"must be a whole number of seconds from {MIN_SECONDS} to {MAX_SECONDS}")
    return Props(load_balancer_arn=lb, service_arn=service, seconds=int(raw))


def owner_tag(service_arn: str) -> str:
    return OWNER_PREFIX + hashlib.sha256(service_arn.encode()).hexdigest()[:20]


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _tags(elbv2: ElbClient, lb_arn: str) -> dict[str, str] | None:
    """The load balancer's tags; None when it is gone."""
    try:
        described = elbv2.describe_tags(ResourceArns=[lb_arn])["TagDescriptions"]
    except ClientError as err:
        if _code(err) in _GONE:
            return None
        raise ControlPlaneError(f"DescribeTags failed: {_code(err)}") from None
    tags = described[0].get("Tags", []) if described else []
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags}


def current_seconds(elbv2: ElbClient, lb_arn: str) -> int | None:
    """The load balancer's idle timeout now; None when it is gone."""
    try:
        attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)["Attributes"]
    except ClientError as err:
        if _code(err) in _GONE:
            return None
        raise ControlPlaneError(f"DescribeLoadBalancerAttributes failed: {_code(err)}") from None
    for attribute in attributes:
        if attribute.get("Key") == ATTRIBUTE:
            return int(attribute["Value"])
    return ALB_DEFAULT


def _wanted(tags: Mapping[str, str]) -> list[int]:
    return [int(v) for k, v in tags.items() if k.startswith(OWNER_PREFIX) and v.isdigit()]


def _applied(tags: Mapping[str, str]) -> int | None:
    value = tags.get(APPLIED_TAG, "")
    return int(value) if value.isdigit() else None


def _set(elbv2: ElbClient, lb_arn: str, seconds: int) -> None:
    # Tag first: a crash between the calls leaves a tag naming a value not yet applied, which the
    # next call corrects; never an applied value without the tag that makes it ours.
    elbv2.add_tags(ResourceArns=[lb_arn], Tags=[{"Key": APPLIED_TAG, "Value": str(seconds)}])
    try:
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=lb_arn, Attributes=[{"Key": ATTRIBUTE, "Value": str(seconds)}]
        )
    except ClientError as err:
        raise ControlPlaneError(f"ModifyLoadBalancerAttributes failed: {_code(err)}") from None


def apply(elbv2: ElbClient, props: Props) -> int:
    """Record this service's wish and give the load balancer the highest one; returns the value it has."""
    if _tags(elbv2, props.load_balancer_arn) is None:
        raise ControlPlaneError("the Express load balancer does not exist (was the service replaced or deleted?)")
    elbv2.add_tags(
        ResourceArns=[props.load_balancer_arn],
        Tags=[{"Key": owner_tag(props.service_arn), "Value": str(props.seconds)}],
    )
    tags = _tags(elbv2, props.load_balancer_arn) or {}
    wanted = max([*_wanted(tags), props.seconds])
    now = current_seconds(elbv2, props.load_balancer_arn)
    if now is None:
        raise ControlPlaneError("the Express load balancer does not exist (was the service replaced or deleted?)")
    applied = _applied(tags)
    if now == wanted:
        if applied != wanted:
            elbv2.add_tags(ResourceArns=[props.load_balancer_arn], Tags=[{"Key": APPLIED_TAG, "Value": str(now)}])
        logger.info("Idle timeout already as wanted", extra={"seconds": now})
        return now
    if now > wanted and applied != now:
        # Someone else (by hand, another tool or service) set a longer timeout: it covers REDCap's
        # requests too, and lowering it could cut theirs.
        logger.warning(
            "Idle timeout is longer than REDCap asks and was not set by this stack: left as it is",
            extra={"seconds": now, "wanted": wanted},
        )
        return now
    _set(elbv2, props.load_balancer_arn, wanted)
    logger.info("Idle timeout set", extra={"seconds": wanted, "before": now})
    return wanted


def release(elbv2: ElbClient, props: Props) -> int | None:
    """Withdraw this service's wish; put back what the others want, or the ALB default when none do.

    Returns the value the load balancer has afterwards, None when it is gone.
    """
    tags = _tags(elbv2, props.load_balancer_arn)
    if tags is None:
        logger.info("The load balancer is gone: nothing to put back")
        return None
    mine = owner_tag(props.service_arn)
    if mine in tags:
        try:
            elbv2.remove_tags(ResourceArns=[props.load_balancer_arn], TagKeys=[mine])
        except ClientError as err:
            if _code(err) in _GONE:
                return None
            raise ControlPlaneError(f"RemoveTags failed: {_code(err)}") from None
        del tags[mine]
    now = current_seconds(elbv2, props.load_balancer_arn)
    if now is None:
        return None
    applied = _applied(tags)
    if applied != now:
        # Not the value this module wrote (changed by hand since, or never ours): leave it.
        logger.info("Idle timeout was not set by this stack: left as it is", extra={"seconds": now})
        return now
    others = _wanted(tags)
    if others:
        target = max(others)
        if target != now:
            _set(elbv2, props.load_balancer_arn, target)
        logger.info("Idle timeout kept for the other REDCap services on this load balancer", extra={"seconds": target})
        return target
    try:
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=props.load_balancer_arn, Attributes=[{"Key": ATTRIBUTE, "Value": str(ALB_DEFAULT)}]
        )
        elbv2.remove_tags(ResourceArns=[props.load_balancer_arn], TagKeys=[APPLIED_TAG])
    except ClientError as err:
        if _code(err) in _GONE:
            return None
        raise ControlPlaneError(f"putting the ALB default back failed: {_code(err)}") from None
    logger.info("ALB default idle timeout put back", extra={"seconds": ALB_DEFAULT})
    return ALB_DEFAULT


# The function's environment carries the same values for deployments that start outside CloudFormation.
ENV_FIELDS = {
    "LoadBalancerArn": "EXPRESS_LOAD_BALANCER_ARN",
    "ServiceArn": "EXPRESS_SERVICE_ARN",
    "IdleTimeoutSeconds": "REQUEST_TIMEOUT_SECONDS",
}


def props_from_env(environ: Mapping[str, str]) -> Props:
    return parse_from_env(environ, ENV_FIELDS, parse_props)
