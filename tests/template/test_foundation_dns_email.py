"""Foundation: the three DNS modes and the SES identities they produce."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.template import Rendered

DOMAIN = "redcap.example.org"
ZONE = "Z0123456789ABCDEFGHIJ"

CREATE = {"DnsMode": "CreateZone", "DomainName": DOMAIN}
EXISTING = {"DnsMode": "ExistingZone", "DomainName": DOMAIN, "HostedZoneId": ZONE}
EXTERNAL = {"DnsMode": "External", "DomainName": DOMAIN}


def _route53(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rendered = Rendered(**params)
    return {n: r for n, r in rendered.resources.items() if r["Type"].startswith("AWS::Route53::")}


def test_create_zone_makes_a_zone_and_writes_dkim_into_it() -> None:
    rendered = Rendered(**CREATE)
    assert rendered.props("HostedZone")["Name"] == DOMAIN
    dkim = rendered.props("SesDkimRecords")
    assert dkim["HostedZoneId"] == {"Ref": "HostedZone"}
    assert len(dkim["RecordSets"]) == 3
    assert {r["Type"] for r in dkim["RecordSets"]} == {"CNAME"}
    assert set(_route53(CREATE)) == {"HostedZone", "SesDkimRecords"}


def test_existing_zone_writes_dkim_into_the_given_zone_and_creates_none() -> None:
    rendered = Rendered(**EXISTING)
    assert "HostedZone" not in rendered.resources
    assert rendered.props("SesDkimRecords")["HostedZoneId"] == ZONE
    assert set(_route53(EXISTING)) == {"SesDkimRecords"}


def test_external_dns_has_no_route53_at_all() -> None:
    assert _route53(EXTERNAL) == {}
    # The domain identity is still created: its DKIM tokens go to the external DNS by hand.
    assert "SesDomainIdentity" in Rendered(**EXTERNAL).resources


def test_outputs_per_mode() -> None:
    create = Rendered(**CREATE).outputs
    existing = Rendered(**EXISTING).outputs
    external = Rendered(**EXTERNAL).outputs
    assert create["NameServers"]["Value"] == {"Fn::Join": [",", {"Fn::GetAtt": ["HostedZone", "NameServers"]}]}
    assert create["DnsHostedZoneId"]["Value"] == {"Ref": "HostedZone"}
    assert "NameServers" not in existing
    assert existing["DnsHostedZoneId"]["Value"] == ZONE
    assert "NameServers" not in external
    assert "DnsHostedZoneId" not in external
    for outputs in (create, existing, external):
        assert outputs["CustomUrl"]["Value"] == {"Fn::Sub": "https://${DomainName}"}


def test_no_custom_url_without_a_domain() -> None:
    outputs = Rendered(DnsMode="External", SesEmailIdentity="redcap@example.org").outputs
    assert "CustomUrl" not in outputs
    assert "ServiceUrl" in outputs


def test_foundation_writes_no_app_runner_domain_records() -> None:
    # The custom domain Lambda owns the service's alias and certificate validation records.
    for params in (CREATE, EXISTING):
        records = [r for r in _route53(params).values() if r["Type"] in ("AWS::Route53::RecordSet",)]
        assert records == []


@pytest.mark.parametrize("params", [CREATE, EXISTING, EXTERNAL])
def test_single_email_identity_replaces_the_domain_identity(params: dict[str, str]) -> None:
    rendered = Rendered(**params, SesEmailIdentity="redcap@example.org")
    assert rendered.props("SesAddressIdentity")["EmailIdentity"] == "redcap@example.org"
    assert "SesDomainIdentity" not in rendered.resources
    assert "SesDkimRecords" not in rendered.resources


def test_domain_identity_signs_with_dkim_and_uses_the_configuration_set() -> None:
    identity = Rendered(**CREATE).props("SesDomainIdentity")
    assert identity["EmailIdentity"] == DOMAIN
    assert identity["DkimSigningAttributes"] == {"NextSigningKeyLength": "RSA_2048_BIT"}
    assert identity["ConfigurationSetAttributes"] == {"ConfigurationSetName": {"Ref": "SesConfigurationSet"}}


def test_bounces_and_complaints_go_to_the_notification_topic() -> None:
    dest = Rendered(**CREATE).props("SesBounceAndComplaintEvents")["EventDestination"]
    assert dest["Enabled"] is True
    assert set(dest["MatchingEventTypes"]) == {"bounce", "complaint"}
    assert dest["SnsDestination"] == {"TopicARN": {"Ref": "NotificationTopic"}}


def test_ses_user_may_send_only_from_its_identity() -> None:
    def statement(params: dict[str, str]) -> dict[str, Any]:
        group = Rendered(**params).props("SesUserGroup")
        (policy,) = group["Policies"]
        (stmt,) = policy["PolicyDocument"]["Statement"]
        return dict(stmt)

    domain = statement(CREATE)
    assert set(domain["Action"]) == {"ses:SendRawEmail", "ses:SendEmail"}
    identity_arn = domain["Resource"][0]["Fn::Sub"]
    assert identity_arn[1] == {"Identity": DOMAIN}
    assert domain["Condition"]["StringLike"]["ses:FromAddress"] == {"Fn::Sub": "*@${DomainName}"}
    single = statement({**EXTERNAL, "SesEmailIdentity": "redcap@example.org"})
    assert single["Resource"][0]["Fn::Sub"][1] == {"Identity": "redcap@example.org"}
    assert single["Condition"]["StringLike"]["ses:FromAddress"] == "redcap@example.org"
