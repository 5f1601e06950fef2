"""Custom::ExpressHostHeader: the custom domain on the ECS Express load balancer, without a wait.

ECS Express routes by host header: its managed listener rule admits only the service's own
endpoint. This resource gives ``DomainName`` (and ``www.`` when asked) an HTTPS entry there:

1. **The certificate.** It requests an ACM certificate (DNS validation) itself instead of an
   ``AWS::CertificateManager::Certificate``, which CloudFormation holds in CREATE_IN_PROGRESS until
   ACM issues it. With ``DnsMode=CreateZone`` ACM can issue only after the administrator delegates
   the new zone, which needs the ``NameServers`` output, which exists only after the stack is
   done: the old design could never finish. This resource answers at once.
2. **The validation records.** With a managed zone (``HostedZoneId``) it writes ACM's validation
   CNAMEs into it; each record it creates is recorded as a tag on the rule
   (``redcap-ctl:dns:<digest>`` = name), so Delete removes exactly those and leaves a record that
   was already there (another certificate for the same name in this account uses the same CNAME).
3. **Activation** (``activate``): once ACM reports the certificate ISSUED, it adds the
   certificate to the Express HTTPS listener and the host names to the listener rule. It runs at
   Create/Update, on ACM's "ACM Certificate Available" event, and on a schedule as a backstop
   (EventBridge delivers ACM's events on a best-effort basis). A certificate that timed out
   (ACM gives DNS validation 72 hours) is requested again by the schedule.
4. **Host names.** Every name this resource adds to the rule is recorded as a tag on the rule
   (``redcap-ctl:host:<digest>`` = name). Release removes exactly the tagged names, so a name that
   was on the rule before, or added by hand, is never removed. A rule that is gone counts as
   released.

The certificate in use is recorded on the rule too (``redcap-ctl:certificate`` = ARN) and the
certificate carries ``redcap-ctl:stack`` = the stack id (the IAM policy's scope). Delete removes
the host names, detaches and deletes the certificate and deletes the records it wrote, so the
zone can be deleted after it (Route 53 refuses to delete a zone with records other than its NS
and SOA: HostedZoneNotEmpty). Every call is safe to repeat.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.errors import ControlPlaneError, InputError

# No mypy_boto3 stubs for ELBv2 and ACM are pinned (requirements/dev.in): the clients are Any here.
ElbClient = Any
AcmClient = Any
Route53Client = Any

logger = Logger(child=True)

TAG_PREFIX = "redcap-ctl:host:"
RECORD_TAG_PREFIX = "redcap-ctl:dns:"
CERTIFICATE_TAG = "redcap-ctl:certificate"
# On the certificate: the stack that owns it (the IAM policy allows Describe/Delete only with it).
STACK_TAG = "redcap-ctl:stack"
# Statuses after which ACM will never issue this certificate: a new request is needed.
DEAD = ("VALIDATION_TIMED_OUT", "FAILED", "REVOKED", "EXPIRED", "INACTIVE")
# An ALB rule takes at most five condition values across its conditions.
MAX_HOSTS = 5
_GONE = ("RuleNotFound", "RuleNotFoundException", "LoadBalancerNotFound")


@dataclass(frozen=True)
class Props:
    rule_arn: str
    load_balancer_arn: str
    listener_arn: str
    host_names: tuple[str, ...]
    # The Route 53 zone to write the validation records into; None with DnsMode=External.
    hosted_zone_id: str | None = None
    # True when the stack created that zone (DnsMode=CreateZone): Delete then also sweeps every ACM
    # validation CNAME under the domain, the zone's deletion comes next.
    zone_created_by_stack: bool = False


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
    zone = str(props.get("HostedZoneId", "")).strip().rsplit("/", 1)[-1] or None
    if zone is not None and not (zone.isalnum() and zone.isupper() and len(zone) <= 32):
        raise InputError("HostedZoneId", "must be a Route 53 hosted zone id (such as Z0123456789ABC) or empty")
    return Props(
        rule_arn=_arn(props, "ListenerRuleArn", "listener-rule"),
        load_balancer_arn=_arn(props, "LoadBalancerArn", "loadbalancer"),
        listener_arn=_arn(props, "ListenerArn", "listener"),
        host_names=hosts,
        hosted_zone_id=zone,
        zone_created_by_stack=zone is not None and str(props.get("ZoneCreatedByStack", "")).lower() == "true",
    )


def tag_key(host: str) -> str:
    return TAG_PREFIX + hashlib.sha256(host.encode()).hexdigest()[:20]


def record_tag_key(name: str) -> str:
    return RECORD_TAG_PREFIX + hashlib.sha256(name.encode()).hexdigest()[:20]


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


def _tags(elbv2: ElbClient, rule_arn: str) -> dict[str, str]:
    try:
        described = elbv2.describe_tags(ResourceArns=[rule_arn])["TagDescriptions"]
    except ClientError as err:
        if _code(err) in _GONE:
            return {}
        raise ControlPlaneError(f"DescribeTags failed: {_code(err)}") from None
    tags = described[0].get("Tags", []) if described else []
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags}


def _owned(elbv2: ElbClient, rule_arn: str, prefix: str = TAG_PREFIX) -> dict[str, str]:
    """Names this resource added (host names on the rule, or DNS records): tag key -> name."""
    return {k: v for k, v in _tags(elbv2, rule_arn).items() if k.startswith(prefix)}


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


# ----- the certificate -------------------------------------------------------------------------


def certificate_arn(elbv2: ElbClient, rule_arn: str) -> str | None:
    """The certificate this resource requested for the rule's custom host names, if any."""
    return _tags(elbv2, rule_arn).get(CERTIFICATE_TAG) or None


def describe(acm: AcmClient, arn: str) -> dict[str, Any] | None:
    try:
        return dict(acm.describe_certificate(CertificateArn=arn)["Certificate"])
    except ClientError as err:
        if _code(err) == "ResourceNotFoundException":
            return None
        raise ControlPlaneError(f"DescribeCertificate failed: {_code(err)}") from None


def _covers(cert: Mapping[str, Any], hosts: Sequence[str]) -> bool:
    names = {str(cert.get("DomainName", ""))} | {str(n) for n in cert.get("SubjectAlternativeNames", [])}
    return set(hosts) <= names


def token(stack_id: str, props: Props, replaces: str = "") -> str:
    """RequestCertificate's IdempotencyToken (\\w{1,32}): a retried Create gets the same certificate.

    ACM returns the same certificate for the same token within an hour; the certificate being
    replaced is part of it, so replacing a dead one always yields a new request.
    """
    parts = (stack_id, props.rule_arn, replaces, *props.host_names)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def request(acm: AcmClient, props: Props, stack_id: str, replaces: str = "") -> str:
    kwargs: dict[str, Any] = {
        "DomainName": props.host_names[0],
        "ValidationMethod": "DNS",
        "IdempotencyToken": token(stack_id, props, replaces),
        "Tags": [{"Key": STACK_TAG, "Value": stack_id}],
    }
    if len(props.host_names) > 1:
        kwargs["SubjectAlternativeNames"] = list(props.host_names[1:])
    try:
        arn = str(acm.request_certificate(**kwargs)["CertificateArn"])
    except ClientError as err:
        raise ControlPlaneError(f"RequestCertificate failed: {_code(err)}") from None
    logger.info("certificate requested", extra={"certificate": arn, "hosts": props.host_names})
    return arn


def ensure_certificate(elbv2: ElbClient, acm: AcmClient, props: Props, stack_id: str) -> str:
    """The rule's certificate for the host names: the recorded one if ACM can still issue it, else a new one.

    A certificate that no longer covers the names (``www.`` switched on) or that ACM will never
    issue (validation timed out after 72 hours) is replaced; the old one is detached and deleted.
    """
    old = certificate_arn(elbv2, props.rule_arn)
    if old:
        cert = describe(acm, old)
        if cert is not None and _covers(cert, props.host_names) and cert.get("Status") not in DEAD:
            return old
    arn = request(acm, props, stack_id, replaces=old or "")
    try:
        elbv2.add_tags(ResourceArns=[props.rule_arn], Tags=[{"Key": CERTIFICATE_TAG, "Value": arn}])
    except ClientError as err:
        raise ControlPlaneError(f"AddTags failed: {_code(err)}") from None
    if old and old != arn:
        retire(elbv2, acm, props.listener_arn, old)
    return arn


def validation_records(
    acm: AcmClient, arn: str, *, attempts: int = 10, sleep: Callable[[float], None] = time.sleep
) -> list[dict[str, str]]:
    """ACM's validation CNAMEs of the certificate (ACM fills them in shortly after the request)."""
    records: list[dict[str, str]] = []
    for attempt in range(attempts):
        cert = describe(acm, arn) or {}
        options = cert.get("DomainValidationOptions", [])
        records = []
        for option in options:
            record = option.get("ResourceRecord")
            if record:
                entry = {"Name": str(record["Name"]), "Type": str(record["Type"]), "Value": str(record["Value"])}
                if entry not in records:
                    records.append(entry)
        if options and all(o.get("ResourceRecord") for o in options):
            return records
        if attempt + 1 < attempts:
            sleep(min(2.0 * (attempt + 1), 5.0))
    raise ControlPlaneError(f"ACM has not published the validation records of {arn} yet; retry the stack operation")


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


def _record_set(route53: Route53Client, zone: str, name: str) -> dict[str, Any] | None:
    try:
        found = route53.list_resource_record_sets(
            HostedZoneId=zone, StartRecordName=name, StartRecordType="CNAME", MaxItems="1"
        )["ResourceRecordSets"]
    except ClientError as err:
        if _code(err) == "NoSuchHostedZone":
            return None
        raise ControlPlaneError(f"ListResourceRecordSets failed: {_code(err)}") from None
    for rrset in found:
        if _fqdn(str(rrset.get("Name", ""))) == _fqdn(name) and rrset.get("Type") == "CNAME":
            return dict(rrset)
    return None


def write_records(
    elbv2: ElbClient, route53: Route53Client, props: Props, records: Sequence[Mapping[str, str]]
) -> list[str]:
    """Create the validation CNAMEs that are missing from the zone; returns the names created."""
    if props.hosted_zone_id is None:
        return []
    created = []
    for record in records:
        name = _fqdn(record["Name"])
        existing = _record_set(route53, props.hosted_zone_id, name)
        if existing is not None:
            values = [r.get("Value", "") for r in existing.get("ResourceRecords", [])]
            if values != [record["Value"]]:
                raise ControlPlaneError(f"{name} already exists in the zone with another value; remove it or fix it")
            continue
        # Tag first: a crash between the calls leaves a tag for a record that is not there, which
        # Delete tolerates, never a record of ours without its tag.
        elbv2.add_tags(ResourceArns=[props.rule_arn], Tags=[{"Key": record_tag_key(name), "Value": name}])
        try:
            route53.change_resource_record_sets(
                HostedZoneId=props.hosted_zone_id,
                ChangeBatch={
                    "Comment": "ACM DNS validation of the REDCap custom domain (Custom::ExpressHostHeader)",
                    "Changes": [
                        {
                            "Action": "CREATE",
                            "ResourceRecordSet": {
                                "Name": name,
                                "Type": "CNAME",
                                "TTL": 300,
                                "ResourceRecords": [{"Value": record["Value"]}],
                            },
                        }
                    ],
                },
            )
        except ClientError as err:
            raise ControlPlaneError(f"ChangeResourceRecordSets (CREATE {name}) failed: {_code(err)}") from None
        created.append(name)
    if created:
        logger.info("validation records written", extra={"records": created, "zone": props.hosted_zone_id})
    return created


def delete_records(elbv2: ElbClient, route53: Route53Client, rule_arn: str, zone: str | None) -> list[str]:
    """Delete the validation records this resource created (and their tags); returns the names deleted."""
    owned = _owned(elbv2, rule_arn, RECORD_TAG_PREFIX)
    deleted = []
    for key, name in owned.items():
        existing = _record_set(route53, zone, name) if zone else None
        if existing is not None:
            try:
                route53.change_resource_record_sets(
                    HostedZoneId=zone,
                    ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": existing}]},
                )
            except ClientError as err:
                if _code(err) != "InvalidChangeBatch":  # already gone: a repeated Delete
                    raise ControlPlaneError(f"ChangeResourceRecordSets (DELETE {name}) failed: {_code(err)}") from None
            deleted.append(name)
        try:
            elbv2.remove_tags(ResourceArns=[rule_arn], TagKeys=[key])
        except ClientError as err:
            if _code(err) not in _GONE:
                raise ControlPlaneError(f"RemoveTags failed: {_code(err)}") from None
    if deleted:
        logger.info("validation records deleted", extra={"records": deleted, "zone": zone})
    return deleted


ACM_VALIDATION_TARGET = ".acm-validations.aws."


def sweep_validation_records(route53: Route53Client, zone: str, domain: str) -> list[str]:
    """Delete every ACM validation CNAME under ``domain`` in a zone the stack created and is about to delete.

    Records this resource did not write can be there too: an earlier version of the stack validated
    its certificate with AWS::CertificateManager::Certificate, and CloudFormation leaves those
    CNAMEs in the zone. Any of them makes the zone's deletion fail (HostedZoneNotEmpty). Only
    ``_label.<domain>`` CNAMEs whose every value is ACM's validation target are removed.
    """
    suffix = _fqdn(domain)
    doomed: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"HostedZoneId": zone}
    while True:
        try:
            page = route53.list_resource_record_sets(**kwargs)
        except ClientError as err:
            if _code(err) == "NoSuchHostedZone":
                return []
            raise ControlPlaneError(f"ListResourceRecordSets failed: {_code(err)}") from None
        for rrset in page["ResourceRecordSets"]:
            name = _fqdn(str(rrset.get("Name", "")))
            values = [str(r.get("Value", "")).lower() for r in rrset.get("ResourceRecords", [])]
            if (
                rrset.get("Type") == "CNAME"
                and name.startswith("_")
                and (name == suffix or name.endswith("." + suffix))
                and values
                and all(_fqdn(v).endswith(ACM_VALIDATION_TARGET) for v in values)
            ):
                doomed.append(dict(rrset))
        if not page.get("IsTruncated"):
            break
        kwargs.update(StartRecordName=page["NextRecordName"], StartRecordType=page["NextRecordType"])
    for rrset in doomed:
        try:
            route53.change_resource_record_sets(
                HostedZoneId=zone, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": rrset}]}
            )
        except ClientError as err:
            if _code(err) != "InvalidChangeBatch":  # deleted meanwhile
                raise ControlPlaneError(
                    f"ChangeResourceRecordSets (DELETE {rrset['Name']}) failed: {_code(err)}"
                ) from None
    names = [str(r["Name"]) for r in doomed]
    if names:
        logger.info("validation records swept from the stack's zone", extra={"records": names, "zone": zone})
    return names


def _listener_certificates(elbv2: ElbClient, listener_arn: str) -> list[str] | None:
    try:
        pages = elbv2.describe_listener_certificates(ListenerArn=listener_arn)["Certificates"]
    except ClientError as err:
        if _code(err) in ("ListenerNotFound", *_GONE):
            return None
        raise ControlPlaneError(f"DescribeListenerCertificates failed: {_code(err)}") from None
    return [str(c["CertificateArn"]) for c in pages]


def retire(
    elbv2: ElbClient, acm: AcmClient, listener_arn: str, arn: str, *, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Take the certificate off the listener and delete it; a certificate that is gone is done."""
    attached = _listener_certificates(elbv2, listener_arn)
    if attached is not None and arn in attached:
        try:
            elbv2.remove_listener_certificates(ListenerArn=listener_arn, Certificates=[{"CertificateArn": arn}])
        except ClientError as err:
            raise ControlPlaneError(f"RemoveListenerCertificates failed: {_code(err)}") from None
    # ACM refuses to delete a certificate that a load balancer still uses (ResourceInUseException);
    # the listener lets go of it within moments of RemoveListenerCertificates.
    for attempt in range(6):
        try:
            acm.delete_certificate(CertificateArn=arn)
        except ClientError as err:
            code = _code(err)
            if code == "ResourceNotFoundException":
                break
            if code == "ResourceInUseException" and attempt < 5:
                sleep(5.0)
                continue
            raise ControlPlaneError(f"DeleteCertificate failed: {code}") from None
        break
    logger.info("certificate retired", extra={"certificate": arn})


def activate(elbv2: ElbClient, acm: AcmClient, props: Props, arn: str) -> str:
    """Once ACM has issued the certificate: on the listener, host names on the rule. Returns its status."""
    cert = describe(acm, arn)
    status = str((cert or {}).get("Status", "MISSING"))
    if status != "ISSUED":
        logger.info("certificate not issued yet; the domain waits", extra={"certificate": arn, "status": status})
        return status
    attached = _listener_certificates(elbv2, props.listener_arn)
    if attached is None:
        raise ControlPlaneError("the Express HTTPS listener does not exist (was the service replaced or deleted?)")
    if arn not in attached:
        try:
            elbv2.add_listener_certificates(ListenerArn=props.listener_arn, Certificates=[{"CertificateArn": arn}])
        except ClientError as err:
            raise ControlPlaneError(f"AddListenerCertificates failed: {_code(err)}") from None
    ensure(elbv2, props)
    return status


def reconcile(elbv2: ElbClient, acm: AcmClient, route53: Route53Client, props: Props, stack_id: str) -> str:
    """The scheduled/event path: activate the recorded certificate, or request a new one if it died.

    Before the custom resource's first Create (no certificate recorded) there is nothing to do.
    """
    arn = certificate_arn(elbv2, props.rule_arn)
    if arn is None:
        logger.info("no certificate recorded on the rule yet; nothing to activate")
        return "NONE"
    cert = describe(acm, arn)
    if cert is None or cert.get("Status") in DEAD or not _covers(cert, props.host_names):
        logger.warning(
            "certificate cannot be issued any more; requesting a new one",
            extra={"certificate": arn, "status": (cert or {}).get("Status", "MISSING")},
        )
        arn = ensure_certificate(elbv2, acm, props, stack_id)
        write_records(elbv2, route53, props, validation_records(acm, arn))
    return activate(elbv2, acm, props, arn)


def remove(elbv2: ElbClient, acm: AcmClient, route53: Route53Client, props: Props, rule_arn: str) -> None:
    """Delete: host names off the rule, the certificate off the listener and out of ACM, our records out of the zone."""
    release(elbv2, rule_arn, props.host_names)
    arn = certificate_arn(elbv2, rule_arn)
    if arn:
        retire(elbv2, acm, props.listener_arn, arn)
    delete_records(elbv2, route53, rule_arn, props.hosted_zone_id)
    if props.hosted_zone_id and props.zone_created_by_stack:
        sweep_validation_records(route53, props.hosted_zone_id, props.host_names[0])
    if arn:
        try:
            elbv2.remove_tags(ResourceArns=[rule_arn], TagKeys=[CERTIFICATE_TAG])
        except ClientError as err:
            if _code(err) not in _GONE:
                raise ControlPlaneError(f"RemoveTags failed: {_code(err)}") from None


def data(elbv2: ElbClient, acm: AcmClient, props: Props, arn: str) -> dict[str, str]:
    """What the template reads back: the ALB's alias target and the certificate's state and records."""
    try:
        lb = elbv2.describe_load_balancers(LoadBalancerArns=[props.load_balancer_arn])["LoadBalancers"][0]
    except ClientError as err:
        raise ControlPlaneError(f"DescribeLoadBalancers failed: {_code(err)}") from None
    cert = describe(acm, arn) or {}
    records: list[dict[str, str]] = []
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
        "CertificateStatus": str(cert.get("Status", "")),
        "CertificateArn": arn,
    }
