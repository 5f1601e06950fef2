"""redcap_ctl.express_domain's waiting and retrying, with botocore's Stubber (no emulator needed)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from redcap_ctl import express_domain
from redcap_ctl.errors import ControlPlaneError, InputError

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
ALB = "arn:aws:elasticloadbalancing:us-east-1:123456789012:{kind}/app/ecs-express-gateway-alb/0123456789abcdef"
LB = ALB.format(kind="loadbalancer")
LISTENER = ALB.format(kind="listener") + "/fedcba9876543210"
RULE = ALB.format(kind="listener-rule") + "/fedcba9876543210/00112233445566aa"
RECORD = {"Name": "_x.redcap.example.org.", "Type": "CNAME", "Value": "_y.acm-validations.aws."}


def _client(service: str) -> Any:
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def _props(**overrides: Any) -> dict[str, Any]:
    return {
        "ListenerRuleArn": RULE,
        "ListenerArn": LISTENER,
        "LoadBalancerArn": LB,
        "HostNames": ["Redcap.Example.org."],
        "HostedZoneId": "/hostedzone/Z0123456789ABC",
        **overrides,
    }


def test_props_normalise_names_and_the_zone_id() -> None:
    props = express_domain.parse_props(_props())
    assert props.host_names == ("redcap.example.org",)
    assert props.hosted_zone_id == "Z0123456789ABC"
    assert express_domain.parse_props(_props(HostedZoneId="")).hosted_zone_id is None
    with pytest.raises(InputError, match="HostedZoneId"):
        express_domain.parse_props(_props(HostedZoneId="z-lower"))


def test_a_replacement_request_never_reuses_the_dead_certificates_token() -> None:
    props = express_domain.parse_props(_props())
    stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/redcap/1"
    first = express_domain.token(stack, props)
    assert first == express_domain.token(stack, props)  # a retried Create gets the same certificate
    assert express_domain.token(stack, props, replaces=CERT) != first
    assert len(first) == 32
    assert first.isalnum()


def test_validation_records_wait_until_acm_has_published_them() -> None:
    acm = _client("acm")
    naps: list[float] = []
    with Stubber(acm) as stub:
        pending = {"DomainName": "redcap.example.org", "ValidationMethod": "DNS"}
        stub.add_response(
            "describe_certificate",
            {"Certificate": {"CertificateArn": CERT, "DomainValidationOptions": [pending]}},
            {"CertificateArn": CERT},
        )
        stub.add_response(
            "describe_certificate",
            {
                "Certificate": {
                    "CertificateArn": CERT,
                    "DomainValidationOptions": [{**pending, "ResourceRecord": RECORD}],
                }
            },
            {"CertificateArn": CERT},
        )
        assert express_domain.validation_records(acm, CERT, sleep=naps.append) == [RECORD]
    assert naps == [2.0]


def test_validation_records_that_never_appear_fail_with_a_reason() -> None:
    acm = _client("acm")
    with Stubber(acm) as stub:
        for _ in range(3):
            stub.add_response(
                "describe_certificate", {"Certificate": {"CertificateArn": CERT}}, {"CertificateArn": CERT}
            )
        with pytest.raises(ControlPlaneError, match="has not published the validation records"):
            express_domain.validation_records(acm, CERT, attempts=3, sleep=lambda _s: None)


def test_retire_detaches_first_and_waits_while_the_load_balancer_lets_go() -> None:
    elbv2, acm = _client("elbv2"), _client("acm")
    naps: list[float] = []
    with Stubber(elbv2) as elb_stub, Stubber(acm) as acm_stub:
        elb_stub.add_response(
            "describe_listener_certificates",
            {"Certificates": [{"CertificateArn": CERT, "IsDefault": False}]},
            {"ListenerArn": LISTENER},
        )
        elb_stub.add_response(
            "remove_listener_certificates", {}, {"ListenerArn": LISTENER, "Certificates": [{"CertificateArn": CERT}]}
        )
        # ACM: "ResourceInUseException" while a load balancer still uses the certificate.
        acm_stub.add_client_error(
            "delete_certificate", "ResourceInUseException", expected_params={"CertificateArn": CERT}
        )
        acm_stub.add_response("delete_certificate", {}, {"CertificateArn": CERT})
        express_domain.retire(elbv2, acm, LISTENER, CERT, sleep=naps.append)
    assert naps == [5.0]


def test_retire_of_a_certificate_that_is_gone_is_done() -> None:
    elbv2, acm = _client("elbv2"), _client("acm")
    with Stubber(elbv2) as elb_stub, Stubber(acm) as acm_stub:
        elb_stub.add_response("describe_listener_certificates", {"Certificates": []}, {"ListenerArn": LISTENER})
        acm_stub.add_client_error("delete_certificate", "ResourceNotFoundException")
        express_domain.retire(elbv2, acm, LISTENER, CERT, sleep=lambda _s: pytest.fail("no wait expected"))


def test_retire_gives_up_with_a_reason_when_the_certificate_stays_in_use() -> None:
    elbv2, acm = _client("elbv2"), _client("acm")
    with Stubber(elbv2) as elb_stub, Stubber(acm) as acm_stub:
        elb_stub.add_response("describe_listener_certificates", {"Certificates": []}, {"ListenerArn": LISTENER})
        for _ in range(6):
            acm_stub.add_client_error("delete_certificate", "ResourceInUseException")
        with pytest.raises(ControlPlaneError, match="ResourceInUseException"):
            express_domain.retire(elbv2, acm, LISTENER, CERT, sleep=lambda _s: None)
