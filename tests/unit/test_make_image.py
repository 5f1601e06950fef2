"""Issue 17, item 9: ``make image`` checks REDCAP_ZIP before it installs tools or downloads the CA bundle."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from testkit import ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")

# What the image target would run first: the tool installer and the CA bundle download.
FIRST_STEPS = (".ci/install-container-tools", "curl", "truststore.pki.rds.amazonaws.com")


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- make from PATH, fixed argv, no shell
        ["make", "--no-print-directory", "-C", str(ROOT), *args],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.parametrize("dry_run", [["-n"], []], ids=["make -n", "make"])
@pytest.mark.parametrize(
    ("zip_arg", "message"),
    [
        ([], "REDCAP_ZIP=path/to/redcapX.Y.Z.zip is required"),
        (["REDCAP_ZIP="], "REDCAP_ZIP=path/to/redcapX.Y.Z.zip is required"),
        (["REDCAP_ZIP=/nonexistent/redcap15.0.0.zip"], "REDCAP_ZIP=/nonexistent/redcap15.0.0.zip is not a file"),
    ],
    ids=["unset", "empty", "missing file"],
)
def test_image_stops_at_once_without_a_release_zip(dry_run: list[str], zip_arg: list[str], message: str) -> None:
    # RDS_CA_BUNDLE unset: the CA bundle download would be a prerequisite if make got that far.
    result = _make(*dry_run, "image", *zip_arg)
    assert result.returncode == 2
    assert message in result.stderr
    # Nothing ran, or would have run: make stopped while reading the Makefile.
    assert result.stdout == ""
    assert not any(step in result.stderr for step in FIRST_STEPS)


def test_image_with_a_release_zip_plans_the_tools_then_the_build(tmp_path: Path) -> None:
    release = tmp_path / "redcap15.0.0.zip"
    release.write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip: make only checks that the file exists
    result = _make("-n", "image", f"REDCAP_ZIP={release}", "RDS_CA_BUNDLE=global-bundle.pem")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ".ci/install-container-tools"
    assert any(f'--zip "{release}"' in line for line in lines)


def test_other_targets_do_not_need_the_zip() -> None:
    result = _make("-n", "help")
    assert result.returncode == 0, result.stderr
    assert "REDCAP_ZIP" not in result.stderr
