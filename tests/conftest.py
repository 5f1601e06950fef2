"""Fixtures shared by every suite.

Every test runs with fake credentials and a fixed region, with no AWS profile,
and with the cached boto3 clients forgotten, so nothing can reach a real
account and nothing leaks between tests. Endpoints stay boto3's business:
tests that use a local emulator set ``AWS_ENDPOINT_URL*`` themselves.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from redcap_ctl import clients
from testkit import LambdaContext
from testkit.cfn import ResponseCapture, capture_cfn_responses

REGION = "us-east-1"

# redcap_ctl.observability builds Powertools' Logger and Metrics at import time,
# which may happen at collection, before any fixture runs: give them their
# template-provided environment now, as Lambda would.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "REDCap/test")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "redcap-control-plane-test")


@pytest.fixture(autouse=True)
def aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "REDCap/test")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "redcap-control-plane-test")
    clients.reset()
    yield
    clients.reset()


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


@pytest.fixture
def cfn_responses() -> Iterator[ResponseCapture]:
    with capture_cfn_responses() as capture:
        yield capture
