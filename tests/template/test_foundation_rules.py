"""Foundation: template Rules refuse bad parameter combinations before anything is created.

A small evaluator runs the Rules of ``template.yaml`` the way CloudFormation does
(RuleCondition, then every Assert) for given parameter values, so these tests fail
if a rule is removed, loosened or tightened.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from testkit.template import defaults, load

CPUS = ["0.25 vCPU", "0.5 vCPU", "1 vCPU", "2 vCPU", "4 vCPU"]
MEMORIES = ["0.5 GB", "1 GB", "2 GB", "3 GB", "4 GB", "6 GB", "8 GB", "10 GB", "12 GB"]
# App Runner's documented pairs, written independently of the template.
VALID_PAIRS = {
    ("0.25 vCPU", "0.5 GB"),
    ("0.25 vCPU", "1 GB"),
    ("0.5 vCPU", "1 GB"),
    ("1 vCPU", "2 GB"),
    ("1 vCPU", "3 GB"),
    ("1 vCPU", "4 GB"),
    ("2 vCPU", "4 GB"),
    ("2 vCPU", "6 GB"),
    ("4 vCPU", "8 GB"),
    ("4 vCPU", "10 GB"),
    ("4 vCPU", "12 GB"),
}
# A deployable baseline: defaults plus the one thing REDCap needs besides them (a mail identity).
GOOD = {"DomainName": "redcap.example.org", "RedcapSourceZip": "s3://releases/redcap15.5.1.zip"}


def _eval(node: Any, params: dict[str, Any]) -> Any:
    if isinstance(node, dict) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return str(params[value])
        if key == "Fn::Equals":
            left, right = (_eval(v, params) for v in value)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not _eval(value[0], params)
        if key == "Fn::And":
            return all(_eval(v, params) for v in value)
        if key == "Fn::Or":
            return any(_eval(v, params) for v in value)
        if key == "Fn::Contains":
            items, item = value
            return str(_eval(item, params)) in [str(_eval(i, params)) for i in items]
        raise AssertionError(f"rule function not supported by CloudFormation Rules or by this evaluator: {key}")
    if isinstance(node, list):
        return [_eval(v, params) for v in node]
    return node


def violations(**overrides: Any) -> dict[str, list[str]]:
    """Rule name -> failed assertion descriptions, for defaults + GOOD + overrides."""
    params = {**defaults(), **GOOD, **overrides}
    failed: dict[str, list[str]] = {}
    for name, rule in load()["Rules"].items():
        if "RuleCondition" in rule and not _eval(rule["RuleCondition"], params):
            continue
        for assertion in rule["Assertions"]:
            if not _eval(assertion["Assert"], params):
                failed.setdefault(name, []).append(assertion["AssertDescription"])
    return failed


def test_defaults_with_a_domain_pass() -> None:
    assert violations() == {}


@pytest.mark.parametrize(
    "params",
    [
        {"DnsMode": "External"},
        {"DnsMode": "External", "DomainName": "", "SesEmailIdentity": "redcap@example.org"},
        {"DnsMode": "CreateZone"},
        {"DnsMode": "ExistingZone", "HostedZoneId": "Z0123456789ABC"},
        {"Cpu": "4 vCPU", "Memory": "8 GB"},
    ],
)
def test_good_combinations_pass(params: dict[str, str]) -> None:
    assert violations(**params) == {}


def test_existing_zone_without_zone_id_is_refused() -> None:
    failed = violations(DnsMode="ExistingZone", HostedZoneId="")
    assert list(failed) == ["ExistingZoneNeedsHostedZoneId"]
    assert "HostedZoneId" in failed["ExistingZoneNeedsHostedZoneId"][0]


@pytest.mark.parametrize("mode", ["CreateZone", "External"])
def test_zone_id_without_existing_zone_is_refused(mode: str) -> None:
    assert list(violations(DnsMode=mode, HostedZoneId="Z0123456789ABC")) == ["HostedZoneIdOnlyWithExistingZone"]


def test_create_zone_without_domain_is_refused() -> None:
    failed = violations(DnsMode="CreateZone", DomainName="", SesEmailIdentity="redcap@example.org")
    assert list(failed) == ["ManagedDnsNeedsDomainName"]
    assert "DomainName" in failed["ManagedDnsNeedsDomainName"][0]


def test_existing_zone_without_domain_is_refused() -> None:
    failed = violations(
        DnsMode="ExistingZone", HostedZoneId="Z0123456789ABC", DomainName="", SesEmailIdentity="a@example.org"
    )
    assert list(failed) == ["ManagedDnsNeedsDomainName"]


def test_no_mail_identity_is_refused() -> None:
    assert list(violations(DnsMode="External", DomainName="", SesEmailIdentity="")) == ["SesNeedsAnIdentity"]


@pytest.mark.parametrize(("cpu", "memory"), list(itertools.product(CPUS, MEMORIES)))
def test_cpu_memory_pairs(cpu: str, memory: str) -> None:
    failed = violations(Cpu=cpu, Memory=memory)
    if (cpu, memory) in VALID_PAIRS:
        assert failed == {}
    else:
        assert list(failed) == ["CpuMemoryPair"]
        assert "App Runner pair" in failed["CpuMemoryPair"][0]


def test_parameter_allowed_values_match_the_rule_domain() -> None:
    params = load()["Parameters"]
    assert params["Cpu"]["AllowedValues"] == CPUS
    assert params["Memory"]["AllowedValues"] == MEMORIES
    assert (params["Cpu"]["Default"], params["Memory"]["Default"]) == ("2 vCPU", "4 GB")


def test_evaluator_rejects_unknown_functions() -> None:
    with pytest.raises(AssertionError, match="Fn::ValueOf"):
        _eval({"Fn::ValueOf": ["x", "y"]}, {})


# ----- REDCap image build: exactly one of RedcapSourceZip and ImageUri -----
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:15.5.1"


@pytest.mark.parametrize(
    ("params", "refused"),
    [
        ({"RedcapSourceZip": "s3://b/redcap15.5.1.zip", "ImageUri": ""}, False),
        ({"RedcapSourceZip": "", "ImageUri": IMAGE}, False),
        ({"RedcapSourceZip": "", "ImageUri": ""}, True),
        ({"RedcapSourceZip": "s3://b/redcap15.5.1.zip", "ImageUri": IMAGE}, True),
    ],
)
def test_exactly_one_image_source(params: dict[str, str], refused: bool) -> None:
    found = violations(**params)
    assert ("ExactlyOneImageSource" in found) is refused
    assert set(found) <= {"ExactlyOneImageSource"}
    if refused:
        assert "exactly one of RedcapSourceZip" in found["ExactlyOneImageSource"][0]
