"""Foundation: template Rules refuse bad parameter combinations before anything is created.

A small evaluator runs the Rules of ``template.yaml`` the way CloudFormation does
(RuleCondition, then every Assert) for given parameter values, so these tests fail
if a rule is removed, loosened or tightened.
"""

from __future__ import annotations

import itertools
import re
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
GOOD = {
    "DomainName": "redcap.example.org",
    "RedcapSourceZip": "s3://releases/redcap15.5.1.zip",
    "NotificationEmail": "ops@example.org",
}


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


# ----------------------------------------------------------------------------- issue 13, finding 7
# Combinations that used to fail half-way through a deployment are refused before anything is created.
def _allowed(name: str) -> list[str]:
    return [str(v) for v in load()["Parameters"][name]["AllowedValues"]]


def test_capacities_are_multiples_of_half_an_acu_within_aurora_limits() -> None:
    for name, low in (("DbMinCapacity", 0.0), ("DbMaxCapacity", 1.0)):
        values = [float(v) for v in _allowed(name)]
        assert all((v * 2).is_integer() for v in values), name
        assert min(values) == low
        assert max(values) == 256


@pytest.mark.parametrize(("low", "high"), itertools.product(["0", "0.5", "4", "16", "256"], ["1", "4", "8", "256"]))
def test_minimum_capacity_above_maximum_is_refused(low: str, high: str) -> None:
    failed = violations(DbMinCapacity=low, DbMaxCapacity=high, DbEngineVersion="8.0.mysql_aurora.3.08.2")
    if float(low) <= float(high):
        assert failed == {}
    else:
        assert failed == {"DbCapacityRange": ["DbMinCapacity must not exceed DbMaxCapacity."]}


def test_every_minimum_capacity_is_covered_by_the_range_rule() -> None:
    for low in _allowed("DbMinCapacity"):
        above = [h for h in _allowed("DbMaxCapacity") if float(h) < float(low)]
        for high in above:
            assert "DbCapacityRange" in violations(DbMinCapacity=low, DbMaxCapacity=high), (low, high)


@pytest.mark.parametrize(
    ("version", "refused"),
    [("8.0.mysql_aurora.3.07.1", True), ("8.0.mysql_aurora.3.08.0", False), ("8.0.mysql_aurora.3.10.1", False)],
)
def test_auto_pause_needs_engine_3_08(version: str, refused: bool) -> None:
    failed = violations(DbMinCapacity="0", DbEngineVersion=version)
    assert ("DbAutoPauseNeedsEngine308" in failed) is refused
    assert violations(DbMinCapacity="0.5", DbEngineVersion=version) == {}


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("8.0.mysql_aurora.3.04.3", False),  # no Data API
        ("8.0.mysql_aurora.3.06.1", False),
        ("8.0.mysql_aurora.3.07.1", True),
        ("8.0.mysql_aurora.3.08.2", True),
        ("8.0.mysql_aurora.3.10.0", True),
        ("8.0.mysql_aurora.3.07.10", False),  # the auto-pause rule lists 3.07.0-3.07.9
    ],
)
def test_engine_version_pattern_requires_the_data_api(version: str, ok: bool) -> None:
    assert bool(re.fullmatch(load()["Parameters"]["DbEngineVersion"]["AllowedPattern"], version)) is ok


@pytest.mark.parametrize(("low", "high"), [(1, 1), (2, 10), (25, 25), (3, 2), (25, 1), (10, 9)])
def test_min_size_above_max_size_is_refused(low: int, high: int) -> None:
    failed = violations(MinSize=low, MaxSize=high)
    if low <= high:
        assert failed == {}
    else:
        assert failed == {"InstanceRange": ["MinSize (warm instances) must not exceed MaxSize."]}


def test_every_min_size_is_covered_by_the_range_rule() -> None:
    spec = load()["Parameters"]
    sizes = range(spec["MinSize"]["MinValue"], spec["MaxSize"]["MaxValue"] + 1)
    for low, high in itertools.product(sizes, sizes):
        assert ("InstanceRange" in violations(MinSize=low, MaxSize=high)) is (low > high), (low, high)


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
