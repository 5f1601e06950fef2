"""Deploying needs only the SAM CLI: ``make deploy`` and ``make deploy-tools`` (docs/runbook.md).

``make -n`` prints what a target would run without running it; ``-B`` also prints every
prerequisite as if it had to be remade, so a dependency on checkov, cfn-guard or the test
venv would show even on a machine where they are already installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib

import pytest

from testkit import ROOT

DEPLOY_ENVS = ["dev", "prod", "dev-express", "prod-express"]
# What deploying must never need: the security scanners and the test environment (`make test`'s).
NOT_FOR_DEPLOY = ("checkov", "cfn-guard", "npm", "testkit.guard", "requirements/dev.txt", ".venv/", "pytest")


def make_n(*args: str) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make is not None, "make is needed to read the real Makefile"
    # A caller's ENV/REGION/MAKEFLAGS must not leak into the dry run.
    env = {k: v for k, v in os.environ.items() if k not in ("ENV", "REGION", "MAKEFLAGS", "MFLAGS", "BREAK", "ONLY")}
    return subprocess.run(  # noqa: S603 -- fixed argv, no shell
        [make, "--no-print-directory", "-n", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("env", DEPLOY_ENVS)
@pytest.mark.parametrize("force", [False, True], ids=["as-is", "every-prerequisite"])
def test_make_deploy_runs_sam_build_and_deploy_and_nothing_else(env: str, force: bool) -> None:
    proc = make_n(*(["-B"] if force else []), "deploy", f"ENV={env}")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"sam build --config-env {env}" in out
    assert f"sam deploy --config-env {env}" in out
    assert out.index("sam build") < out.index("sam deploy")
    for tool in NOT_FOR_DEPLOY:
        assert tool not in out, f"make deploy would touch {tool!r}:\n{out}"
    # The changeset stays interactive: no flag that skips the confirmation.
    assert "--no-confirm-changeset" not in out
    assert "--no-execute-changeset" not in out


def test_the_changeset_is_confirmed_in_every_deploy_environment() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert [e for e in config if e not in ("default", "version")] == DEPLOY_ENVS
    # make deploy accepts exactly samconfig.toml's environments.
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert f"DEPLOY_ENVS := {' '.join(DEPLOY_ENVS)}\n" in makefile
    for env in DEPLOY_ENVS:
        assert config[env]["deploy"]["parameters"]["confirm_changeset"] is True, env


def test_make_deploy_tools_installs_only_the_sam_cli() -> None:
    proc = make_n("-B", "deploy-tools")
    assert proc.returncode == 0, proc.stderr
    assert "requirements/sam.txt" in proc.stdout
    for tool in NOT_FOR_DEPLOY:
        assert tool not in proc.stdout, f"make deploy-tools would touch {tool!r}:\n{proc.stdout}"


def test_make_deploy_passes_the_region_only_when_given() -> None:
    with_region = make_n("deploy", "ENV=prod", "REGION=eu-west-1").stdout
    assert "sam deploy --config-env prod --region eu-west-1" in with_region
    assert "--region" not in make_n("deploy", "ENV=prod").stdout


@pytest.mark.parametrize("args", [[], ["ENV=staging"], ["ENV=dev prod"], ["ENV=default"]])
def test_make_deploy_refuses_anything_but_one_samconfig_environment(args: list[str]) -> None:
    proc = make_n("deploy", *args)
    assert proc.returncode != 0
    assert "make deploy needs ENV=<one of: dev prod dev-express prod-express>" in proc.stderr
    assert "sam " not in proc.stdout


def test_make_local_passes_break_and_only_to_the_runner() -> None:
    # make rejects `make local --break x`; the variables are the documented form (docs/local.md).
    out = make_n("local", "BREAK=guardduty,iam", "ONLY=guardduty", "COMPUTE=EcsExpress").stdout
    assert "--compute EcsExpress" in out
    assert "--break guardduty --break iam" in out
    assert "--only guardduty" in out
    assert "--break" not in make_n("local").stdout
