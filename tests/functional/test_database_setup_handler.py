"""Custom::RedcapDatabase and Custom::RedcapBaseUrl through the CloudFormation protocol.

The real handler runs; its Data API client is stubbed with botocore's Stubber (which checks
every request against the RDS Data API model) and the response is the PUT captured locally.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from redcap_ctl.database import REDCAP_PRIVILEGES, native_password_hash
from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture

CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:redcap-dbcluster"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-0000-AbCdEf"


ROTATION_PASSWORD = "rotation-password-" + "0123456789"


@pytest.fixture
def rotation_secret() -> Iterator[str]:
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        arn = sm.create_secret(
            Name="redcap-rotation-db-user",
            SecretString=json.dumps({"username": "redcap_rotation", "password": ROTATION_PASSWORD}),
        )["ARN"]
        yield arn


@pytest.fixture
def handler(rotation_secret: str) -> ModuleType:
    return load_handler("database_setup")


def database_event(rotation_secret: str) -> dict[str, Any]:
    event = load_event("database_setup", "create_database.json")
    event["ResourceProperties"]["RotationUserSecretArn"] = rotation_secret
    return event


@pytest.fixture
def stub(handler: ModuleType) -> Iterator[Stubber]:
    with Stubber(handler.rds_data) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def send(
    handler: ModuleType, capture: ResponseCapture, event: dict[str, Any], remaining_ms: int = 300_000
) -> dict[str, Any]:
    event = copy.deepcopy(event)
    event["ResponseURL"] = capture.url()
    handler.handler(event, LambdaContext(remaining_ms=remaining_ms))
    return capture.last


def expect_sql(stub: Stubber, sql: str, database: str | None = None, parameters: Any = None) -> None:
    params: dict[str, Any] = {"resourceArn": CLUSTER, "secretArn": SECRET, "sql": sql}
    if database:
        params["database"] = database
    if parameters is not None:
        params["parameters"] = parameters
    stub.add_response("execute_statement", {"numberOfRecordsUpdated": 0}, params)


def test_create_makes_schema_and_iam_user_with_only_redcaps_privileges(
    handler, stub, cfn_responses, rotation_secret
) -> None:
    expect_sql(stub, "CREATE DATABASE IF NOT EXISTS `redcap` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    expect_sql(
        stub,
        "CREATE USER IF NOT EXISTS 'redcap_iam'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL",
    )
    expect_sql(stub, "ALTER USER 'redcap_iam'@'%' REQUIRE SSL")
    expect_sql(stub, f"GRANT {', '.join(REDCAP_PRIVILEGES)} ON `redcap`.* TO 'redcap_iam'@'%'")
    # The rotation user: only the hash of its password travels, and its one grant is EXECUTE.
    pw_hash = native_password_hash(ROTATION_PASSWORD)
    expect_sql(stub, "DROP PROCEDURE IF EXISTS `redcap`.`redcap_ctl_set_s3_key`")
    expect_sql(stub, ANY)
    expect_sql(
        stub, f"CREATE USER IF NOT EXISTS 'redcap_rotation'@'%' IDENTIFIED WITH mysql_native_password AS '{pw_hash}'"
    )
    expect_sql(stub, f"ALTER USER 'redcap_rotation'@'%' IDENTIFIED WITH mysql_native_password AS '{pw_hash}'")
    expect_sql(stub, "GRANT EXECUTE ON PROCEDURE `redcap`.`redcap_ctl_set_s3_key` TO 'redcap_rotation'@'%'")
    resp = send(handler, cfn_responses, database_event(rotation_secret))
    assert resp["Status"] == "SUCCESS", resp
    assert resp["PhysicalResourceId"] == "redcap/redcap_iam"
    assert resp["Data"] == {
        "DatabaseName": "redcap",
        "IamUserName": "redcap_iam",
        "RotationUserName": "redcap_rotation",
    }
    assert ROTATION_PASSWORD not in json.dumps(resp)
    assert not {"ALL", "GRANT OPTION", "SUPER", "REPLICATION SLAVE", "FILE", "PROCESS"} & set(REDCAP_PRIVILEGES)


def test_create_waits_for_aurora_to_resume(handler, stub, cfn_responses, monkeypatch, rotation_secret) -> None:
    monkeypatch.setattr("redcap_ctl.budget.time.sleep", lambda _s: None)
    stub.add_client_error("execute_statement", "DatabaseResumingException", "resuming", 400)
    for _ in range(9):
        stub.add_response(
            "execute_statement",
            {"numberOfRecordsUpdated": 0},
            {"resourceArn": CLUSTER, "secretArn": SECRET, "sql": ANY},
        )
    assert send(handler, cfn_responses, database_event(rotation_secret))["Status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("IamUserName", "redcap-iam", "IamUserName: must be 1-32 letters"),
        ("IamUserName", "x'; DROP DATABASE redcap; --", "IamUserName: must be 1-32 letters"),
        ("DatabaseName", "", "DatabaseName: is required"),
        ("ClusterArn", "arn:aws:rds:us-east-1:123456789012:db:instance", "ClusterArn: must be an Aurora cluster ARN"),
        ("SecretArn", "not-an-arn", "SecretArn: must be a Secrets Manager secret ARN"),
        ("RotationUserSecretArn", "", "RotationUserSecretArn: is required"),
    ],
)
def test_bad_property_fails_naming_the_field_before_any_sql(
    handler, stub, cfn_responses, rotation_secret, field, value, reason
) -> None:
    event = database_event(rotation_secret)
    event["ResourceProperties"][field] = value
    resp = send(handler, cfn_responses, event)
    assert resp["Status"] == "FAILED"
    assert reason in resp["Reason"]


def test_data_api_failure_answers_failed_with_the_step(handler, stub, cfn_responses, rotation_secret) -> None:
    stub.add_client_error("execute_statement", "ForbiddenException", "HttpEndpoint is not enabled", 403)
    resp = send(handler, cfn_responses, database_event(rotation_secret))
    assert resp["Status"] == "FAILED"
    assert "creating the REDCap schema failed: ForbiddenException" in resp["Reason"]


def test_delete_leaves_the_database_alone_and_is_idempotent(handler, stub, cfn_responses) -> None:
    event = load_event("database_setup", "create_database.json")
    event |= {"RequestType": "Delete", "PhysicalResourceId": "redcap/redcap_iam"}
    for _ in range(2):
        resp = send(handler, cfn_responses, event)
        assert resp["Status"] == "SUCCESS"
        assert resp["PhysicalResourceId"] == "redcap/redcap_iam"


BASE_SQL = (
    "UPDATE redcap_config SET value = :url WHERE field_name = 'redcap_base_url'"
    " AND (value IS NULL OR value = '' OR value = :previous)"
)


def url_params(url: str, previous: str) -> list[dict[str, Any]]:
    return [
        {"name": "url", "value": {"stringValue": url}},
        {"name": "previous", "value": {"stringValue": previous}},
    ]


def test_base_url_waits_for_the_first_install_then_sets_the_service_url(
    handler, stub, cfn_responses, monkeypatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr("redcap_ctl.budget.time.sleep", slept.append)
    url = "https://abcdefgh12.us-east-1.awsapprunner.com/"
    expected = {"resourceArn": CLUSTER, "secretArn": SECRET, "sql": BASE_SQL, "database": "redcap",
                "parameters": url_params(url, url)}  # fmt: skip
    stub.add_client_error(
        "execute_statement",
        "BadRequestException",
        "Table 'redcap.redcap_config' doesn't exist",
        400,
        expected_params=expected,
    )
    stub.add_response("execute_statement", {"numberOfRecordsUpdated": 1}, expected)
    resp = send(handler, cfn_responses, load_event("database_setup", "create_base_url.json"))
    assert resp["Status"] == "SUCCESS", resp
    assert resp["Data"] == {"BaseUrl": url, "Outcome": "updated"}
    assert slept == [10.0]


def test_base_url_update_replaces_only_what_the_stack_wrote(handler, stub, cfn_responses) -> None:
    event = load_event("database_setup", "create_base_url.json")
    old = copy.deepcopy(event["ResourceProperties"])
    event["RequestType"] = "Update"
    event["PhysicalResourceId"] = "redcap/redcap_base_url"
    event["OldResourceProperties"] = old
    event["ResourceProperties"]["BaseUrl"] = "redcap.example.org"
    new, previous = "https://redcap.example.org/", "https://abcdefgh12.us-east-1.awsapprunner.com/"
    # The administrator had set another URL: MySQL updates no row and the stack keeps theirs.
    stub.add_response(
        "execute_statement",
        {"numberOfRecordsUpdated": 0},
        {
            "resourceArn": CLUSTER,
            "secretArn": SECRET,
            "sql": BASE_SQL,
            "database": "redcap",
            "parameters": url_params(new, previous),
        },
    )
    resp = send(handler, cfn_responses, event)
    assert resp["Status"] == "SUCCESS"
    assert resp["Data"]["Outcome"] == "kept"


def test_base_url_gives_up_in_time_when_redcap_never_installs(handler, stub, cfn_responses, monkeypatch) -> None:
    monkeypatch.setattr("redcap_ctl.budget.time.sleep", lambda _s: None)
    stub.add_client_error("execute_statement", "BadRequestException", "Table 'redcap.redcap_config' doesn't exist", 400)
    # 25 s left minus the 20 s margin: less than one 10 s wait remains.
    resp = send(handler, cfn_responses, load_event("database_setup", "create_base_url.json"), remaining_ms=25_000)
    assert resp["Status"] == "FAILED"
    assert "gave up waiting for REDCap's first install" in resp["Reason"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("not json", "RotationUserSecretArn: the secret must be JSON"),
        (json.dumps({"username": "redcap_rotation", "password": "short"}), "password of 16+ characters"),
        (json.dumps({"username": "bad-name", "password": "x" * 20}), "username must be 1-32 letters"),
    ],
)
def test_a_bad_rotation_secret_fails_without_quoting_it(handler, stub, cfn_responses, rotation_secret, value, reason):
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=rotation_secret, SecretString=value
    )
    resp = send(handler, cfn_responses, database_event(rotation_secret))
    assert resp["Status"] == "FAILED"
    assert reason in resp["Reason"]
    assert value not in resp["Reason"]


@pytest.mark.parametrize(
    ("old", "new"),
    [("", "redcap-prod-before-upgrade"), ("redcap-prod-before-upgrade", ""), ("snap-a", "snap-b")],
)
def test_a_changed_snapshot_identifier_is_refused_before_any_sql(
    handler, stub, cfn_responses, rotation_secret, old, new
) -> None:
    # CloudFormation has already restored (or created) a new cluster by now; FAILED rolls back to the old one.
    event = database_event(rotation_secret)
    event |= {"RequestType": "Update", "PhysicalResourceId": "redcap/redcap_iam"}
    event["OldResourceProperties"] = copy.deepcopy(event["ResourceProperties"]) | {"SnapshotIdentifier": old}
    event["ResourceProperties"]["SnapshotIdentifier"] = new
    with Stubber(handler.cloudformation) as cfn:
        cfn.add_response("describe_stacks", _stack("UPDATE_IN_PROGRESS"), {"StackName": event["StackId"]})
        resp = send(handler, cfn_responses, event)
    assert resp["Status"] == "FAILED"
    assert "SnapshotIdentifier: DbSnapshotIdentifier may not change" in resp["Reason"]
    assert f"set it back to {old or 'empty'!r}" in resp["Reason"]
    assert 'docs/runbook.md "Restore"' in resp["Reason"]


def test_an_update_from_a_stack_without_the_property_keeps_going(handler, stub, cfn_responses, rotation_secret) -> None:
    # Stacks made before DbSnapshotIdentifier existed have no such old property: that is "" (no snapshot).
    event = database_event(rotation_secret)
    event |= {"RequestType": "Update", "PhysicalResourceId": "redcap/redcap_iam"}
    event["OldResourceProperties"] = {k: v for k, v in event["ResourceProperties"].items() if k != "SnapshotIdentifier"}
    for _ in range(9):
        stub.add_response(
            "execute_statement",
            {"numberOfRecordsUpdated": 0},
            {"resourceArn": CLUSTER, "secretArn": SECRET, "sql": ANY},
        )
    assert send(handler, cfn_responses, event)["Status"] == "SUCCESS"


def _stack(status: str) -> dict[str, Any]:
    return {"Stacks": [{"StackName": "redcap", "CreationTime": "2026-12-01T00:00:00Z", "StackStatus": status}]}


def test_the_rollback_of_a_refused_change_goes_through(handler, stub, cfn_responses, rotation_secret) -> None:
    # The rollback's Update carries the properties swapped; refusing it too would leave UPDATE_ROLLBACK_FAILED.
    event = database_event(rotation_secret)
    event |= {"RequestType": "Update", "PhysicalResourceId": "redcap/redcap_iam"}
    event["OldResourceProperties"] = copy.deepcopy(event["ResourceProperties"]) | {"SnapshotIdentifier": "snap-b"}
    for _ in range(9):
        stub.add_response(
            "execute_statement",
            {"numberOfRecordsUpdated": 0},
            {"resourceArn": CLUSTER, "secretArn": SECRET, "sql": ANY},
        )
    with Stubber(handler.cloudformation) as cfn:
        cfn.add_response("describe_stacks", _stack("UPDATE_ROLLBACK_IN_PROGRESS"), {"StackName": event["StackId"]})
        assert send(handler, cfn_responses, event)["Status"] == "SUCCESS"
        cfn.assert_no_pending_responses()
