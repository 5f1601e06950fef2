"""Custom::DevStackCleanup through the CloudFormation protocol (issue 13, finding 5).

A dev stack did not delete: its buckets held objects and its IAM users held keys that the
rotation created. The real handler (``functions/stack_cleanup/app.py``) gets the events of
``events/stack_cleanup/``; its answer is the PUT captured on 127.0.0.1; S3 and IAM are moto's.
After a Delete answered SUCCESS, the test deletes the buckets and users the way
CloudFormation would next -- a bucket delete fails in moto, as in AWS, while anything is left.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture

FILES, LOGS = "redcap-dev-filebucket-example", "redcap-dev-logbucket-example"
USERS = ["redcap-dev-S3User-EXAMPLE", "redcap-dev-SesUser-EXAMPLE"]


class StackStatus:
    """DescribeStacks for the stack in the events, answered with a chosen status.

    moto cannot hold a stack in DELETE_IN_PROGRESS while a custom resource runs, so the one call the
    handler makes about its stack is answered here (the response shape is botocore's own).
    """

    def __init__(self) -> None:
        self.status = "DELETE_IN_PROGRESS"
        self.asked: list[str] = []

    def __call__(self, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        stack = str(context.get("cfn_params", {}).get("StackName", ""))
        self.asked.append(stack)
        stacks = [{"StackName": "redcap-dev", "StackId": stack, "CreationTime": "2026-11-28T00:00:00Z"}]
        stacks[0]["StackStatus"] = self.status
        return SimpleNamespace(status_code=200, headers={}), {"Stacks": stacks}


@pytest.fixture
def stack_status() -> StackStatus:
    return StackStatus()


@pytest.fixture
def app(stack_status: StackStatus) -> Iterator[ModuleType]:
    with mock_aws():
        module = load_handler("stack_cleanup")
        events = module.CLOUDFORMATION.meta.events
        events.register("before-parameter-build.cloudformation.DescribeStacks", _remember_params)
        events.register("before-call.cloudformation.DescribeStacks", stack_status)
        yield module


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["cfn_params"] = dict(params)


@pytest.fixture
def stack(app: ModuleType) -> dict[str, Any]:
    """What a dev stack holds after some use: file versions, delete markers, access logs, two keys per user."""
    s3 = boto3.client("s3")
    iam = boto3.client("iam")
    for bucket in (FILES, LOGS):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=FILES, VersioningConfiguration={"Status": "Enabled"})
    log_delivery = {
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"arn:aws:s3:::{LOGS}/file-bucket/*",
    }
    s3.put_bucket_policy(Bucket=LOGS, Policy=json.dumps({"Version": "2012-10-17", "Statement": [log_delivery]}))
    s3.put_bucket_logging(
        Bucket=FILES, BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": LOGS, "TargetPrefix": "file-bucket/"}}
    )
    for version in range(3):
        s3.put_object(Bucket=FILES, Key="edocs/20261128_consent.pdf", Body=f"v{version}".encode())
    s3.put_object(Bucket=FILES, Key="_rotation-probe/token", Body=b"probe")
    s3.delete_object(Bucket=FILES, Key="_rotation-probe/token")  # leaves a delete marker
    for n in range(1205):  # more than one DeleteObjects batch
        s3.put_object(Bucket=LOGS, Key=f"file-bucket/2026-11-28-{n:05d}", Body=b"log")
    for user in USERS:
        iam.create_user(UserName=user)
        for _ in range(2):
            iam.create_access_key(UserName=user)
    return {"s3": s3, "iam": iam}


def _versions(s3: Any, bucket: str) -> int:
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    return sum(len(p.get("Versions", [])) + len(p.get("DeleteMarkers", [])) for p in pages)


def _invoke(app: ModuleType, capture: ResponseCapture, case: str, **changes: Any) -> dict[str, Any]:
    event = load_event("stack_cleanup", f"{case}.json")
    event["ResponseURL"] = capture.url()
    event.update(changes)
    capture.clear()
    app.handler(event, LambdaContext())
    assert len(capture.responses) == 1, capture.responses
    return capture.last


def test_delete_empties_every_version_and_removes_every_key(
    app: ModuleType, stack: dict[str, Any], cfn_responses: ResponseCapture
) -> None:
    s3, iam = stack["s3"], stack["iam"]
    assert _versions(s3, FILES) == 5
    assert _versions(s3, LOGS) >= 1205  # moto, like S3, also delivers access logs of the calls above
    # Before the cleanup, CloudFormation's own delete fails exactly as it did (the finding).
    with pytest.raises(s3.exceptions.ClientError, match="BucketNotEmpty"):
        s3.delete_bucket(Bucket=FILES)
    # (AWS also refuses DeleteUser while keys exist -- DeleteConflict; moto does not, so the keys
    # themselves are asserted below.)

    answer = _invoke(app, cfn_responses, "delete")

    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == "dev-stack-cleanup:redcap-dev"
    assert _versions(s3, FILES) == 0
    assert _versions(s3, LOGS) == 0
    assert "LoggingEnabled" not in s3.get_bucket_logging(Bucket=FILES)
    for user in USERS:
        assert iam.list_access_keys(UserName=user)["AccessKeyMetadata"] == []
    # What CloudFormation does next now succeeds.
    for bucket in (FILES, LOGS):
        s3.delete_bucket(Bucket=bucket)
    for user in USERS:
        iam.delete_user(UserName=user)


@pytest.mark.parametrize("status", ["UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"])
def test_delete_while_the_stack_stays_keeps_everything(
    app: ModuleType, stack: dict[str, Any], stack_status: StackStatus, cfn_responses: ResponseCapture, status: str
) -> None:
    # The resource left the template (a dev stack switched to Environment=prod): the files must stay.
    stack_status.status = status
    answer = _invoke(app, cfn_responses, "delete")
    assert answer["Status"] == "SUCCESS", answer
    assert stack_status.asked == [load_event("stack_cleanup", "delete.json")["StackId"]]
    assert _versions(stack["s3"], FILES) == 5
    assert len(stack["iam"].list_access_keys(UserName=USERS[0])["AccessKeyMetadata"]) == 2


def test_rollback_of_a_first_create_cleans_too(
    app: ModuleType, stack: dict[str, Any], stack_status: StackStatus, cfn_responses: ResponseCapture
) -> None:
    stack_status.status = "ROLLBACK_IN_PROGRESS"
    assert _invoke(app, cfn_responses, "delete")["Status"] == "SUCCESS"
    assert _versions(stack["s3"], FILES) == 0


def test_delete_again_after_everything_is_gone_succeeds(
    app: ModuleType, stack: dict[str, Any], cfn_responses: ResponseCapture
) -> None:
    assert _invoke(app, cfn_responses, "delete")["Status"] == "SUCCESS"
    s3, iam = stack["s3"], stack["iam"]
    for bucket in (FILES, LOGS):
        s3.delete_bucket(Bucket=bucket)
    for user in USERS:
        iam.delete_user(UserName=user)
    answer = _invoke(app, cfn_responses, "delete")
    assert answer["Status"] == "SUCCESS", answer


def test_create_changes_nothing(app: ModuleType, stack: dict[str, Any], cfn_responses: ResponseCapture) -> None:
    answer = _invoke(app, cfn_responses, "create")
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == "dev-stack-cleanup:redcap-dev"
    assert _versions(stack["s3"], FILES) == 5
    assert len(stack["iam"].list_access_keys(UserName=USERS[0])["AccessKeyMetadata"]) == 2


def test_delete_after_a_failed_create_touches_nothing(
    app: ModuleType, stack: dict[str, Any], cfn_responses: ResponseCapture
) -> None:
    # crhelper's id for a Create that failed: the resource never existed.
    answer = _invoke(app, cfn_responses, "delete", PhysicalResourceId="redcap-dev_DevStackCleanup_ABCDEFGH")
    assert answer["Status"] == "SUCCESS", answer
    assert _versions(stack["s3"], FILES) == 5


def test_bad_properties_fail_create_naming_the_field(app: ModuleType, cfn_responses: ResponseCapture) -> None:
    event = load_event("stack_cleanup", "create.json")
    props = {**event["ResourceProperties"], "LoggedBuckets": ["not-one-of-the-buckets"]}
    answer = _invoke(app, cfn_responses, "create", ResourceProperties=props)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("LoggedBuckets:")


def test_debug_logging_never_shows_the_presigned_response_url(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    cfn_responses: ResponseCapture,
) -> None:
    # Issue 13, finding 9: crhelper logs the event (ResponseURL included) and the URL at DEBUG.
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    caplog.set_level(logging.DEBUG)  # the root logger and everything under it, crhelper included
    with mock_aws():
        app = load_handler("stack_cleanup")
        secret_part = "X-Amz-Signature=test"
        answer = _invoke(app, cfn_responses, "create")
    assert answer["Status"] == "SUCCESS"
    assert secret_part in cfn_responses.url()
    captured = capsys.readouterr()
    everything = caplog.text + captured.out + captured.err
    assert "CloudFormation returned status code" in everything  # crhelper's logging was live
    assert secret_part not in everything
    assert "cloudformation-response" not in everything
    assert not [r for r in caplog.records if r.name.startswith("crhelper") and r.levelno <= logging.DEBUG]
