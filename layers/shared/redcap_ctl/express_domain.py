"""Custom::ExpressHostHeader: the custom domain's host names on the ECS Express listener rule.

ECS Express routes by host header: its managed listener rule admits only the service's own
endpoint. This resource adds ``DomainName`` (and ``www.`` when asked) to that rule's host-header
condition and keeps them there: CloudFormation sends an Update whenever the Express service
changes (the ``ServiceRevision`` property follows the task definition), and Update puts back any
name an Express update or a person removed.

Ownership: every name this resource adds is recorded as a tag on the rule
(``redcap-ctl:host:<digest>`` = name). Delete (and Update, for names no longer wanted) removes
exactly the tagged names, so a name that was on the rule before, or added by hand, is never
removed. A rule that is gone counts as released. Every call is safe to repeat.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.errors import ControlPlaneError, InputError

# No mypy_boto3 stubs for ELBv2 and ACM are pinned (requirements/dev.in): the clients are Any here.
ElbClient = Any
AcmClient = Any

logger = Logger(child=True)

TAG_PREFIX = "redcap-ctl:host:"
# An ALB rule takes at most five condition values across its conditions.
MAX_HOSTS = 5
_GONE = ("RuleNotFound", "RuleNotFoundException", "LoadBalancerNotFound")


@dataclass(frozen=True)
class Props:
    rule_arn: str
    load_balancer_arn: str
    host_names: tuple[str, ...]
    certificate_arn: str | None = None


def _arn(props: Mapping[str, Any], field: str, kind: str) -> str:
    value = str(props.get(field, "")).strip()
    if not value.startswith("arn:") or ":elasticloadbalancing:" not in value or f":{kind}/" not in value:
        raise InputError(field, f"must be an Elastic Load Balancing {kind} ARN")
    return value


def parse_props(props: Mapping[str, Any]) -> Props:
    raw = props.get("HostNames")
    if not isinstance(raw, list) or not raw or not all(isinstance(h, str) and h.strip() for h in raw):
        raise InputError("HostNames", "must be a non-empty list of host names")
    hosts = tuple(dict.fromkeys(h.strip().lower().rstrip(".") for h in raw))
    cert = str(props.get("CertificateArn", "")).strip() or None
    if cert is not None and ":acm:" not in cert:
        raise InputError("CertificateArn", "must be an ACM certificate ARN")
    return Props(
        rule_arn=_arn(props, "ListenerRuleArn", "listener-rule"),
        load_balancer_arn=_arn(props, "LoadBalancerArn", "loadbalancer"),
        host_names=hosts,
        certificate_arn=cert,
    )


def tag_key(host: str) -> str:
    return TAG_PREFIX + hashlib.sha256(host.encode()).hexdigest()[:20]


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _rule(elbv2: ElbClient, rule_arn: str) -> dict[str, Any] | None:
    try:
        rules = elbv2.describe_rules(RuleArns=[rule_arn])["Rules"]
    except ClientError as err:
        if _code(err) in _GONE:
            return None
        raise ControlPlaneError(f"DescribeRules failed: {_code(err)}") from None
    return dict(rules[0]) if rules else None


def _hosts(rule: Mapping[str, Any]) -> list[str]:
    for condition in rule.get("Conditions", []):
        if condition.get("Field") == "host-header":
            values = condition.get("HostHeaderConfig", {}).get("Values") or condition.get("Values") or []
            return [str(v) for v in values]
    return []


def _with_hosts(rule: Mapping[str, Any], hosts: Sequence[str]) -> list[dict[str, Any]]:
    """The rule's conditions with the host-header values replaced (ModifyRule replaces them all)."""
    out: list[dict[str, Any]] = []
    for condition in rule.get("Conditions", []):
        if condition.get("Field") == "host-header":
            out.append({"Field": "host-header", "HostHeaderConfig": {"Values": list(hosts)}})
        elif any(k.endswith("Config") for k in condition):
            # Values and the *Config form describe the same thing; send the *Config form only.
            out.append({k: v for k, v in condition.items() if k != "Values"})
        else:
            out.append(dict(condition))
    return out


def _owned(elbv2: ElbClient, rule_arn: str) -> dict[str, str]:
    """Host names this resource added to the rule (from its tags): tag key -> name."""
    try:
        described = elbv2.describe_tags(ResourceArns=[rule_arn])["TagDescriptions"]
    except ClientError as err:
        if _code(err) in _GONE:
            return {}
        raise ControlPlaneError(f"DescribeTags failed: {_code(err)}") from None
    tags = described[0].get("Tags", []) if described else []
    return {t["Key"]: t["Value"] for t in tags if t.get("Key", "").startswith(TAG_PREFIX)}


def ensure(elbv2: ElbClient, props: Props) -> list[str]:
    """Put every host name on the rule; returns the names this call added."""
    rule = _rule(elbv2, props.rule_arn)
    if rule is None:
        raise ControlPlaneError("the Express listener rule does not exist (was the service replaced or deleted?)")
    if rule.get("IsDefault"):
        raise ControlPlaneError("ListenerRuleArn names the listener's default rule, which has no host condition")
    current = _hosts(rule)
    if not current:
        raise ControlPlaneError("the Express listener rule has no host-header condition to extend")
    missing = [h for h in props.host_names if h not in current]
    if len(current) + len(missing) > MAX_HOSTS:
        raise ControlPlaneError(f"the rule would have more than {MAX_HOSTS} host names; remove some by hand first")
    if missing:
        # Tag first: a crash between the two calls then leaves a tag for a name not on the rule,
        # which Delete tolerates, never an added name without its ownership tag.
        elbv2.add_tags(ResourceArns=[props.rule_arn], Tags=[{"Key": tag_key(h), "Value": h} for h in missing])
        try:
            elbv2.modify_rule(RuleArn=props.rule_arn, Conditions=_with_hosts(rule, current + missing))
        except ClientError as err:
            raise ControlPlaneError(f"ModifyRule failed: {_code(err)}") from None
    logger.info("host names on the Express rule", extra={"added": missing, "present": props.host_names})
    return missing


def release(elbv2: ElbClient, rule_arn: str, hosts: Sequence[str]) -> list[str]:
    """Remove those of ``hosts`` this resource added (and their tags); returns the names removed."""
    owned = _owned(elbv2, rule_arn)
    ours = [h for h in dict.fromkeys(hosts) if owned.get(tag_key(h)) == h]
    if not ours:
        return []
    rule = _rule(elbv2, rule_arn)
    if rule is None:
        return []
    current = _hosts(rule)
    keep = [h for h in current if h not in ours]
    removed = [h for h in current if h in ours]
    if removed:
        if not keep:
            raise ControlPlaneError("removing the custom host names would leave the rule without a host")
        try:
            elbv2.modify_rule(RuleArn=rule_arn, Conditions=_with_hosts(rule, keep))
        except ClientError as err:
            if _code(err) in _GONE:
                return []
            raise ControlPlaneError(f"ModifyRule failed: {_code(err)}") from None
    try:
        elbv2.remove_tags(ResourceArns=[rule_arn], TagKeys=[tag_key(h) for h in ours])
    except ClientError as err:
        if _code(err) not in _GONE:
            raise ControlPlaneError(f"RemoveTags failed: {_code(err)}") from None
    logger.info("host names released from the Express rule", extra={"removed": removed})
    return removed


def data(elbv2: ElbClient, acm: AcmClient, props: Props) -> dict[str, str]:
    """What the template reads back: the ALB's alias target and the certificate's validation records."""
    try:
        lb = elbv2.describe_load_balancers(LoadBalancerArns=[props.load_balancer_arn])["LoadBalancers"][0]
    except ClientError as err:
        raise ControlPlaneError(f"DescribeLoadBalancers failed: {_code(err)}") from None
    records: list[dict[str, str]] = []
    status = ""
    if props.certificate_arn:
        try:
            cert = acm.describe_certificate(CertificateArn=props.certificate_arn)["Certificate"]
        except ClientError as err:
            raise ControlPlaneError(f"DescribeCertificate failed: {_code(err)}") from None
        status = str(cert.get("Status", ""))
        for option in cert.get("DomainValidationOptions", []):
            record = option.get("ResourceRecord")
            if record:
                entry = {"Name": record["Name"], "Type": record["Type"], "Value": record["Value"]}
                if entry not in records:
                    records.append(entry)
    return {
        "DNSName": str(lb["DNSName"]),
        "CanonicalHostedZoneId": str(lb["CanonicalHostedZoneId"]),
        "ValidationRecords": json.dumps(records, sort_keys=True),
        "CertificateStatus": status,
    }
