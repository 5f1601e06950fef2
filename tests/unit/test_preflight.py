"""make deploy's preflight: what parameter patterns cannot refuse, refused before SAM runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from preflight.__main__ import ROOT, overrides, problems


def test_host_bits_are_refused_with_the_network_address() -> None:
    found = problems({"AdminCidrs": "203.0.113.0/24,203.0.113.7/24"})
    assert found == [
        "AdminCidrs: 203.0.113.7/24 is not an IPv4 network address: write the network address, 203.0.113.0/24"
    ]


@pytest.mark.parametrize("name", ["AdminCidrs", "AllowedCidrs", "RateLimitExemptCidrs", "LdapCidrs"])
def test_every_cidr_list_is_checked(name: str) -> None:
    assert problems({name: "10.0.0.1/8"})
    assert problems({name: "10.0.0.0/8,192.168.1.0/24"}) == []


def test_change_me_is_refused_and_other_values_pass() -> None:
    assert problems({"RedcapSourceZip": "CHANGE_ME", "Environment": "dev"}) == [
        "RedcapSourceZip: still CHANGE_ME (docs/runbook.md, step 3)"
    ]


@pytest.mark.parametrize("env", ["dev", "prod", "dev-express", "prod-express"])
def test_the_shipped_samconfig_is_refused_until_filled_in(env: str) -> None:
    assert "CHANGE_ME" in overrides(ROOT / "samconfig.toml", env).values()
    done = subprocess.run(  # noqa: S603 -- a fixed command: this interpreter and the module
        [sys.executable, "-m", "preflight", env],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "tests")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "still CHANGE_ME" in done.stderr


def test_an_unknown_environment_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no environment 'nope'"):
        overrides(ROOT / "samconfig.toml", "nope")


def test_make_deploy_runs_the_preflight_before_sam() -> None:
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = text.split("\ndeploy:", 1)[1].split("\n\n", 1)[0]
    lines = [line.strip() for line in recipe.splitlines()[1:]]
    assert "-m preflight $(ENV)" in lines[0]
    assert "build" in lines[1]
    assert "deploy" in lines[2]
