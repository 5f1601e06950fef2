"""Issue 18 item 5: optional LDAP/LDAPS egress, from REDCap's own security group only, on both compute types.

The template pads LdapCidrs with two loopback ranges and selects three slots from it (docs/sign-in.md says
why); ``_cidr`` evaluates that Fn::Select/Fn::Split/Fn::Sub exactly as CloudFormation documents them.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from testkit import ROOT
from testkit.template import Rendered, load

COMPUTE_GROUP = {"AppRunner": "AppRunnerSecurityGroup", "EcsExpress": "ExpressTaskSecurityGroup"}
PORTS = {"389": {(389, 389)}, "636": {(636, 636)}, "3268-3269": {(3268, 3269)}}
PADDING = {"127.0.0.1/32", "127.0.0.2/32"}


def _cidr(node: Any, params: dict[str, Any]) -> str:
    """Fn::Select [i, Fn::Split [sep, Fn::Sub text]] with the stack's parameters."""
    index, split = node["Fn::Select"]
    sep, sub = split["Fn::Split"]
    text = re.sub(r"\$\{([A-Za-z]+)\}", lambda m: str(params[m.group(1)]), sub["Fn::Sub"])
    return text.split(sep)[int(index)]


def _ldap_rules(compute: str, **params: Any) -> set[tuple[str, str, int, int]]:
    """(security group, CIDR, from, to) of every LDAP egress rule that opens something."""
    rendered = Rendered(ComputeType=compute, **params)
    out = set()
    for name, resource in rendered.of_type("AWS::EC2::SecurityGroupEgress").items():
        if not name.startswith("LdapEgress"):
            continue
        props = resource["Properties"]
        assert props["IpProtocol"] == "tcp"
        cidr = _cidr(props["CidrIp"], rendered.params)
        if cidr in PADDING:
            continue  # an unused slot: loopback, which no packet leaves the task for
        out.add((props["GroupId"]["Ref"], cidr, props["FromPort"], props["ToPort"]))
    return out


@pytest.mark.parametrize("compute", sorted(COMPUTE_GROUP))
def test_no_ldap_egress_by_default(compute: str) -> None:
    rendered = Rendered(ComputeType=compute)
    assert not [n for n in rendered.resources if n.startswith("LdapEgress")]
    assert not rendered.condition("HasLdap")


@pytest.mark.parametrize("compute", sorted(COMPUTE_GROUP))
@pytest.mark.parametrize("ports", ["636", "389", "389,636", "636,3268-3269", "389,636,3268-3269"])
@pytest.mark.parametrize(
    "cidrs", ["10.20.0.0/24", "10.20.0.0/24,192.0.2.7/32", "10.20.0.0/24,10.21.0.0/24,10.22.0.0/24"]
)
def test_ldap_egress_opens_exactly_the_ports_to_the_ranges(compute: str, ports: str, cidrs: str) -> None:
    expected = {
        (COMPUTE_GROUP[compute], cidr, low, high)
        for cidr in cidrs.split(",")
        for kind in ports.split(",")
        for low, high in PORTS[kind]
    }
    assert _ldap_rules(compute, LdapCidrs=cidrs, LdapPorts=ports) == expected


@pytest.mark.parametrize("compute", sorted(COMPUTE_GROUP))
def test_unused_slots_are_loopback_and_distinct(compute: str) -> None:
    # Duplicate rules in one security group would fail the deployment: every slot must differ.
    rendered = Rendered(ComputeType=compute, LdapCidrs="10.20.0.0/24", LdapPorts="389,636,3268-3269")
    egress = {n: r["Properties"] for n, r in rendered.of_type("AWS::EC2::SecurityGroupEgress").items()}
    ldap = [p for n, p in egress.items() if n.startswith("LdapEgress")]
    assert len(ldap) == 9
    keys = [(p["FromPort"], _cidr(p["CidrIp"], rendered.params)) for p in ldap]
    assert len(set(keys)) == len(keys)
    assert {c for _, c in keys} == {"10.20.0.0/24"} | PADDING


def test_the_compute_security_groups_carry_no_ldap_of_their_own() -> None:
    # Only the LdapEgress* rules open directory ports: nothing inline, no other group, no ingress.
    template = load()
    for group in COMPUTE_GROUP.values():
        ports = {r["FromPort"] for r in template["Resources"][group]["Properties"]["SecurityGroupEgress"]}
        assert ports.isdisjoint({389, 636, 3268, 3269}), group
    for name, resource in template["Resources"].items():
        if name.startswith("LdapEgress"):
            assert resource["Type"] == "AWS::EC2::SecurityGroupEgress"
            assert resource["Properties"]["GroupId"] == {
                "Fn::If": ["UseAppRunner", {"Ref": "AppRunnerSecurityGroup"}, {"Ref": "ExpressTaskSecurityGroup"}]
            }


def test_ldap_parameters_are_grouped_and_documented() -> None:
    groups = load()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (group,) = [g for g in groups if "LdapCidrs" in g["Parameters"]]
    assert group["Parameters"] == ["LdapCidrs", "LdapPorts"]
    sign_in = (ROOT / "docs" / "sign-in.md").read_text(encoding="utf-8")
    for value in load()["Parameters"]["LdapPorts"]["AllowedValues"]:
        assert f"`{value}`" in sign_in
    assert "](docs/sign-in.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
