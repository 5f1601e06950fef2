"""Custom::RedcapDatabase and Custom::RedcapBaseUrl through the CloudFormation protocol.

The real handler runs; its Data API client is stubbed with botocore's Stubber (which checks
every request against the RDS Data API model) and the response is the PUT captured locally.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from redcap_ctl.database import REDCAP_PRIVILEGES
from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture

CLUSTER = "arn:aws:rds:us-east-1:123456789012:cluster:redcap-dbcluster"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-0000-AbCdEf"


@pytest.fixture
def handler() -> ModuleType:
    return load_handler("database_setup")


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


def test_create_makes_schema_and_iam_user_with_only_redcaps_privileges(handler, stub, cfn_responses) -> None:
    expect_sql(stub, "CREATE DATABASE IF NOT EXISTS `redcap` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    expect_sql(
        stub,
        "CREATE USER IF NOT EXISTS 'redcap_iam'@'%' IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS' REQUIRE SSL",
    )
    expect_sql(stub, "ALTER USER 'redcap_iam'@'%' REQUIRE SSL")
    expect_sql(stub, f"GRANT {', '.join(REDCAP_PRIVILEGES)} ON `redcap`.* TO 'redcap_iam'@'%'")
    resp = send(handler, cfn_responses, load_event("database_setup", "create_database.json"))
    assert resp["Status"] == "SUCCESS", resp
    assert resp["PhysicalResourceId"] == "redcap/redcap_iam"
    assert resp["Data"] == {"DatabaseName": "redcap", "IamUserName": "redcap_iam"}
    assert not {"ALL", "GRANT OPTION", "SUPER", "REPLICATION SLAVE", "FILE", "PROCESS"} & set(REDCAP_PRIVILEGES)


def test_create_waits_for_aurora_to_resume(handler, stub, cfn_responses, monkeypatch) -> None:
    monkeypatch.setattr("redcap_ctl.budget.time.sleep", lambda _s: None)
    stub.add_client_error("execute_statement", "DatabaseResumingException", "resuming", 400)
    for _ in range(4):
        stub.add_response(
            "execute_statement",
            {"numberOfRecordsUpdated": 0},
            {"resourceArn": CLUSTER, "secretArn": SECRET, "sql": ANY},
        )
    assert send(handler, cfn_responses, load_event("database_setup", "create_database.json"))["Status"] == "SUCCESS"


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("IamUserName", "redcap-iam", "IamUserName: must be 1-32 letters"),
        ("IamUserName", "x'; DROP DATABASE redcap; --", "IamUserName: must be 1-32 letters"),
        ("DatabaseName", "", "DatabaseName: required"),
        ("ClusterArn", "arn:aws:rds:us-east-1:123456789012:db:instance", "ClusterArn: must be an Aurora cluster ARN"),
        ("SecretArn", "not-an-arn", "SecretArn: must be a Secrets Manager secret ARN"),
    ],
)
def test_bad_property_fails_naming_the_field_before_any_sql(handler, stub, cfn_responses, field, value, reason) -> None:
    event = load_event("database_setup", "create_database.json")
    event["ResourceProperties"][field] = value
    resp = send(handler, cfn_responses, event)
    assert resp["Status"] == "FAILED"
    assert reason in resp["Reason"]


def test_data_api_failure_answers_failed_with_the_step(handler, stub, cfn_responses) -> None:
    stub.add_client_error("execute_statement", "ForbiddenException", "HttpEndpoint is not enabled", 403)
    resp = send(handler, cfn_responses, load_event("database_setup", "create_database.json"))
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
