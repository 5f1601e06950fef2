"""Issue 17, item 6: the image resource snapshots the cluster for upgrades only, never in an update rollback."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from redcap_ctl import image_build

STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/redcap/00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(
    ("old", "new", "upgrade"),
    [
        ("15.5.1", "15.6.0", True),
        ("15.5.1", "15.5.2", True),
        ("9.9.9", "10.0.0", True),  # by number: "10" sorts before "9" as text
        ("15.6.0", "15.5.1", False),  # a rollback after an upgrade
        ("15.5.1", "15.5.1", False),  # a same-version rebuild
        ("15.10.0", "15.9.9", False),
    ],
)
def test_only_a_newer_version_is_an_upgrade(old: str, new: str, upgrade: bool) -> None:
    assert image_build.is_upgrade(old, new) is upgrade


def _cloudformation(status: str | None, error: str | None = None) -> tuple[object, Stubber]:
    client = boto3.client("cloudformation", region_name="us-east-1")
    stubber = Stubber(client)
    if error:
        stubber.add_client_error("describe_stacks", service_error_code=error, expected_params={"StackName": STACK})
    else:
        stack = {"StackName": "redcap", "StackId": STACK, "CreationTime": "2026-01-01T00:00:00Z", "StackStatus": status}
        stubber.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": STACK})
    stubber.activate()
    return client, stubber


@pytest.mark.parametrize(
    ("status", "rolling_back"),
    [
        ("UPDATE_ROLLBACK_IN_PROGRESS", True),
        ("UPDATE_IN_PROGRESS", False),
        ("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", False),
        ("CREATE_IN_PROGRESS", False),
    ],
)
def test_stack_rolling_back_reads_this_stacks_status(status: str, rolling_back: bool) -> None:
    client, stubber = _cloudformation(status)
    assert image_build.stack_rolling_back(client, STACK) is rolling_back
    stubber.assert_no_pending_responses()


def test_an_unreadable_status_leaves_the_decision_to_the_version_rule() -> None:
    client, stubber = _cloudformation(None, error="AccessDenied")
    assert image_build.stack_rolling_back(client, STACK) is False
    stubber.assert_no_pending_responses()
    assert image_build.stack_rolling_back(None, STACK) is False
