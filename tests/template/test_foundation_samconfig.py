"""Foundation: samconfig.toml environments only set parameters the template has, with valid values."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any

import pytest

from testkit import ROOT
from testkit.template import load

PLACEHOLDER = "CHANGE_ME"


def _overrides(env: str) -> dict[str, str]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    text = config[env]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in shlex.split(text))


def _problem(spec: dict[str, Any], value: str) -> str | None:
    """Why CloudFormation would refuse ``value`` for this parameter, or None."""
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        return "not an allowed value"
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        return "does not match AllowedPattern"
    if spec["Type"] == "Number":
        number = float(value)
        if "MinValue" in spec and number < float(spec["MinValue"]):
            return "below MinValue"
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            return "above MaxValue"
    return None


ENVS = ["dev", "prod", "dev-express", "prod-express"]


@pytest.mark.parametrize("env", ENVS)
def test_overrides_name_real_parameters_and_the_right_environment(env: str) -> None:
    overrides = _overrides(env)
    params = load()["Parameters"]
    assert set(overrides) <= set(params)
    assert overrides["Environment"] == env.removesuffix("-express")
    assert overrides["ComputeType"] == ("EcsExpress" if env.endswith("-express") else "AppRunner")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_express_environments_differ_only_in_the_compute(env: str) -> None:
    app_runner, express = _overrides(env), _overrides(f"{env}-express")
    compute_only = {"ComputeType", "MaxConcurrency", "CanaryRollbackRule", "CanaryClientErrorPercent"}
    assert {k: v for k, v in app_runner.items() if k not in compute_only} == {
        k: v for k, v in express.items() if k not in compute_only
    }


@pytest.mark.parametrize("env", ENVS)
def test_real_values_are_valid_and_placeholders_are_refused(env: str) -> None:
    params = load()["Parameters"]
    for name, value in _overrides(env).items():
        problem = _problem(params[name], value)
        if value == PLACEHOLDER:
            # Left unedited, the deploy stops at parameter validation, before anything is created.
            assert problem is not None, name
        else:
            assert problem is None, (name, value, problem)


@pytest.mark.parametrize("env", ["prod", "prod-express"])
def test_prod_configuration_is_production_grade(env: str) -> None:
    prod = _overrides(env)
    assert int(prod["DbReaderCount"]) >= 1
    assert int(prod["MinSize"]) >= 2


def test_every_foundation_default_is_valid() -> None:
    for name, spec in load()["Parameters"].items():
        if "Default" in spec:
            assert _problem(spec, str(spec["Default"])) is None, name
