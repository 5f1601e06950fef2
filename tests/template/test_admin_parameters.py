"""Issue 18 items 2 and 3: the administrator's parameters (request timeout, upload size, timezone,
Aurora's windows), each validated by the template and, for the container's, by the image's contract."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from testkit import ROOT
from testkit.template import Rendered, load

from .test_foundation_rules import violations

PARAMETERS = load()["Parameters"]
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap@sha256:" + "b" * 64
CONTRACT = json.loads((ROOT / "containers/redcap/rootfs/opt/redcap-image/contract.json").read_text())
CONFIG_PHP = (ROOT / "containers/redcap/rootfs/opt/redcap-image/lib/config.php").read_text()
NEW = ["RequestTimeoutSeconds", "MaxUploadSizeMB", "Timezone", "DbMaintenanceWindow", "DbBackupWindow"]
ENV = {
    "REQUEST_TIMEOUT_SECONDS": "RequestTimeoutSeconds",
    "MAX_UPLOAD_SIZE_MB": "MaxUploadSizeMB",
    "TIMEZONE": "Timezone",
}


def _accepts(name: str, value: str) -> bool:
    return re.fullmatch(PARAMETERS[name]["AllowedPattern"], value) is not None


def test_request_timeout_is_the_shared_block_right_after_the_health_check() -> None:
    # BRIEF's shared contract between the php and longreq helpers, byte for byte in meaning.
    assert PARAMETERS["RequestTimeoutSeconds"] == {
        "Type": "Number",
        "Default": 300,
        "MinValue": 60,
        "MaxValue": 3600,
        "Description": "Longest request REDCap serves, in seconds: PHP's max_execution_time and, on ECS Express, "
        "the load balancer's idle timeout. App Runner always ends a request at 120 s (docs/compute.md).",
    }
    names = list(PARAMETERS)
    start = names.index("HealthCheckPath")
    assert names[start + 1 : start + 1 + len(NEW)] == NEW
    assert names[start + 1 + len(NEW)] == "Cpu"


@pytest.mark.parametrize(("variable", "parameter"), ENV.items())
@pytest.mark.parametrize("compute", ["AppRunner", "EcsExpress"])
def test_both_compute_types_pass_the_settings_to_the_container(compute: str, variable: str, parameter: str) -> None:
    rendered = Rendered(
        ComputeType=compute, ImageUri=IMAGE, **{parameter: {"Timezone": "Europe/Paris"}.get(parameter, 900)}
    )
    if compute == "AppRunner":
        config = rendered.props("AppRunnerService")["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]
        env = {v["Name"]: v["Value"] for v in config["RuntimeEnvironmentVariables"]}
    else:
        container = rendered.props("ExpressService")["PrimaryContainer"]
        env = {v["Name"]: v["Value"] for v in container["Environment"]}
    assert str(env[variable]) == {"Timezone": "Europe/Paris"}.get(parameter, "900")
    assert CONTRACT["variables"][variable]["required"] is True


@pytest.mark.parametrize(
    ("parameter", "kind"), [("RequestTimeoutSeconds", "request_timeout"), ("MaxUploadSizeMB", "upload_mb")]
)
def test_the_image_refuses_the_same_range_as_the_template(parameter: str, kind: str) -> None:
    low, high = PARAMETERS[parameter]["MinValue"], PARAMETERS[parameter]["MaxValue"]
    case = re.search(rf"case '{kind}':.*?rc_whole_number_between\(\$value, (\d+), (\d+)\)", CONFIG_PHP, re.DOTALL)
    assert case, kind
    assert (int(case.group(1)), int(case.group(2))) == (low, high)
    assert {v["kind"] for v in CONTRACT["variables"].values()} >= {"request_timeout", "upload_mb", "timezone"}


def test_upload_minimum_passes_redcaps_configuration_check() -> None:
    # REDCap's Configuration Check: upload_max_filesize and post_max_size above 10 MB.
    assert PARAMETERS["MaxUploadSizeMB"]["MinValue"] > 10
    assert PARAMETERS["MaxUploadSizeMB"]["Default"] == 64


def _zone_names() -> list[str]:
    """Canonical zones from this machine's tzdata (zone1970.tab), the IANA database's own list."""
    table = Path("/usr/share/zoneinfo/zone1970.tab")
    if not table.is_file():
        pytest.skip("no tzdata on this machine")
    return [line.split("\t")[2] for line in table.read_text().splitlines() if line and not line.startswith("#")]


def test_the_timezone_pattern_takes_every_canonical_iana_zone() -> None:
    zones = _zone_names()
    assert len(zones) > 300
    assert [z for z in zones if not _accepts("Timezone", z)] == []
    assert _accepts("Timezone", "UTC")


@pytest.mark.parametrize(
    "value",
    ["", "utc", "europe/paris", "Europe/", "/Europe/Paris", "Europe/Paris/", "../etc/passwd", "Europe/Paris;id",
     "Europe/Paris\n", "Europe Paris", "America/A/B/C"],
)  # fmt: skip
def test_the_timezone_pattern_refuses_what_is_no_zone_name(value: str) -> None:
    assert not _accepts("Timezone", value)


@pytest.mark.parametrize("value", ["", "sun:05:00-sun:05:30", "sat:23:30-sun:00:30", "mon:00:00-mon:01:00"])
def test_maintenance_window_takes_rds_format(value: str) -> None:
    assert _accepts("DbMaintenanceWindow", value)


@pytest.mark.parametrize(
    "value",
    ["Sun:05:00-Sun:05:30", "sun:5:00-sun:05:30", "sun:24:00-mon:00:30", "sun:05:60-sun:06:30", "05:00-05:30",
     "sun:05:00 - sun:05:30", "sun:05:00-sun:05:30,", "xyz:05:00-sun:05:30"],
)  # fmt: skip
def test_maintenance_window_refuses_other_formats(value: str) -> None:
    assert not _accepts("DbMaintenanceWindow", value)


@pytest.mark.parametrize("value", ["", "03:00-03:30", "23:45-00:15", "00:00-23:59"])
def test_backup_window_takes_rds_format(value: str) -> None:
    assert _accepts("DbBackupWindow", value)


@pytest.mark.parametrize("value", ["3:00-03:30", "24:00-00:30", "03:00-03:60", "sun:03:00-sun:03:30", "03:00"])
def test_backup_window_refuses_other_formats(value: str) -> None:
    assert not _accepts("DbBackupWindow", value)


def _cluster(**params: Any) -> dict[str, Any]:
    return Rendered(ImageUri=IMAGE, **params).props("DbCluster")


def test_empty_windows_leave_rdss_choice() -> None:
    props = _cluster()
    assert "PreferredMaintenanceWindow" not in props
    assert "PreferredBackupWindow" not in props


def test_windows_reach_the_cluster() -> None:
    props = _cluster(DbMaintenanceWindow="sun:05:00-sun:05:30", DbBackupWindow="03:00-03:30")
    assert props["PreferredMaintenanceWindow"] == "sun:05:00-sun:05:30"
    assert props["PreferredBackupWindow"] == "03:00-03:30"


@pytest.mark.parametrize(
    ("maintenance", "backup", "refused"),
    [
        ("", "", False),
        ("sun:05:00-sun:05:30", "03:00-03:30", False),
        ("sun:05:00-sun:05:30", "", True),
        ("", "03:00-03:30", True),
    ],
)
def test_windows_are_set_together(maintenance: str, backup: str, refused: bool) -> None:
    failed = violations(DbMaintenanceWindow=maintenance, DbBackupWindow=backup)
    assert ("DbWindowsSetTogether" in failed) is refused
    assert set(failed) <= {"DbWindowsSetTogether"}
