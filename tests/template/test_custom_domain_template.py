"""Custom::AppRunnerCustomDomain as template.yaml declares it, per DNS mode."""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest

from redcap_ctl import custom_domain
from testkit.template import Rendered

SERVICE_ARN = {"Fn::GetAtt": ["AppRunnerService", "ServiceArn"]}
OWNED = ("AppRunnerCustomDomainFunction", "AppRunnerCustomDomainLogGroup", "AppRunnerCustomDomain")
OUTPUTS = ("CustomDomainTarget", "CustomDomainStatus", "CustomDomainValidationRecords")
EXISTING_ZONE = "Z0123456789ABCDEFGHIJ"


def with_zone(mode: str) -> Rendered:
    params: dict[str, Any] = {"DomainName": "redcap.example.org", "DnsMode": mode}
    if mode == "ExistingZone":
        params["HostedZoneId"] = EXISTING_ZONE
    return Rendered(**params)


def statements(rendered: Rendered) -> list[dict[str, Any]]:
    return rendered.function_statements("AppRunnerCustomDomainFunction")


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_nothing_without_a_domain() -> None:
    rendered = Rendered(DomainName="")

    for name in OWNED:
        assert name not in rendered.resources
    for name in OUTPUTS:
        assert name not in rendered.outputs


@pytest.mark.parametrize(
    ("mode", "zone"),
    [("CreateZone", {"Ref": "HostedZone"}), ("ExistingZone", EXISTING_ZONE)],
)
def test_resource_wires_service_domain_and_zone(mode: str, zone: Any) -> None:
    rendered = with_zone(mode)

    resource = rendered.resource("AppRunnerCustomDomain")
    props = resource["Properties"]
    assert resource["Type"] == "Custom::AppRunnerCustomDomain"
    assert props["ServiceToken"] == {"Fn::GetAtt": ["AppRunnerCustomDomainFunction", "Arn"]}
    assert props["ServiceArn"] == SERVICE_ARN
    assert props["DomainName"] == "redcap.example.org"
    assert props["HostedZoneId"] == zone
    assert props["EnableWWWSubdomain"] == "false"
    assert props["ServiceTimeout"] <= 3600
    assert resource["DependsOn"] == "AppRunnerCustomDomainLogGroup"
    for name in OUTPUTS:
        assert name in rendered.outputs


def test_external_dns_has_no_zone_property_and_no_route53_rights() -> None:
    rendered = with_zone("External")

    assert "HostedZoneId" not in rendered.props("AppRunnerCustomDomain")
    assert not [a for s in statements(rendered) for a in actions(s) if a.startswith("route53:")]
    assert rendered.outputs["CustomDomainValidationRecords"]["Value"] == {
        "Fn::GetAtt": ["AppRunnerCustomDomain", "ValidationRecords"]
    }


def test_www_follows_its_parameter() -> None:
    rendered = Rendered(DomainName="redcap.example.org", EnableWwwSubdomain="true")

    assert rendered.props("AppRunnerCustomDomain")["EnableWWWSubdomain"] == "true"
    assert Rendered().template["Parameters"]["EnableWwwSubdomain"]["AllowedValues"] == ["true", "false"]


def test_function_follows_the_conventions() -> None:
    rendered = with_zone("CreateZone")
    props = rendered.props("AppRunnerCustomDomainFunction")
    log_group = rendered.props("AppRunnerCustomDomainLogGroup")

    assert props["CodeUri"] == "functions/custom_domain/"
    assert props["Handler"] == "app.handler"
    assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "custom-domain"
    # The function must answer CloudFormation before its own timeout, and within ServiceTimeout.
    margin = float(props["Environment"]["Variables"]["CUSTOM_DOMAIN_TIME_MARGIN_SECONDS"])
    assert 0 < margin < props["Timeout"] <= 900
    assert props["Timeout"] < rendered.props("AppRunnerCustomDomain")["ServiceTimeout"]
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}/AppRunnerCustomDomainFunction"}
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert "RetentionInDays" in log_group


@pytest.mark.parametrize("mode", ["CreateZone", "ExistingZone", "External"])
def test_apprunner_rights_only_on_this_service(mode: str) -> None:
    apprunner = [s for s in statements(with_zone(mode)) if any(a.startswith("apprunner:") for a in actions(s))]

    assert len(apprunner) == 1
    assert apprunner[0]["Effect"] == "Allow"
    assert apprunner[0]["Resource"] == SERVICE_ARN
    assert sorted(actions(apprunner[0])) == [
        "apprunner:AssociateCustomDomain",
        "apprunner:DescribeCustomDomains",
        "apprunner:DescribeService",
        "apprunner:DisassociateCustomDomain",
    ]


@pytest.mark.parametrize(
    ("mode", "zone"),
    [("CreateZone", {"Ref": "HostedZone"}), ("ExistingZone", EXISTING_ZONE)],
)
def test_route53_rights_only_on_this_zone_and_domain(mode: str, zone: Any) -> None:
    route53 = [s for s in statements(with_zone(mode)) if any(a.startswith("route53:") for a in actions(s))]

    assert {a for s in route53 for a in actions(s)} == {
        "route53:ChangeResourceRecordSets",
        "route53:ListResourceRecordSets",
    }
    for statement in route53:
        assert statement["Effect"] == "Allow"
        template, variables = statement["Resource"]["Fn::Sub"]
        assert template == "arn:${AWS::Partition}:route53:::hostedzone/${ZoneId}"
        assert variables == {"ZoneId": zone}
    (change,) = [s for s in route53 if "route53:ChangeResourceRecordSets" in actions(s)]
    condition = change["Condition"]
    assert condition["ForAllValues:StringLike"]["route53:ChangeResourceRecordSetsNormalizedRecordNames"] == [
        "redcap.example.org",
        {"Fn::Sub": "*.${DomainName}"},
    ]
    assert condition["ForAllValues:StringEquals"]["route53:ChangeResourceRecordSetsRecordTypes"] == [
        "A",
        "AAAA",
        "CNAME",
        "TXT",  # the ownership record
    ]
    # The ownership record's name falls under the allowed names.
    assert fnmatch.fnmatchcase(custom_domain.ownership_name("redcap.example.org"), "*.redcap.example.org")


def test_no_wildcard_resources_in_allows() -> None:
    for statement in statements(with_zone("CreateZone")):
        if statement["Effect"] == "Allow":
            assert statement["Resource"] != "*"
