"""Custom::ExpressHostHeader and its activation events through the real handler (moto ELBv2, ACM, Route 53).

The Express-managed ALB, listener and host-header rule are created in moto the way Express lays
them out. ACM's DNS validation is ``testkit.moto_acm``: a certificate is issued only once its
validation CNAME is in a zone that public DNS reaches (a delegated zone), as in ACM; moto alone
issues every certificate after 60 s whatever the DNS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from redcap_ctl import clients
from redcap_ctl.express_domain import CERTIFICATE_TAG, RECORD_TAG_PREFIX, STACK_TAG, TAG_PREFIX, tag_key
from testkit import LambdaContext, load_event, load_handler, moto_acm
from testkit.cfn import ResponseCapture
from testkit.emulators.express import ExpressService

REGION = "us-east-1"
EXPRESS_HOST = "redcap-1a2b3c.ecs.us-east-1.on.aws"
DOMAIN = "redcap.example.org"
STACK_ID = load_event("express_domain", "create.json")["StackId"]


@dataclass
class Express(ExpressService):
    """The Express layout plus the zone the stack created for DomainName (DnsMode=CreateZone)."""

    zone: str = ""

    @property
    def rule(self) -> str:
        return self.rule_arn

    @property
    def route53(self) -> Any:
        return boto3.client("route53", region_name=self.region)

    @property
    def acm(self) -> Any:
        return boto3.client("acm", region_name=self.region)

    def tags(self, rule: str | None = None, prefix: str = TAG_PREFIX) -> dict[str, str]:
        described = self.elbv2.describe_tags(ResourceArns=[rule or self.rule_arn])["TagDescriptions"][0]["Tags"]
        return {t["Key"]: t["Value"] for t in described if t["Key"].startswith(prefix)}

    def certificate(self, rule: str | None = None) -> str:
        return self.tags(rule, CERTIFICATE_TAG).get(CERTIFICATE_TAG, "")

    def records(self) -> list[dict[str, Any]]:
        sets = self.route53.list_resource_record_sets(HostedZoneId=self.zone)["ResourceRecordSets"]
        return [r for r in sets if r["Type"] not in ("SOA", "NS")]

    def delegate(self) -> list[str]:
        """The administrator delegates the zone; ACM's next check finds the records."""
        return moto_acm.validate([self.zone])


@pytest.fixture
def express(aws_sandbox: None) -> Iterator[Express]:
    with mock_aws():
        clients.reset()
        moto_acm.manual()
        moto_acm.guard_in_use()
        service = ExpressService.create()
        zone = boto3.client("route53").create_hosted_zone(Name=DOMAIN, CallerReference="test")["HostedZone"]["Id"]
        yield Express(**vars(service), zone=zone.rsplit("/", 1)[-1])
        clients.reset()


@pytest.fixture
def app(express: Express) -> ModuleType:
    return load_handler("express_domain")


def _props(express: Express, **overrides: Any) -> dict[str, Any]:
    return {
        "ListenerRuleArn": express.rule,
        "ListenerArn": express.listener_arn,
        "LoadBalancerArn": express.load_balancer_arn,
        "HostedZoneId": express.zone,
        **overrides,
    }


def _event(name: str, express: Express, capture: ResponseCapture, **props: Any) -> dict[str, Any]:
    event = load_event("express_domain", name)
    event["ResponseURL"] = capture.url()
    for key in ("ResourceProperties", "OldResourceProperties"):
        if key in event:
            event[key].update(_props(express))
    event["ResourceProperties"].update(props)
    if "PhysicalResourceId" in event:
        event["PhysicalResourceId"] = express.rule
    return event


def _invoke(app: ModuleType, event: dict[str, Any], capture: ResponseCapture) -> dict[str, Any]:
    capture.clear()
    app.handler(event, LambdaContext())
    return capture.last


def _activate(app: ModuleType, express: Express, **props: Any) -> Any:
    """What ExpressCertificateIssuedRule / ExpressCertificateReconcileRule deliver (their constant input)."""
    event = load_event("express_domain", "activate.json")
    event["Activate"].update(_props(express, **props))
    return app.handler(event, LambdaContext())


def test_create_answers_at_once_with_the_certificate_pending_and_the_records_in_the_zone(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == express.rule
    cert = express.certificate()
    assert answer["Data"]["CertificateArn"] == cert
    # The zone is not delegated yet: ACM cannot validate, and the stack does not wait for it.
    assert answer["Data"]["CertificateStatus"] == "PENDING_VALIDATION"
    described = express.acm.describe_certificate(CertificateArn=cert)["Certificate"]
    assert described["DomainName"] == DOMAIN
    assert {"Key": STACK_TAG, "Value": STACK_ID} in express.acm.list_tags_for_certificate(CertificateArn=cert)["Tags"]
    records = json.loads(answer["Data"]["ValidationRecords"])
    assert [(r["Name"], r["Type"]) for r in records] == [(express.records()[0]["Name"], "CNAME")]
    assert express.records()[0]["ResourceRecords"] == [{"Value": records[0]["Value"]}]
    assert set(express.tags(prefix=RECORD_TAG_PREFIX).values()) == {records[0]["Name"]}
    # Nothing routes the name before its certificate exists.
    assert express.hosts() == [EXPRESS_HOST]
    assert express.listener_certificates() == []
    assert answer["Data"]["DNSName"] == express.load_balancer_dns
    assert answer["Data"]["CanonicalHostedZoneId"] == express.load_balancer_zone
    # CloudFormation retries Create: the same certificate, one record.
    again = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert again["Status"] == "SUCCESS"
    assert express.certificate() == cert
    assert len(express.records()) == 1
    assert len(express.acm.list_certificates()["CertificateSummaryList"]) == 2  # Express's own + ours


def test_https_on_the_domain_starts_by_itself_once_acm_validates(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    cert = express.certificate()
    # The schedule runs before anyone delegated the zone: nothing changes.
    assert _activate(app, express) == {"CertificateStatus": "PENDING_VALIDATION"}
    assert moto_acm.validate([]) == []  # records in an undelegated zone validate nothing
    assert express.hosts() == [EXPRESS_HOST]
    # The administrator delegates; ACM validates and sends "ACM Certificate Available".
    assert express.delegate() == [cert]
    assert _activate(app, express) == {"CertificateStatus": "ISSUED"}
    assert express.listener_certificates() == [cert]
    assert express.hosts() == [EXPRESS_HOST, DOMAIN]
    assert express.tags() == {tag_key(DOMAIN): DOMAIN}
    # The schedule keeps running: nothing doubles, and a name an Express update removed comes back.
    express.set_hosts([EXPRESS_HOST])
    assert _activate(app, express) == {"CertificateStatus": "ISSUED"}
    assert express.listener_certificates() == [cert]
    assert express.hosts() == [EXPRESS_HOST, DOMAIN]


def test_activation_before_the_resource_exists_does_nothing(app: ModuleType, express: Express) -> None:
    assert _activate(app, express) == {"CertificateStatus": "NONE"}
    assert express.hosts() == [EXPRESS_HOST]


def test_a_timed_out_request_is_replaced_by_the_schedule(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    old = express.certificate()
    moto_acm.time_out(old)  # 72 hours without delegation
    assert _activate(app, express) == {"CertificateStatus": "PENDING_VALIDATION"}
    new = express.certificate()
    assert new
    assert new != old
    assert moto_acm.status(old) is None  # deleted
    assert express.delegate() == [new]
    assert _activate(app, express) == {"CertificateStatus": "ISSUED"}
    assert express.listener_certificates() == [new]


def test_delete_leaves_the_zone_deletable_and_is_safe_twice(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    cert = express.certificate()
    express.delegate()
    _activate(app, express)
    assert express.hosts() == [EXPRESS_HOST, DOMAIN]
    with pytest.raises(express.route53.exceptions.HostedZoneNotEmpty):
        express.route53.delete_hosted_zone(Id=express.zone)  # what the old design left behind
    for _ in range(2):
        answer = _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)
        assert answer["Status"] == "SUCCESS", answer
        assert express.hosts() == [EXPRESS_HOST]
        assert express.listener_certificates() == []
        assert moto_acm.status(cert) is None
        assert express.records() == []
        assert express.tags(prefix="redcap-ctl:") == {}
    express.route53.delete_hosted_zone(Id=express.zone)


def test_delete_sweeps_an_older_certificates_validation_cname_from_the_stacks_zone(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    # An earlier template validated with AWS::CertificateManager::Certificate; CloudFormation left its
    # CNAME in the zone the stack created, and the zone's deletion would fail on it.
    leftover = {"Name": "_0ld.redcap.example.org.", "Value": "_1eft.xyz.acm-validations.aws."}
    other = {"Name": "app.redcap.example.org.", "Value": "elsewhere.example.net."}
    for record in (leftover, other):
        express.route53.change_resource_record_sets(
            HostedZoneId=express.zone,
            ChangeBatch={
                "Changes": [
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": record["Name"],
                            "Type": "CNAME",
                            "TTL": 300,
                            "ResourceRecords": [{"Value": record["Value"]}],
                        },
                    }
                ]
            },
        )
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    existing_zone = _event("delete.json", express, cfn_responses, ZoneCreatedByStack="false")
    assert _invoke(app, existing_zone, cfn_responses)["Status"] == "SUCCESS"
    # Not the stack's zone: only what this resource wrote is removed.
    assert sorted(r["Name"] for r in express.records()) == sorted([leftover["Name"], other["Name"]])
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    # The stack's zone: every ACM validation CNAME goes, anything else stays (and is the admin's to remove).
    assert [r["Name"] for r in express.records()] == [other["Name"]]


def test_delete_keeps_records_and_names_that_were_not_ours(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    # Another certificate for the same name in this account already has the (same) validation CNAME,
    # and a name was on the rule before the stack.
    probe = express.acm.request_certificate(DomainName=DOMAIN, ValidationMethod="DNS")["CertificateArn"]
    record = express.acm.describe_certificate(CertificateArn=probe)["Certificate"]["DomainValidationOptions"][0]
    rr = record["ResourceRecord"]
    express.route53.change_resource_record_sets(
        HostedZoneId=express.zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": rr["Name"],
                        "Type": "CNAME",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": rr["Value"]}],
                    },
                }
            ]
        },
    )
    express.set_hosts([EXPRESS_HOST, "legacy.example.org"])
    # An existing zone (DnsMode=ExistingZone): a record that was there stays.
    create = _event("create.json", express, cfn_responses, ZoneCreatedByStack="false")
    assert _invoke(app, create, cfn_responses)["Status"] == "SUCCESS"
    assert express.tags(prefix=RECORD_TAG_PREFIX) == {}
    moto_acm.issue(express.certificate())
    _activate(app, express)
    assert express.hosts() == [EXPRESS_HOST, "legacy.example.org", DOMAIN]
    delete = _event("delete.json", express, cfn_responses, ZoneCreatedByStack="false")
    assert _invoke(app, delete, cfn_responses)["Status"] == "SUCCESS"
    assert express.hosts() == [EXPRESS_HOST, "legacy.example.org"]
    assert [r["Name"] for r in express.records()] == [rr["Name"]]


def test_a_record_with_another_value_fails_naming_it(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    probe = express.acm.request_certificate(DomainName=DOMAIN, ValidationMethod="DNS")["CertificateArn"]
    name = express.acm.describe_certificate(CertificateArn=probe)["Certificate"]["DomainValidationOptions"][0][
        "ResourceRecord"
    ]["Name"]
    express.route53.change_resource_record_sets(
        HostedZoneId=express.zone,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": "CNAME",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "elsewhere.example.net."}],
                    },
                }
            ]
        },
    )
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "FAILED"
    assert name in answer["Reason"]
    assert "another value" in answer["Reason"]


def test_external_dns_writes_no_record_and_answers_them_for_the_administrator(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    answer = _invoke(app, _event("create.json", express, cfn_responses, HostedZoneId=""), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert express.records() == []
    assert len(json.loads(answer["Data"]["ValidationRecords"])) == 1
    assert (
        _invoke(app, _event("delete.json", express, cfn_responses, HostedZoneId=""), cfn_responses)["Status"]
        == "SUCCESS"
    )
    assert moto_acm.status(answer["Data"]["CertificateArn"]) is None


def test_update_adding_www_replaces_the_certificate_and_puts_back_a_removed_name(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    old = express.certificate()
    moto_acm.issue(old)
    _activate(app, express)
    express.set_hosts([EXPRESS_HOST])  # an Express update or a person dropped our name
    answer = _invoke(app, _event("update_www.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    new = express.certificate()
    assert new != old
    assert moto_acm.status(old) is None
    sans = express.acm.describe_certificate(CertificateArn=new)["Certificate"]["SubjectAlternativeNames"]
    assert set(sans) == {DOMAIN, f"www.{DOMAIN}"}
    assert express.listener_certificates() == []  # the new one is not issued yet
    moto_acm.issue(new)
    www = [DOMAIN, f"www.{DOMAIN}"]
    _activate(app, express, HostNames=www)
    assert express.listener_certificates() == [new]
    assert express.hosts() == [EXPRESS_HOST, DOMAIN, f"www.{DOMAIN}"]
    assert set(express.tags().values()) == set(www)


def test_update_dropping_www_removes_only_www(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    www = _event("update_www.json", express, cfn_responses)
    _invoke(app, {**www, "RequestType": "Create"}, cfn_responses)
    moto_acm.issue(express.certificate())
    _activate(app, express, HostNames=[DOMAIN, f"www.{DOMAIN}"])
    back = _event("update_www.json", express, cfn_responses)
    back["ResourceProperties"], back["OldResourceProperties"] = (
        back["OldResourceProperties"],
        back["ResourceProperties"],
    )
    assert _invoke(app, back, cfn_responses)["Status"] == "SUCCESS"
    assert express.hosts() == [EXPRESS_HOST, DOMAIN]
    assert express.tags() == {tag_key(DOMAIN): DOMAIN}


def test_delete_after_the_rule_vanished(app: ModuleType, express: Express, cfn_responses: ResponseCapture) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    express.elbv2.delete_rule(RuleArn=express.rule)
    for _ in range(2):
        assert _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"


def test_create_on_a_missing_rule_fails_with_a_reason(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    express.elbv2.delete_rule(RuleArn=express.rule)
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "FAILED"
    # The failed Create's Delete (crhelper's generated id) touches nothing and succeeds.
    delete = _event("delete.json", express, cfn_responses)
    delete["PhysicalResourceId"] = answer["PhysicalResourceId"]
    assert _invoke(app, delete, cfn_responses)["Status"] == "SUCCESS"


def test_a_replaced_service_moves_the_names_to_the_new_rule(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    moto_acm.issue(express.certificate())
    _activate(app, express)
    old_rule, new_rule = express.rule, express.new_rule(priority=2)
    update = _event("update_www.json", express, cfn_responses, ListenerRuleArn=new_rule, HostNames=[DOMAIN])
    answer = _invoke(app, update, cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == new_rule  # replacement: CloudFormation then deletes the old one
    moto_acm.issue(express.certificate(new_rule))
    _activate(app, express, ListenerRuleArn=new_rule)
    assert express.hosts(new_rule) == [EXPRESS_HOST, DOMAIN]
    delete = _event("delete.json", express, cfn_responses)
    assert delete["PhysicalResourceId"] == old_rule
    assert _invoke(app, delete, cfn_responses)["Status"] == "SUCCESS"
    assert express.hosts(old_rule) == [EXPRESS_HOST]
    assert express.hosts(new_rule) == [EXPRESS_HOST, DOMAIN]
    assert express.listener_certificates() == [express.certificate(new_rule)]


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"HostNames": []}, "HostNames"),
        ({"ListenerRuleArn": "arn:aws:ecs:us-east-1:1:service/x/y"}, "ListenerRuleArn"),
        ({"ListenerArn": "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/y"}, "ListenerArn"),
        ({"LoadBalancerArn": "nope"}, "LoadBalancerArn"),
        ({"HostedZoneId": "not-a-zone"}, "HostedZoneId"),
    ],
)
def test_bad_properties_fail_naming_the_field(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture, props: dict[str, Any], field: str
) -> None:
    event = _event("create.json", express, cfn_responses)
    event["ResourceProperties"].update(props)
    answer = _invoke(app, event, cfn_responses)
    assert answer["Status"] == "FAILED"
    assert field in answer["Reason"]
    assert express.hosts() == [EXPRESS_HOST]
    assert express.certificate() == ""
