"""Custom::ExpressHostHeader through its real handler: moto ELBv2/ACM, responses captured on 127.0.0.1.

The Express-managed ALB, listener and host-header rule are created in moto the way Express lays
them out (an HTTPS listener whose rule admits only the service's own endpoint).
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
from redcap_ctl.express_domain import TAG_PREFIX, tag_key
from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture
from testkit.emulators.express import ExpressService

REGION = "us-east-1"
EXPRESS_HOST = "redcap-1a2b3c.ecs.us-east-1.on.aws"
DOMAIN = "redcap.example.org"


@dataclass
class Express(ExpressService):
    """The Express layout plus the certificate for DomainName (what ExpressCertificate creates)."""

    cert: str = ""

    @property
    def rule(self) -> str:
        return self.rule_arn

    @property
    def lb_arn(self) -> str:
        return self.load_balancer_arn

    def tags(self, rule: str | None = None) -> dict[str, str]:
        described = self.elbv2.describe_tags(ResourceArns=[rule or self.rule_arn])["TagDescriptions"][0]["Tags"]
        return {t["Key"]: t["Value"] for t in described if t["Key"].startswith(TAG_PREFIX)}


@pytest.fixture
def express(aws_sandbox: None) -> Iterator[Express]:
    with mock_aws():
        clients.reset()
        acm = boto3.client("acm", region_name=REGION)
        service = ExpressService.create()
        cert = acm.request_certificate(DomainName=DOMAIN, ValidationMethod="DNS")["CertificateArn"]
        yield Express(**vars(service), cert=cert)
        clients.reset()


@pytest.fixture
def app(express: Express) -> ModuleType:
    return load_handler("express_domain")


def _event(name: str, express: Express, capture: ResponseCapture, **props: Any) -> dict[str, Any]:
    event = load_event("express_domain", name)
    event["ResponseURL"] = capture.url()
    for key in ("ResourceProperties", "OldResourceProperties"):
        if key in event:
            event[key].update(ListenerRuleArn=express.rule, LoadBalancerArn=express.lb_arn, CertificateArn=express.cert)
    event["ResourceProperties"].update(props)
    if "PhysicalResourceId" in event:
        event["PhysicalResourceId"] = express.rule
    return event


def _invoke(app: ModuleType, event: dict[str, Any], capture: ResponseCapture) -> dict[str, Any]:
    capture.clear()
    app.handler(event, LambdaContext())
    return capture.last


def test_create_adds_the_domain_and_answers_the_alias_target(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == express.rule
    assert express.hosts() == [EXPRESS_HOST, DOMAIN]
    assert express.tags() == {tag_key(DOMAIN): DOMAIN}
    assert answer["Data"]["DNSName"] == express.load_balancer_dns
    assert answer["Data"]["CanonicalHostedZoneId"] == express.load_balancer_zone
    records = json.loads(answer["Data"]["ValidationRecords"])
    assert records
    assert all(r["Type"] == "CNAME" and r["Name"].endswith(f"{DOMAIN}.") for r in records)
    # Create again (CloudFormation retries): nothing doubles.
    assert _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert express.hosts() == [EXPRESS_HOST, DOMAIN]


def test_update_puts_back_a_name_removed_by_hand_and_adds_www(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    express.set_hosts([EXPRESS_HOST])  # an Express update or a person dropped our name
    answer = _invoke(app, _event("update_www.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == express.rule
    assert express.hosts() == [EXPRESS_HOST, DOMAIN, f"www.{DOMAIN}"]
    assert set(express.tags().values()) == {DOMAIN, f"www.{DOMAIN}"}


def test_update_dropping_www_removes_only_www(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    www = _event("update_www.json", express, cfn_responses)
    _invoke(app, {**www, "RequestType": "Create"}, cfn_responses)
    back = _event("update_www.json", express, cfn_responses)
    back["ResourceProperties"], back["OldResourceProperties"] = (
        back["OldResourceProperties"],
        back["ResourceProperties"],
    )
    assert _invoke(app, back, cfn_responses)["Status"] == "SUCCESS"
    assert express.hosts() == [EXPRESS_HOST, DOMAIN]
    assert express.tags() == {tag_key(DOMAIN): DOMAIN}


def test_delete_removes_exactly_what_it_added_and_is_safe_twice(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    express.set_hosts([EXPRESS_HOST, "legacy.example.org"])  # there before the stack: never ours
    create = _event("create.json", express, cfn_responses, HostNames=[DOMAIN, "legacy.example.org"])
    assert _invoke(app, create, cfn_responses)["Status"] == "SUCCESS"
    assert express.hosts() == [EXPRESS_HOST, "legacy.example.org", DOMAIN]
    assert express.tags() == {tag_key(DOMAIN): DOMAIN}
    delete = _event("delete.json", express, cfn_responses, HostNames=[DOMAIN, "legacy.example.org"])
    for _ in range(2):
        answer = _invoke(app, delete, cfn_responses)
        assert answer["Status"] == "SUCCESS", answer
        assert express.hosts() == [EXPRESS_HOST, "legacy.example.org"]
        assert express.tags() == {}


def test_delete_after_the_rule_changed_by_hand_or_vanished(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    express.set_hosts([EXPRESS_HOST, "added-by-hand.example.org"])  # our name removed, another added
    assert _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert express.hosts() == [EXPRESS_HOST, "added-by-hand.example.org"]
    assert express.tags() == {}
    # Express replaced (the rule is gone): Delete of the old resource is success, twice.
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
    assert "listener rule does not exist" in answer["Reason"]
    # The failed Create's Delete (crhelper's generated id) touches nothing and succeeds.
    delete = _event("delete.json", express, cfn_responses)
    delete["PhysicalResourceId"] = answer["PhysicalResourceId"]
    assert _invoke(app, delete, cfn_responses)["Status"] == "SUCCESS"


def test_a_replaced_service_moves_the_names_to_the_new_rule(
    app: ModuleType, express: Express, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    old_rule, new_rule = express.rule, express.new_rule(priority=2)
    update = _event("update_www.json", express, cfn_responses, ListenerRuleArn=new_rule, HostNames=[DOMAIN])
    answer = _invoke(app, update, cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == new_rule  # replacement: CloudFormation then deletes the old one
    assert express.hosts(new_rule) == [EXPRESS_HOST, DOMAIN]
    delete = _event("delete.json", express, cfn_responses)
    assert delete["PhysicalResourceId"] == old_rule
    assert _invoke(app, delete, cfn_responses)["Status"] == "SUCCESS"
    assert express.hosts(old_rule) == [EXPRESS_HOST]
    assert express.hosts(new_rule) == [EXPRESS_HOST, DOMAIN]


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"HostNames": []}, "HostNames"),
        ({"ListenerRuleArn": "arn:aws:ecs:us-east-1:1:service/x/y"}, "ListenerRuleArn"),
        ({"LoadBalancerArn": "nope"}, "LoadBalancerArn"),
        ({"CertificateArn": "arn:aws:iam::1:server-certificate/x"}, "CertificateArn"),
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
