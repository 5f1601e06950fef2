"""Custom::AppRunnerCustomDomain end to end through the CloudFormation protocol.

The real handler (``functions/custom_domain/app.py``) gets events from
``events/custom_domain/``; its response is the PUT captured on 127.0.0.1.
Route 53 is moto's; App Runner is the stateful emulator served on 127.0.0.1
and reached through ``AWS_ENDPOINT_URL_APPRUNNER``.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import types
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from redcap_ctl import custom_resource
from redcap_ctl.apprunner_regions import HOSTED_ZONE_IDS
from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture, capture_cfn_responses
from testkit.emulators.apprunner import AppRunnerEmulator

REGION = "us-east-1"
SANDBOX = {
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
}
DOMAIN = "redcap.example.org"
APPRUNNER_ZONE = HOSTED_ZONE_IDS["us-east-1"]
RECORDS_AFTER = 3
ENV = {
    "CUSTOM_DOMAIN_POLL_INITIAL_SECONDS": "0.01",
    "CUSTOM_DOMAIN_POLL_MAX_SECONDS": "0.04",
    "CUSTOM_DOMAIN_TIME_MARGIN_SECONDS": "1",
    "POWERTOOLS_SERVICE_NAME": "custom-domain-test",
}
FOREIGN = [
    # Records of other owners in the same zone: they must survive everything.
    {"Name": "example.org.", "Type": "MX", "TTL": 3600, "ResourceRecords": [{"Value": "10 mail.example.org."}]},
    {"Name": "other.example.org.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.10"}]},
    {"Name": "_dmarc.example.org.", "Type": "TXT", "TTL": 300, "ResourceRecords": [{"Value": '"v=DMARC1; p=none"'}]},
]


class TickingContext(LambdaContext):
    """A Lambda context whose remaining time runs down like the real one."""

    def __init__(self, remaining_ms: int = 300_000) -> None:
        super().__init__()
        self.set_remaining(remaining_ms)

    def set_remaining(self, remaining_ms: int) -> None:
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class World:
    def __init__(
        self,
        emu: AppRunnerEmulator,
        capture: ResponseCapture,
        context: TickingContext,
        app: ModuleType,
        route53: Any,
    ) -> None:
        self.emu = emu
        self.capture = capture
        self.context = context
        self.route53 = route53
        self.service_arn = emu.add_service("redcap")
        self.zone = self.make_zone()
        self.app = app

    def make_zone(self, name: str = "example.org") -> str:
        zone_id: str = self.route53.create_hosted_zone(Name=name, CallerReference=f"{name}-{id(self)}-{len(name)}")[
            "HostedZone"
        ]["Id"].split("/")[-1]
        if name == "example.org":
            self.route53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": r} for r in FOREIGN]},
            )
        return zone_id

    def event(self, case: str, **props: Any) -> dict[str, Any]:
        event = load_event("custom_domain", f"{case}.json")
        event["ResponseURL"] = self.capture.url()
        rp = event["ResourceProperties"]
        rp["ServiceArn"] = self.service_arn
        if "HostedZoneId" in rp:
            rp["HostedZoneId"] = self.zone
        for key, value in props.items():
            if value is None:
                rp.pop(key, None)
            else:
                rp[key] = value
        return event

    def send(self, event: dict[str, Any]) -> dict[str, Any]:
        self.capture.clear()
        self.app.handler(event, self.context)
        assert len(self.capture.responses) == 1, self.capture.responses
        return self.capture.last

    def create(self, case: str = "create", **props: Any) -> dict[str, Any]:
        return self.send(self.event(case, **props))

    def update(self, old: dict[str, Any], physical_id: str, **props: Any) -> dict[str, Any]:
        event = self.event("create", **props)
        event["RequestType"] = "Update"
        event["PhysicalResourceId"] = physical_id
        event["OldResourceProperties"] = old
        return self.send(event)

    def delete(self, physical_id: str, props: dict[str, Any]) -> dict[str, Any]:
        event = load_event("custom_domain", "delete.json")
        event["ResponseURL"] = self.capture.url()
        event["PhysicalResourceId"] = physical_id
        event["ResourceProperties"] = props
        return self.send(event)

    def rrsets(self, zone: str | None = None) -> list[dict[str, Any]]:
        pages = self.route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone or self.zone)
        return [r for p in pages for r in p["ResourceRecordSets"] if r["Type"] not in ("NS", "SOA")]

    def ours(self, zone: str | None = None) -> list[dict[str, Any]]:
        foreign = {(r["Name"], r["Type"]) for r in FOREIGN}
        return [r for r in self.rrsets(zone) if (r["Name"], r["Type"]) not in foreign]

    def foreign_intact(self, zone: str | None = None) -> bool:
        current = {(r["Name"], r["Type"]): r for r in self.rrsets(zone)}
        return all(
            current.get((r["Name"], r["Type"]), {}).get("ResourceRecords") == r["ResourceRecords"] for r in FOREIGN
        )

    def api_records(self, domain: str = DOMAIN) -> list[dict[str, str]]:
        dom = self.emu.domain(self.service_arn, domain)
        assert dom is not None
        return [{"Name": r["Name"], "Type": r["Type"], "Value": r["Value"]} for r in dom.records]


@pytest.fixture(scope="module")
def stage() -> Iterator[tuple[AppRunnerEmulator, ResponseCapture, ModuleType, Any]]:
    """One emulator server, one response capture and one cold start for the module.

    The handler builds its clients at import (as a Lambda container does), so it
    is loaded once with the emulator's endpoint in the environment; each test
    then gets a clean emulator, a fresh moto Route 53 and a fresh context.
    """
    emu = AppRunnerEmulator(records_after=RECORDS_AFTER, page_size=2)
    with pytest.MonkeyPatch.context() as mp, emu.serve() as url, capture_cfn_responses() as capture:
        mp.setenv("AWS_ENDPOINT_URL_APPRUNNER", url)
        # The cold start happens before the per-test sandbox exists: give it the same fake region.
        for key, value in {**ENV, **SANDBOX}.items():
            mp.setenv(key, value)
        # Clients are slow to build; moto intercepts them whenever a mock is active.
        yield emu, capture, load_handler("custom_domain"), boto3.client("route53")


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, stage: tuple[AppRunnerEmulator, ResponseCapture, ModuleType, Any]
) -> Iterator[World]:
    emu, capture, app, route53 = stage
    emu.reset()
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield World(emu, capture, TickingContext(), app, route53)


def expected_zone_records(world: World, records: list[dict[str, str]], names: list[str], types: list[str]) -> set[Any]:
    target = world.emu.dns_target(world.service_arn)
    cnames = {(r["Name"].lower(), "CNAME", r["Value"]) for r in records}
    aliases = {(f"{n}.", t, f"{target}.") for n in names for t in types}
    return cnames | aliases


OWNER_NAME = f"_redcap-custom-domain.{DOMAIN}."


def ownership_entries(world: World, zone: str | None = None, domain: str = DOMAIN) -> set[tuple[str, str]]:
    """(type, name) pairs the ownership TXT lists; every string within Route 53's 255-character limit."""
    (txt,) = [r for r in world.rrsets(zone) if r["Name"] == f"_redcap-custom-domain.{domain}." and r["Type"] == "TXT"]
    out = set()
    for value in [v["Value"] for v in txt["ResourceRecords"]]:
        strings = re.findall(r'"([^"]*)"', value)
        assert strings
        assert all(len(s) <= 255 for s in strings)
        text = "".join(strings)
        if not text.startswith("redcap-custom-domain/1 owner="):
            kind, name, _digest = text.split(" ")
            out.add((kind, name))
    return out


def zone_records(world: World, zone: str | None = None) -> set[Any]:
    out = set()
    for r in world.ours(zone):
        if r["Name"].startswith("_redcap-custom-domain"):
            continue  # checked by ownership_entries
        if "AliasTarget" in r:
            assert r["AliasTarget"]["HostedZoneId"] == APPRUNNER_ZONE
            dns = r["AliasTarget"]["DNSName"]
            out.add((r["Name"], r["Type"], dns if dns.endswith(".") else dns + "."))
        else:
            assert r["TTL"] == 300
            (value,) = [v["Value"] for v in r["ResourceRecords"]]
            out.add((r["Name"], r["Type"], value))
    return out


# --- Create ---------------------------------------------------------------------
def test_create_with_zone_writes_exactly_the_api_records(world: World) -> None:
    resp = world.create()

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert resp["PhysicalResourceId"] == f"{DOMAIN}|www=false|{world.service_arn}"
    data = resp["Data"]
    api = world.api_records()
    assert json.loads(data["ValidationRecords"]) == api
    assert data["DNSTarget"] == world.emu.dns_target(world.service_arn)
    assert data["Status"] == "pending_certificate_dns_validation"
    assert zone_records(world) == expected_zone_records(world, api, [DOMAIN], ["A"])
    assert ownership_entries(world) == {(t, n.rstrip(".")) for n, t, _v in zone_records(world)}
    assert world.foreign_intact()
    assert len(json.dumps(resp).encode()) < 4096
    dom = world.emu.domain(world.service_arn, DOMAIN)
    assert dom is not None
    assert dom.www is False  # sent explicitly: the API's own default is true
    assert dom.describes >= RECORDS_AFTER


def test_create_without_zone_touches_no_dns(world: World) -> None:
    before = world.rrsets()

    resp = world.create("create_no_zone")

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert json.loads(resp["Data"]["ValidationRecords"]) == world.api_records()
    assert world.rrsets() == before
    assert "DescribeService" not in world.emu.calls


def test_create_with_www_publishes_both_names(world: World) -> None:
    resp = world.create("create_www")

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert resp["PhysicalResourceId"] == f"{DOMAIN}|www=true|{world.service_arn}"
    api = world.api_records()
    assert any(r["Name"].endswith(f".www.{DOMAIN}.") for r in api)
    assert zone_records(world) == expected_zone_records(world, api, [DOMAIN, f"www.{DOMAIN}"], ["A"])
    dom = world.emu.domain(world.service_arn, DOMAIN)
    assert dom is not None
    assert dom.www is True


def test_create_dual_stack_adds_aaaa_alias(world: World) -> None:
    world.service_arn = world.emu.add_service("redcap-v6", ip_address_type="DUAL_STACK")

    resp = world.create()

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert zone_records(world) == expected_zone_records(world, world.api_records(), [DOMAIN], ["A", "AAAA"])


def test_create_reads_every_page_and_adopts_existing_association(world: World) -> None:
    # Four other domains (page size 2) put ours on the last page.
    for n in range(4):
        world.emu.handle("AssociateCustomDomain", {"ServiceArn": world.service_arn, "DomainName": f"d{n}.example.org"})
    world.emu.handle(
        "AssociateCustomDomain",
        {"ServiceArn": world.service_arn, "DomainName": DOMAIN, "EnableWWWSubdomain": False},
    )
    existing = world.emu.domain(world.service_arn, DOMAIN)

    resp = world.create()

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert world.emu.domain(world.service_arn, DOMAIN) is existing  # adopted, not re-created
    assert json.loads(resp["Data"]["ValidationRecords"]) == world.api_records()


def test_sixth_domain_fails_with_the_limit(world: World) -> None:
    for n in range(5):
        world.emu.handle("AssociateCustomDomain", {"ServiceArn": world.service_arn, "DomainName": f"d{n}.example.org"})

    resp = world.create()

    assert resp["Status"] == "FAILED"
    assert "maximum of 5" in resp["Reason"]
    assert world.ours() == []


def test_status_is_reported_as_it_is(world: World) -> None:
    world.emu.active_after = RECORDS_AFTER + 1
    first = world.create()
    assert first["Data"]["Status"] == "pending_certificate_dns_validation"

    again = world.update(world.event("create")["ResourceProperties"], first["PhysicalResourceId"])

    assert again["Status"] == "SUCCESS", again["Reason"]
    assert again["Data"]["Status"] == "active"
    assert again["PhysicalResourceId"] == first["PhysicalResourceId"]


# --- Update ---------------------------------------------------------------------
def test_zone_change_moves_records_without_replacement(world: World) -> None:
    created = world.create()
    old_props = world.event("create")["ResourceProperties"]
    old_zone = world.zone
    new_zone = world.make_zone("example.org")
    world.zone = new_zone

    resp = world.update(old_props, created["PhysicalResourceId"])

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert resp["PhysicalResourceId"] == created["PhysicalResourceId"]
    expected = expected_zone_records(world, world.api_records(), [DOMAIN], ["A"])
    assert zone_records(world, new_zone) == expected
    assert world.ours(old_zone) == []
    assert world.foreign_intact(old_zone)
    assert world.foreign_intact(new_zone)


def test_zone_removed_takes_records_out(world: World) -> None:
    created = world.create()
    old_props = world.event("create")["ResourceProperties"]

    resp = world.update(old_props, created["PhysicalResourceId"], HostedZoneId=None)

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert world.ours() == []
    assert world.foreign_intact()
    assert world.emu.domain(world.service_arn, DOMAIN) is not None


def test_domain_change_is_a_replacement(world: World) -> None:
    created = world.create()
    old_props = world.event("create")["ResourceProperties"]

    resp = world.update(old_props, created["PhysicalResourceId"], DomainName="data.example.org")

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert resp["PhysicalResourceId"] == f"data.example.org|www=false|{world.service_arn}"
    # CloudFormation's cleanup Delete of the old resource:
    cleanup = world.delete(created["PhysicalResourceId"], old_props)
    assert cleanup["Status"] == "SUCCESS", cleanup["Reason"]
    assert world.emu.domain(world.service_arn, DOMAIN) is None
    assert world.emu.domain(world.service_arn, "data.example.org") is not None
    new_api = world.api_records("data.example.org")
    assert zone_records(world) == expected_zone_records(world, new_api, ["data.example.org"], ["A"])
    # The old ownership record went with the old records; the new one stays.
    assert [r["Name"] for r in world.ours() if r["Type"] == "TXT"] == ["_redcap-custom-domain.data.example.org."]
    assert world.foreign_intact()


def test_www_change_replaces_and_cleanup_spares_the_new_association(world: World) -> None:
    created = world.create()
    old_props = world.event("create")["ResourceProperties"]

    resp = world.update(old_props, created["PhysicalResourceId"], EnableWWWSubdomain="true")
    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert resp["PhysicalResourceId"] == f"{DOMAIN}|www=true|{world.service_arn}"
    cleanup = world.delete(created["PhysicalResourceId"], old_props)

    assert cleanup["Status"] == "SUCCESS", cleanup["Reason"]
    dom = world.emu.domain(world.service_arn, DOMAIN)
    assert dom is not None
    assert dom.www is True
    assert zone_records(world) == expected_zone_records(world, world.api_records(), [DOMAIN, f"www.{DOMAIN}"], ["A"])
    # The cleanup Delete left the new resource's ownership record (and so its records) alone.
    assert ownership_entries(world) == {(t, n.rstrip(".")) for n, t, _v in zone_records(world)}


def test_service_change_moves_the_domain(world: World) -> None:
    created = world.create()
    old_props = world.event("create")["ResourceProperties"]
    old_arn = world.service_arn
    world.service_arn = world.emu.add_service("redcap-new")

    resp = world.update(old_props, created["PhysicalResourceId"])
    assert resp["Status"] == "SUCCESS", resp["Reason"]
    cleanup = world.delete(created["PhysicalResourceId"], old_props)

    assert cleanup["Status"] == "SUCCESS", cleanup["Reason"]
    assert world.emu.domain(old_arn, DOMAIN) is None
    assert world.emu.domain(world.service_arn, DOMAIN) is not None
    assert zone_records(world) == expected_zone_records(world, world.api_records(), [DOMAIN], ["A"])
    assert ownership_entries(world) == {(t, n.rstrip(".")) for n, t, _v in zone_records(world)}


# --- Delete ---------------------------------------------------------------------
def test_delete_after_success_removes_only_ours(world: World) -> None:
    created = world.create("create_www")

    resp = world.delete(created["PhysicalResourceId"], world.event("create_www")["ResourceProperties"])

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert world.ours() == []
    assert world.foreign_intact()
    assert world.emu.domain(world.service_arn, DOMAIN) is None
    assert "DisassociateCustomDomain" in world.emu.calls


def test_delete_leaves_a_record_someone_else_changed(world: World) -> None:
    created = world.create()
    changed = {"Name": DOMAIN, "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "198.51.100.7"}]}
    world.route53.change_resource_record_sets(
        HostedZoneId=world.zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": changed}]}
    )

    resp = world.delete(created["PhysicalResourceId"], world.event("create")["ResourceProperties"])

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    left = world.ours()
    assert [(r["Name"], r["Type"], r.get("ResourceRecords")) for r in left] == [
        (f"{DOMAIN}.", "A", [{"Value": "198.51.100.7"}])
    ]


def test_delete_after_failed_create_touches_nothing(world: World) -> None:
    failed = world.create(ServiceArn="not-an-arn")
    assert failed["Status"] == "FAILED"
    world.emu.calls.clear()
    before = world.rrsets()

    resp = world.delete(
        failed["PhysicalResourceId"], world.event("create", ServiceArn="not-an-arn")["ResourceProperties"]
    )

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert world.emu.calls == []
    assert world.rrsets() == before


def test_delete_after_manual_removal_succeeds(world: World) -> None:
    created = world.create()
    world.emu.force_remove_domain(world.service_arn, DOMAIN)

    resp = world.delete(created["PhysicalResourceId"], world.event("create")["ResourceProperties"])

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert "DisassociateCustomDomain" not in world.emu.calls
    # App Runner no longer reports the validation records; the ownership record
    # still lists them, so everything we wrote goes (a created zone can be deleted).
    assert world.ours() == []
    assert world.foreign_intact()


def test_delete_after_service_deleted_removes_our_records(world: World) -> None:
    created = world.create("create_www")
    world.emu.remove_service(world.service_arn)

    resp = world.delete(created["PhysicalResourceId"], world.event("create_www")["ResourceProperties"])

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert world.ours() == []
    assert world.foreign_intact()


def test_delete_after_manual_removal_spares_changed_and_foreign_records(world: World) -> None:
    created = world.create()
    world.emu.force_remove_domain(world.service_arn, DOMAIN)
    (cname, *_) = [r for r in world.ours() if r["Type"] == "CNAME"]
    changed = {**cname, "ResourceRecords": [{"Value": "someone-else.example.net."}]}
    world.route53.change_resource_record_sets(
        HostedZoneId=world.zone, ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": changed}]}
    )

    resp = world.delete(created["PhysicalResourceId"], world.event("create")["ResourceProperties"])

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    left = world.ours()
    assert [(r["Name"], r["Type"], r["ResourceRecords"]) for r in left] == [
        (cname["Name"], "CNAME", [{"Value": "someone-else.example.net."}])
    ]
    assert world.foreign_intact()


def test_delete_when_service_is_gone_succeeds(world: World) -> None:
    created = world.create("create_no_zone")
    world.emu.remove_service(world.service_arn)

    resp = world.delete(created["PhysicalResourceId"], world.event("create_no_zone")["ResourceProperties"])

    assert resp["Status"] == "SUCCESS", resp["Reason"]


def test_delete_failed_is_reported(world: World) -> None:
    created = world.create()
    world.emu.faults.delete_failed.add(DOMAIN)

    resp = world.delete(created["PhysicalResourceId"], world.event("create")["ResourceProperties"])

    assert resp["Status"] == "FAILED"
    assert "delete_failed" in resp["Reason"]


def test_delete_retries_a_busy_service(world: World) -> None:
    created = world.create()
    world.emu.faults.busy["DisassociateCustomDomain"] = 2

    resp = world.delete(created["PhysicalResourceId"], world.event("create")["ResourceProperties"])

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert world.emu.calls.count("DisassociateCustomDomain") == 3
    assert world.emu.domain(world.service_arn, DOMAIN) is None


# --- Failures -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("props", "named"),
    [
        ({"ServiceArn": None}, "ServiceArn"),
        ({"ServiceArn": "arn:aws:apprunner:us-east-1:123456789012:service/redcap"}, "ServiceArn"),
        ({"DomainName": None}, "DomainName"),
        ({"DomainName": "not a domain"}, "DomainName"),
        ({"DomainName": "localhost"}, "DomainName"),
        ({"HostedZoneId": "zone-1; drop"}, "HostedZoneId"),
        ({"EnableWWWSubdomain": "yes"}, "EnableWWWSubdomain"),
    ],
)
def test_bad_properties_fail_before_any_call(world: World, props: dict[str, Any], named: str) -> None:
    before = world.rrsets()

    resp = world.create(**props)

    assert resp["Status"] == "FAILED"
    assert resp["Reason"].startswith(f"{named}:")
    assert world.emu.calls == []
    assert world.rrsets() == before


def test_unknown_region_with_a_zone_fails_clearly(world: World) -> None:
    arn = world.service_arn.replace("us-east-1", "ca-central-1")

    resp = world.create(ServiceArn=arn)

    assert resp["Status"] == "FAILED"
    assert "ca-central-1" in resp["Reason"]
    assert "App Runner hosted zone" in resp["Reason"]
    assert world.emu.calls == []


def test_busy_service_is_retried(world: World) -> None:
    world.emu.faults.busy["AssociateCustomDomain"] = 3

    resp = world.create()

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert world.emu.calls.count("AssociateCustomDomain") == 4


def test_service_busy_past_the_budget_fails_in_time(world: World) -> None:
    world.emu.faults.busy["AssociateCustomDomain"] = 10**6
    world.context.set_remaining(1_300)  # 0.3 s usable after the 1 s margin

    resp = world.create()

    assert resp["Status"] == "FAILED"
    assert "busy" in resp["Reason"]
    assert world.emu.domain(world.service_arn, DOMAIN) is None


def test_access_denied_fails_with_the_api_reason(world: World) -> None:
    world.emu.faults.access_denied.add("AssociateCustomDomain")

    resp = world.create()

    assert resp["Status"] == "FAILED"
    assert "AccessDeniedException" in resp["Reason"]
    assert "not authorized" in resp["Reason"]


def test_create_failed_fails_and_rolls_back(world: World) -> None:
    world.emu.faults.create_failed.add(DOMAIN)

    resp = world.create()

    assert resp["Status"] == "FAILED"
    assert "create_failed" in resp["Reason"]
    dom = world.emu.domain(world.service_arn, DOMAIN)
    assert dom is None or dom.status == "deleting"
    assert world.ours() == []
    # CloudFormation's rollback Delete carries crhelper's id: nothing more to do, nothing touched.
    world.emu.calls.clear()
    cleanup = world.delete(resp["PhysicalResourceId"], world.event("create")["ResourceProperties"])
    assert cleanup["Status"] == "SUCCESS", cleanup["Reason"]
    assert world.emu.calls == []


def test_existing_association_with_other_www_setting_fails_clearly(world: World) -> None:
    world.emu.handle(
        "AssociateCustomDomain", {"ServiceArn": world.service_arn, "DomainName": DOMAIN, "EnableWWWSubdomain": True}
    )

    resp = world.create()

    assert resp["Status"] == "FAILED"
    assert "EnableWWWSubdomain=true" in resp["Reason"]
    dom = world.emu.domain(world.service_arn, DOMAIN)
    assert dom is not None
    assert dom.status == "creating"  # not ours: left exactly as it was


def test_caa_problem_fails_with_the_api_reason(world: World) -> None:
    world.emu.faults.caa_problem.add(DOMAIN)

    resp = world.create()

    assert resp["Status"] == "FAILED"
    assert "CAA" in resp["Reason"]
    assert world.emu.domain(world.service_arn, DOMAIN) is None


def test_records_that_never_appear_fail_before_the_lambda_times_out(world: World) -> None:
    world.emu.records_after = 10**9
    world.context.set_remaining(1_400)

    resp = world.create()

    assert resp["Status"] == "FAILED"
    assert "time out" in resp["Reason"]
    # Rolled back: nothing half-made is left behind for a Delete that cannot see it.
    dom = world.emu.domain(world.service_arn, DOMAIN)
    assert dom is None or dom.status == "deleting"


def test_route53_failure_rolls_back_the_association(world: World) -> None:
    # The zone is for another domain, so Route 53 refuses the batch.
    world.zone = world.make_zone("example.net")

    resp = world.create()

    assert resp["Status"] == "FAILED"
    assert "InvalidChangeBatch" in resp["Reason"] or "not permitted" in resp["Reason"]
    dom = world.emu.domain(world.service_arn, DOMAIN)
    assert dom is None or dom.status == "deleting"


def test_import_time_failure_answers_failed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUSTOM_DOMAIN_POLL_INITIAL_SECONDS", "soon")
    world.app = load_handler("custom_domain")  # a cold start with the bad setting

    resp = world.create()

    assert resp["Status"] == "FAILED"
    assert "CUSTOM_DOMAIN_POLL_INITIAL_SECONDS" in resp["Reason"]


def test_responses_reuse_one_tls_context_built_before_the_records_appear(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []

    def create_default_context(purpose: Any = None) -> Any:
        # Describes so far: the context must exist before the describe that returns the records.
        dom = world.emu.domain(world.service_arn, DOMAIN)
        built.append(dom.describes if dom is not None else -1)
        return ssl.create_default_context()

    custom_resource.response_tls.cache_clear()
    fake_ssl = types.SimpleNamespace(Purpose=ssl.Purpose, create_default_context=create_default_context)
    monkeypatch.setattr(custom_resource, "ssl", fake_ssl)

    created = world.create()
    deleted = world.delete(created["PhysicalResourceId"], world.event("create")["ResourceProperties"])

    assert created["Status"] == "SUCCESS", created["Reason"]
    assert deleted["Status"] == "SUCCESS", deleted["Reason"]
    assert len(built) == 1  # one context for both responses
    assert built[0] < RECORDS_AFTER  # built while App Runner was still preparing the records
    custom_resource.response_tls.cache_clear()


def test_absent_www_property_sends_false(world: World) -> None:
    resp = world.create(EnableWWWSubdomain=None)

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    dom = world.emu.domain(world.service_arn, DOMAIN)
    assert dom is not None
    assert dom.www is False  # the API would have defaulted to true


def test_delete_succeeds_when_one_of_our_records_is_already_gone(world: World) -> None:
    created = world.create()
    (alias,) = [r for r in world.ours() if r["Type"] == "A"]
    world.route53.change_resource_record_sets(
        HostedZoneId=world.zone, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": alias}]}
    )

    resp = world.delete(created["PhysicalResourceId"], world.event("create")["ResourceProperties"])

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert world.ours() == []
    assert world.foreign_intact()


def test_delete_has_no_crhelper_pause() -> None:
    app = load_handler("custom_domain")
    assert app.helper._sleep_on_delete == 0


def test_wildcard_domain_round_trips_through_route53(world: World) -> None:
    created = world.create(DomainName="*.apps.example.org")
    assert created["Status"] == "SUCCESS", created["Reason"]
    names = {r["Name"] for r in world.ours()}
    assert "_redcap-custom-domain-wildcard.apps.example.org." in names

    resp = world.delete(
        created["PhysicalResourceId"], world.event("create", DomainName="*.apps.example.org")["ResourceProperties"]
    )

    assert resp["Status"] == "SUCCESS", resp["Reason"]
    assert world.ours() == []
    assert world.foreign_intact()
