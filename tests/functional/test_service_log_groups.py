"""Custom::ServiceLogGroups through the CloudFormation protocol (issue 13, finding 4).

Aurora's exported logs and App Runner's application and service logs go to log groups the
services create: without a claim they are neither encrypted with the stack's key nor expiring.
The real handler gets ``events/log_groups/`` and answers on 127.0.0.1; CloudWatch Logs is moto's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID as ACCOUNT
from moto.logs.models import logs_backends

from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture

KEY = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
AUDIT = "/aws/rds/cluster/redcap-dev-dbcluster-abcdefgh/audit"


def _associate_kms_key(params: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
    """AssociateKmsKey as AWS documents it (moto 5.2.5 has none): the group's key from now on."""
    request = json.loads(params["body"])  # the serialised request (CloudWatch Logs speaks JSON)
    group = logs_backends[ACCOUNT]["us-east-1"].groups[request["logGroupName"]]
    group.kms_key_id = request["kmsKeyId"]
    return SimpleNamespace(status_code=200, headers={}), {"ResponseMetadata": {"HTTPStatusCode": 200}}


@pytest.fixture
def app() -> Iterator[ModuleType]:
    with mock_aws():
        module = load_handler("log_groups")
        module.LOGS.meta.events.register("before-call.cloudwatch-logs.AssociateKmsKey", _associate_kms_key)
        yield module


def _groups() -> dict[str, dict[str, Any]]:
    logs = boto3.client("logs")
    return {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix="/aws/")["logGroups"]}


def _invoke(app: ModuleType, capture: ResponseCapture, case: str, **props: Any) -> dict[str, Any]:
    event = load_event("log_groups", f"{case}.json")
    event["ResponseURL"] = capture.url()
    event["ResourceProperties"].update(props)
    capture.clear()
    app.handler(event, LambdaContext())
    assert len(capture.responses) == 1, capture.responses
    return capture.last


def test_create_makes_missing_groups_encrypted_and_expiring(app: ModuleType, cfn_responses: ResponseCapture) -> None:
    answer = _invoke(app, cfn_responses, "create")
    assert answer["Status"] == "SUCCESS", answer
    assert answer["Data"] == {"Claimed": 3, "AlreadyExisted": 0}
    groups = _groups()
    assert len(groups) == 3
    for group in groups.values():
        assert group["kmsKeyId"] == KEY
        assert group["retentionInDays"] == 365


def test_create_claims_groups_the_service_already_made(app: ModuleType, cfn_responses: ResponseCapture) -> None:
    # What App Runner does at service creation (and Aurora at its first export): a plain group, kept forever.
    boto3.client("logs").create_log_group(logGroupName=AUDIT)
    assert "kmsKeyId" not in _groups()[AUDIT]
    answer = _invoke(app, cfn_responses, "create")
    assert answer["Status"] == "SUCCESS", answer
    assert answer["Data"]["AlreadyExisted"] == 1
    assert _groups()[AUDIT]["kmsKeyId"] == KEY
    assert _groups()[AUDIT]["retentionInDays"] == 365


def test_update_applies_a_new_retention_and_delete_leaves_the_groups(
    app: ModuleType, cfn_responses: ResponseCapture
) -> None:
    assert _invoke(app, cfn_responses, "create")["Status"] == "SUCCESS"
    answer = _invoke(app, cfn_responses, "update", RetentionInDays="731")
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == "service-log-groups:redcap-dev:DatabaseLogGroups"
    assert {g["retentionInDays"] for g in _groups().values()} == {731}
    assert _invoke(app, cfn_responses, "delete")["Status"] == "SUCCESS"
    assert len(_groups()) == 3


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"RetentionInDays": "42"}, "RetentionInDays"),
        ({"KmsKeyArn": "alias/aws/logs"}, "KmsKeyArn"),
        ({"LogGroupNames": []}, "LogGroupNames"),
        ({"Extra": "x"}, "Extra"),
    ],
)
def test_bad_properties_fail_naming_the_field(
    app: ModuleType, cfn_responses: ResponseCapture, props: dict[str, Any], field: str
) -> None:
    answer = _invoke(app, cfn_responses, "create", **props)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(f"{field}:")
    assert _groups() == {}
