"""``make smoke``'s checks on their own: outcomes moto cannot produce, the web client's test switches, the target.

Each AWS answer here is stubbed with botocore's Stubber (shapes validated against the service model).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from smoke.aws import Resource, Stack
from smoke.checks import Context, Result, secret_rotation, stack_status
from smoke.web import FetchError, Web

from testkit import ROOT

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
V1, V2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:redcap-S3UserSecret-AbCdEf"


def stack(status: str = "UPDATE_COMPLETE", **outputs: str) -> Stack:
    return Stack(
        name="redcap-prod",
        region="us-east-1",
        status=status,
        reason="",
        parameters={"ComputeType": "AppRunner", "Environment": "prod"},
        outputs=dict(outputs),
        resources={"S3UserSecret": Resource("S3UserSecret", "AWS::SecretsManager::Secret", ARN, "CREATE_COMPLETE")},
    )


class OneClient:
    def __init__(self, client: Any) -> None:
        self.client = client

    def __call__(self, service: str) -> Any:
        return self.client


def context(client: Any, status: str = "UPDATE_COMPLETE") -> Context:
    return Context(stack=stack(status), aws=OneClient(client), web=Web(), now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "result", "step"),
    [
        ("UPDATE_COMPLETE", Result.PASS, ""),
        ("UPDATE_IN_PROGRESS", Result.FAIL, "wait"),
        ("UPDATE_ROLLBACK_COMPLETE", Result.FAIL, "describe-stack-events"),
        ("UPDATE_ROLLBACK_FAILED", Result.FAIL, "continue-update-rollback"),
        ("ROLLBACK_COMPLETE", Result.FAIL, "describe-stack-events"),
    ],
)
def test_stack_status(status: str, result: Result, step: str) -> None:
    outcome = stack_status(context(None, status))
    assert outcome.result is result
    assert step in outcome.next_step


def described(last_rotated: datetime, days: int, stages: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "ARN": ARN,
        "Name": "redcap-S3UserSecret",
        "RotationEnabled": True,
        "RotationRules": {"AutomaticallyAfterDays": days},
        "LastRotatedDate": last_rotated,
        "CreatedDate": last_rotated - timedelta(days=400),
        "VersionIdsToStages": stages,
    }


@pytest.mark.parametrize(
    ("age_days", "stages", "result", "found"),
    [
        (30, {V1: ["AWSCURRENT"]}, Result.PASS, "none stuck"),
        # Rotation on and a day past its interval: the scheduled rotation did not complete.
        (92, {V1: ["AWSCURRENT"]}, Result.FAIL, "a rotation failed"),
        (30, {V1: ["AWSCURRENT", "AWSPENDING"]}, Result.PASS, "none stuck"),
        (30, {V1: ["AWSCURRENT"], V2: ["AWSPENDING"]}, Result.FAIL, f"AWSPENDING on version {V2}"),
    ],
)
def test_secret_rotation(age_days: int, stages: dict[str, list[str]], result: Result, found: str) -> None:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    with Stubber(client) as stub:
        stub.add_response("describe_secret", described(NOW - timedelta(days=age_days), 90, stages), {"SecretId": ARN})
        outcome = secret_rotation(context(client))
    assert outcome.result is result
    assert found in outcome.detail
    if result is Result.FAIL:
        assert "rotate-secret" in outcome.next_step


def test_test_resolve_is_parsed_and_unlisted_hosts_are_refused() -> None:
    web = Web.from_env({"SMOKE_TEST_RESOLVE": "a.example.org=4443, B.example.org=4444"})
    assert web.resolve == {"a.example.org": 4443, "b.example.org": 4444}
    with pytest.raises(FetchError, match="not in SMOKE_TEST_RESOLVE"):
        web.get("https://elsewhere.example.org/")
    with pytest.raises(ValueError, match="is not host=port"):
        Web.from_env({"SMOKE_TEST_RESOLVE": "a.example.org"})


def test_only_https_is_fetched() -> None:
    with pytest.raises(FetchError, match="only https"):
        Web(resolve={}).get("http://a.example.org/")


def test_make_smoke_needs_a_stack_name() -> None:
    make = shutil.which("make")
    assert make is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKEFLAGS", "MFLAGS", "STACK"))}
    proc = subprocess.run(  # noqa: S603 -- fixed argv, no shell
        [make, "--no-print-directory", "smoke"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "STACK=name is required" in proc.stdout + proc.stderr
