"""redcap_ctl.custom_domain without a network: parsing, ids, backoff, record ownership."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from redcap_ctl import apprunner_regions
from redcap_ctl import custom_domain as cd
from redcap_ctl.errors import InputError

ARN = "arn:aws:apprunner:eu-west-2:123456789012:service/redcap/0123456789abcdef0123456789abcdef"


def props(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"ServiceArn": ARN, "DomainName": "Redcap.Example.org.", "HostedZoneId": "/hostedzone/Z1ABC"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_properties_are_normalised() -> None:
    parsed = cd.parse_props(props())

    assert parsed == cd.Props(
        service_arn=ARN, domain_name="redcap.example.org", enable_www=False, hosted_zone_id="Z1ABC"
    )
    assert parsed.region == "eu-west-2"
    assert cd.parse_props(props(HostedZoneId="")).hosted_zone_id is None
    assert cd.parse_props(props(EnableWWWSubdomain="true")).names == ["redcap.example.org", "www.redcap.example.org"]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"ServiceArn": None}, "ServiceArn"),
        ({"ServiceArn": ARN.replace("apprunner", "lambda")}, "ServiceArn"),
        ({"ServiceArn": ARN + "/extra"}, "ServiceArn"),
        ({"DomainName": ""}, "DomainName"),
        ({"DomainName": "-bad-.example.org"}, "DomainName"),
        ({"DomainName": "a" * 64 + ".example.org"}, "DomainName"),
        ({"DomainName": 42}, "DomainName"),
        ({"HostedZoneId": "hostedzone/Z1"}, "HostedZoneId"),
        ({"HostedZoneId": ["Z1"]}, "HostedZoneId"),
        ({"EnableWWWSubdomain": "True "}, None),  # accepted: parse_bool strips and ignores case
        ({"EnableWWWSubdomain": "1"}, "EnableWWWSubdomain"),
        ({"DomainName": "*.example.org", "EnableWWWSubdomain": "true"}, "EnableWWWSubdomain"),
    ],
)
def test_bad_properties_name_the_field(over: dict[str, Any], field: str | None) -> None:
    if field is None:
        assert cd.parse_props(props(**over)).enable_www is True
        return
    with pytest.raises(InputError) as caught:
        cd.parse_props(props(**over))
    assert caught.value.field == field


def test_physical_id_is_stable_and_ignores_the_zone() -> None:
    a = cd.parse_props(props())
    b = cd.parse_props(props(HostedZoneId="Z9OTHER"))
    c = cd.parse_props(props(EnableWWWSubdomain="true"))

    assert a.physical_id == b.physical_id
    assert a.physical_id != c.physical_id
    assert cd.parse_physical_id(a.physical_id) == ("redcap.example.org", False, ARN)
    # crhelper's own id after a failed Create:
    assert cd.parse_physical_id("redcap_AppRunnerCustomDomain_ABCD1234") is None
    assert cd.parse_physical_id("") is None
    assert cd.parse_physical_id(None) is None


def test_every_app_runner_region_has_a_zone_and_others_fail_clearly() -> None:
    assert len(apprunner_regions.HOSTED_ZONE_IDS) == 11
    assert all(z.startswith("Z") for z in apprunner_regions.HOSTED_ZONE_IDS.values())
    with pytest.raises(InputError, match="sa-east-1"):
        apprunner_regions.hosted_zone_id("sa-east-1")
    # Without a zone the region does not matter (no alias record is written).
    assert cd.parse_props(props(ServiceArn=ARN.replace("eu-west-2", "sa-east-1"), HostedZoneId=None))


def test_backoff_doubles_up_to_the_maximum() -> None:
    delays = cd.PollPolicy(initial=1, maximum=5).delays()

    assert [next(delays) for _ in range(6)] == [1, 2, 4, 5, 5, 5]


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"CUSTOM_DOMAIN_POLL_INITIAL_SECONDS": "x"}, "CUSTOM_DOMAIN_POLL_INITIAL_SECONDS"),
        ({"CUSTOM_DOMAIN_TIME_MARGIN_SECONDS": "-1"}, "CUSTOM_DOMAIN_TIME_MARGIN_SECONDS"),
        ({"CUSTOM_DOMAIN_POLL_INITIAL_SECONDS": "3", "CUSTOM_DOMAIN_POLL_MAX_SECONDS": "2"}, None),
    ],
)
def test_poll_policy_from_env_fails_fast(env: dict[str, str], field: str | None) -> None:
    with pytest.raises(InputError) as caught:
        cd.PollPolicy.from_env(env)
    if field:
        assert caught.value.field == field
    assert cd.PollPolicy.from_env({}) == cd.PollPolicy()


def test_budget_refuses_a_sleep_past_the_margin() -> None:
    budget = cd.Budget(lambda: 10_500, margin=10)

    budget.sleep(0.01, "something")
    with pytest.raises(cd.BudgetExhausted, match="something"):
        budget.sleep(1, "something")


def test_reasons_are_short_and_keep_the_code() -> None:
    from botocore.exceptions import ClientError

    err = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "x" * 500}}, "AssociateCustomDomain")

    reason = cd.short_reason(err)
    assert reason.startswith("AssociateCustomDomain failed: AccessDeniedException: x")
    assert len(reason) <= 250


# --- record ownership: the real Route 53 error code (moto's differs) ------------------
ALIAS = cd.Record(name="redcap.example.org", type="A", alias_dns="abc.eu-west-2.awsapprunner.com", alias_zone="ZAR")
CNAME = cd.Record(name="_x.redcap.example.org", type="CNAME", value="_y.acm-validations.aws.")


def listing(record: cd.Record, **change: Any) -> dict[str, Any]:
    rrset: dict[str, Any] = dict(record.record_set())
    rrset["Name"] = record.name + "."
    rrset.update(change)
    return {"ResourceRecordSets": [rrset], "IsTruncated": False, "MaxItems": "1"}


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client("route53", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def test_delete_mismatch_from_route53_counts_as_not_ours(stubbed: Any) -> None:
    client, stub = stubbed
    stub.add_response("list_resource_record_sets", listing(ALIAS))
    # AWS: the values changed between our read and our DELETE.
    stub.add_client_error(
        "change_resource_record_sets",
        service_error_code="InvalidChangeBatch",
        service_message="Tried to delete resource record set but the values provided do not match the current values",
    )
    stub.add_response("list_resource_record_sets", listing(CNAME))
    stub.add_response(
        "change_resource_record_sets",
        {"ChangeInfo": {"Id": "/change/C1", "Status": "PENDING", "SubmittedAt": "2026-11-27T00:00:00Z"}},
    )

    deleted = cd.delete_owned_records(client, "Z1", [ALIAS, CNAME])

    assert deleted == [CNAME]


def test_changed_or_missing_records_are_not_deleted(stubbed: Any) -> None:
    client, stub = stubbed
    stub.add_response(
        "list_resource_record_sets",
        listing(ALIAS, AliasTarget={"HostedZoneId": "ZAR", "DNSName": "other.example.", "EvaluateTargetHealth": False}),
    )
    stub.add_response("list_resource_record_sets", listing(CNAME, TTL=60))
    stub.add_response("list_resource_record_sets", {"ResourceRecordSets": [], "IsTruncated": False, "MaxItems": "1"})

    assert cd.delete_owned_records(client, "Z1", [ALIAS, CNAME, CNAME]) == []


def test_other_route53_errors_are_raised(stubbed: Any) -> None:
    from botocore.exceptions import ClientError

    client, stub = stubbed
    stub.add_response("list_resource_record_sets", listing(CNAME))
    stub.add_client_error("change_resource_record_sets", service_error_code="Throttling", http_status_code=400)

    with pytest.raises(ClientError):
        cd.delete_owned_records(client, "Z1", [CNAME])


def test_held_by_compares_normalised_values() -> None:
    assert CNAME.held_by(
        {
            "Name": "_X.redcap.example.org.",
            "Type": "CNAME",
            "TTL": 300,
            "ResourceRecords": [{"Value": "_y.acm-validations.aws"}],
        }
    )
    assert not CNAME.held_by(
        {
            "Name": "_x.redcap.example.org.",
            "Type": "CNAME",
            "TTL": 300,
            "ResourceRecords": [{"Value": "_z.acm-validations.aws."}],
        }
    )
    assert not ALIAS.held_by(
        {
            "Name": "redcap.example.org.",
            "Type": "A",
            "SetIdentifier": "w",
            "AliasTarget": {"HostedZoneId": "ZAR", "DNSName": "abc.eu-west-2.awsapprunner.com."},
        }
    )


def test_existing_association_is_adopted_whatever_app_runner_answers() -> None:
    client = boto3.client("apprunner", region_name="eu-west-2")
    parsed = cd.parse_props(props())
    domain = {"DomainName": "redcap.example.org", "EnableWWWSubdomain": False, "Status": "active"}
    with Stubber(client) as stub:
        stub.add_client_error("associate_custom_domain", service_error_code="InvalidStateException")
        stub.add_response(
            "describe_custom_domains",
            {"DNSTarget": "t.awsapprunner.com", "ServiceArn": ARN, "CustomDomains": [domain], "VpcDNSTargets": []},
        )

        created = cd.ensure_associated(client, parsed, cd.Budget(lambda: 60_000, 1), cd.PollPolicy(initial=0.01))

        assert created is False
        stub.assert_no_pending_responses()


# --- ownership record -------------------------------------------------------------
def test_ownership_record_round_trips_within_txt_limits() -> None:
    long_domain = ".".join(["a" * 55] * 4) + ".org"  # 227 characters: an entry longer than one TXT string
    records = [
        cd.Record(name=f"_{'f' * 32}.{long_domain}", type="CNAME", value="_x.acm-validations.aws."),
        cd.Record(name=long_domain, type="A", alias_dns="abc.eu-west-2.awsapprunner.com", alias_zone="Z3"),
    ]
    entries = [cd.Owned.of(r) for r in records]
    rrset = cd.ownership_record(long_domain, "0123456789abcdef", entries)

    assert rrset["Name"] == f"_redcap-custom-domain.{long_domain}"
    for rr in rrset["ResourceRecords"]:
        strings = rr["Value"][1:-1].split('" "')
        assert all(len(s) <= 255 for s in strings)
    assert any(len(rr["Value"]) > 255 for rr in rrset["ResourceRecords"])  # chunked, not truncated
    texts = [cd._txt_text(rr["Value"]) for rr in rrset["ResourceRecords"]]
    assert texts[0] == "redcap-custom-domain/1 owner=0123456789abcdef"
    assert [t.split(" ") for t in texts[1:]] == [[e.type, e.name, e.digest] for e in entries]


def test_fingerprint_matches_route53_listing_and_catches_changes() -> None:
    ours = cd.Record(name="redcap.example.org", type="A", alias_dns="abc.awsapprunner.com", alias_zone="Z3")
    listed: dict[str, Any] = {
        "Name": "redcap.example.org.",
        "Type": "A",
        "AliasTarget": {"HostedZoneId": "Z3", "DNSName": "abc.awsapprunner.com.", "EvaluateTargetHealth": False},
    }
    assert cd.fingerprint(listed) == cd.Owned.of(ours).digest
    moved = {**listed, "AliasTarget": {**listed["AliasTarget"], "DNSName": "other.awsapprunner.com."}}
    assert cd.fingerprint(moved) != cd.Owned.of(ours).digest
    cname = cd.Record(name="_a.redcap.example.org", type="CNAME", value="_b.acm-validations.aws.")
    listed_cname: dict[str, Any] = {
        "Name": "_a.redcap.example.org.",
        "Type": "CNAME",
        "TTL": 300,
        "ResourceRecords": [{"Value": "_b.acm-validations.aws."}],
    }
    assert cd.fingerprint(listed_cname) == cd.Owned.of(cname).digest
    assert cd.fingerprint({**listed_cname, "TTL": 60}) != cd.Owned.of(cname).digest


def test_wildcard_ownership_name_has_no_inner_star() -> None:
    assert cd.ownership_name("*.example.org") == "_redcap-custom-domain-wildcard.example.org"


def test_domain_too_long_for_its_ownership_record_fails_before_any_call() -> None:
    domain = ".".join(["a" * 60] * 4) + ".org"  # 248 characters: fits alone, not with the prefix
    with pytest.raises(InputError) as err:
        cd.parse_props(props(DomainName=domain))
    assert err.value.field == "DomainName"
    assert cd.parse_props(props(DomainName=domain, HostedZoneId=None)).domain_name == domain


def test_statuses_are_compared_case_insensitively() -> None:
    parsed = cd.parse_props(props(HostedZoneId=None))
    domain = {
        "DomainName": "redcap.example.org",
        "EnableWWWSubdomain": False,
        "Status": "PENDING_CERTIFICATE_DNS_VALIDATION",
        "CertificateValidationRecords": [{"Name": "_a.redcap.example.org.", "Type": "CNAME", "Value": "_b.aws."}],
    }
    assoc = cd.Association(dns_target="x.eu-west-2.awsapprunner.com", domain=domain)

    assert assoc.status == "pending_certificate_dns_validation"
    assert cd._records_ready(parsed, assoc)
