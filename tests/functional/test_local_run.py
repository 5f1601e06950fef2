"""``make local`` end to end, through the real Makefile target.

One test runs the whole thing (CI runs it on every change), one runs it with
ComputeType=EcsExpress; the last breaks one emulated service and checks that
``make local`` says so and exits 1.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from testkit import ROOT

pytestmark = pytest.mark.slow


def make_local(*variables: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``make local`` with make command-line ``variables`` (``"BREAK=iam"``) and extra environment."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MAKE_LOCAL_", "MAKEFLAGS", "MFLAGS")) and k not in ("BREAK", "ONLY", "COMPUTE")
    }
    make = shutil.which("make")
    assert make is not None, "make is needed to run the real target"
    return subprocess.run(  # noqa: S603 -- fixed argv, no shell
        [make, "--no-print-directory", "local", *variables],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_local_runs_every_handler_and_passes() -> None:
    proc = make_local()
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    assert "make local: all" in out
    assert "FAILED" not in out
    for step in (
        "Create: records appear in Route 53",
        "Delete: records gone",
        "Create: account without a detector",
        "Create: partly enabled detector",
        "tick succeeds",
        "without the header",
        "createSecret",
        "finishSecret",
        "next tick succeeds",
        "hygiene",
        "Create: build through CodeBuild, digest-pinned ImageUri",
        "Update: upgrade snapshots the cluster first",
        "Update: rollback reuses the image",
        "Delete: images stay",
    ):
        assert step in out, f"step {step!r} missing from the table:\n{out}"


def test_make_local_runs_the_ecs_express_path_too() -> None:
    proc = make_local(MAKE_LOCAL_COMPUTE="EcsExpress")
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    assert "ComputeType=EcsExpress" in out
    assert "make local: all" in out
    assert "DnsMode=CreateZone" in out
    # Issue 17 item 2: a first deploy's whole order, in this order.
    order = [
        "Create: the stack completes, certificate pending",
        "Before delegation: the schedule changes nothing",
        "Later: the administrator delegates, ACM validates",
        "ACM event: HTTPS on the domain starts by itself",
        "Delete: everything it wrote is gone, the zone deletes",
    ]
    positions = [out.find(step) for step in order]
    assert -1 not in positions, out
    assert positions == sorted(positions)
    assert "no HostedZoneNotEmpty" in out
    for step in (
        "tick succeeds",
        "ECS Express service redeployed",
        "next tick succeeds",
    ):
        assert step in out, f"step {step!r} missing from the table:\n{out}"
    assert "App Runner redeployed" not in out


def test_make_local_dns_external_through_the_makefile_variables() -> None:
    # COMPUTE and DNS as `make local COMPUTE=EcsExpress DNS=External` passes them (make reads the environment too).
    proc = make_local(COMPUTE="EcsExpress", DNS="External", MAKE_LOCAL_ONLY="custom-domain")
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-2000:]
    assert "DnsMode=External, ComputeType=EcsExpress" in out
    assert "CustomDomainValidationRecords lists the CNAME for your DNS provider" in out
    assert "created the validation CNAME at the external DNS provider" in out
    assert "ACM event: HTTPS on the domain starts by itself" in out
    refused = make_local(DNS="External")
    assert refused.returncode != 0
    assert "DNS=External runs with COMPUTE=EcsExpress only" in refused.stderr


def test_make_local_fails_loudly_when_an_emulated_service_breaks() -> None:
    # The form the error message and docs/local.md advise: make variables, not runner options.
    proc = make_local("BREAK=guardduty", "ONLY=guardduty")
    out = proc.stdout
    assert proc.returncode != 0, out
    # make reports the recipe's exit status; the runner itself exits 1.
    assert "Error 1" in proc.stderr
    last = out.strip().splitlines()[-1]
    assert last.startswith("make local: FAILED: ")
    assert "GuardDuty / Create: account without a detector" in last
    assert "InjectedFault" in out
    assert "broken on purpose (make local BREAK=guardduty)" in out
    assert "Create: build through CodeBuild" not in out, "ONLY=guardduty still ran other areas"
