"""Database setup: Custom::RedcapDatabase and Custom::RedcapBaseUrl through the CloudFormation protocol.

moto's RDS Data API answers every statement without running it, so these steps show the real
handler reading the template's properties and the rotation user's secret, answering
CloudFormation and being idempotent; the SQL itself is proven against MariaDB by the image tests.
"""

from __future__ import annotations

from typing import Any

from local import platform
from local.bench_case import BenchCase
from local.runner import Run, StepFailed, cfn_success, exists, invoke
from local.scenarios import Local
from testkit.cfn import ResponseCapture, capture_cfn_responses

RESOURCE = "Database setup"
FUNCTION_ID = "DatabaseSetupFunction"
CASES = {"RedcapDatabase": "create_database.json", "RedcapBaseUrl": "create_base_url.json"}


def provision(local: Local) -> None:
    platform.compute(local)
    platform.rotation_targets(local)
    platform.function_arns(local)
    # !GetAtt RedcapDatabase.DatabaseName, as CloudFormation would hand it to RedcapBaseUrl.
    local.stack.physical.setdefault("RedcapDatabase.DatabaseName", "redcap")


def event(local: Local, logical_id: str, request: str, capture: ResponseCapture | None) -> dict[str, Any]:
    ev = local.stack.cfn_event("database_setup", CASES[logical_id], logical_id)
    ev["RequestType"] = request
    if request != "Create":
        ev["PhysicalResourceId"] = "redcap/placeholder"
    if capture is not None:
        ev["ResponseURL"] = capture.url(f"database-{logical_id}-{request.lower()}")
    return ev


def scenario(local: Local, run: Run) -> None:
    missing = exists("functions/database_setup/app.py", "events/database_setup/create_database.json")
    if missing:
        run.unavailable(RESOURCE, "Create", missing)
        return
    provision(local)
    env = local.stack.function_env(FUNCTION_ID)
    with capture_cfn_responses() as capture:

        def create_database() -> str:
            invoke("database_setup", event(local, "RedcapDatabase", "Create", capture), env)
            data = cfn_success(capture).get("Data", {})
            want = {"DatabaseName", "IamUserName", "RotationUserName"}
            if set(data) != want:
                raise StepFailed(f"expected {sorted(want)} in the answer, got {data}")
            users = f"IAM user {data['IamUserName']}, rotation user {data['RotationUserName']}"
            return f"schema {data['DatabaseName']}, {users}"

        run.step(RESOURCE, "Create: schema, IAM user, rotation user", create_database)

        def update_again() -> str:
            invoke("database_setup", event(local, "RedcapDatabase", "Update", capture), env)
            cfn_success(capture)
            return "idempotent: the same statements again, SUCCESS"

        run.step(RESOURCE, "Update: same properties", update_again)

        def base_url() -> str:
            invoke("database_setup", event(local, "RedcapBaseUrl", "Create", capture), env)
            data = cfn_success(capture).get("Data", {})
            if not str(data.get("BaseUrl", "")).startswith("https://"):
                raise StepFailed(f"expected an https base URL, got {data}")
            return f"redcap_base_url -> {data['BaseUrl']} ({data.get('Outcome')})"

        run.step(RESOURCE, "Create: base URL", base_url)

        def delete_twice() -> str:
            for _ in range(2):
                invoke("database_setup", event(local, "RedcapDatabase", "Delete", capture), env)
                cfn_success(capture)
            return "Delete leaves the data alone, twice"

        run.step(RESOURCE, "Delete (twice)", delete_twice)


def bench_cases(local: Local, capture: ResponseCapture) -> list[BenchCase]:
    provision(local)
    return [
        BenchCase(
            name="Database setup (Create)",
            logical_id=FUNCTION_ID,
            function="database_setup",
            env=local.stack.function_env(FUNCTION_ID),
            event=event(local, "RedcapDatabase", "Create", capture),
            cfn_response=True,
        )
    ]
