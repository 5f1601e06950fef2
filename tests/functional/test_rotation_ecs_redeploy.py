"""SES rotation on ECS Express: the new secret reaches the tasks through a forced new deployment.

ECS UpdateService/DescribeServices come from moto. moto never starts tasks, so a service with
desiredCount > 0 keeps its deployment IN_PROGRESS forever (a busy service, as during Express's
canary) and a service with desiredCount 0 is COMPLETED (idle): the tests use that on purpose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from functional.test_rotation_harness import REGION, FakeSes, aws, fake_ses, make_rotation, smtp_cert, start_rotation

from redcap_ctl.rotation import RotationError
from redcap_ctl.rotation.consumers import EcsServiceRef, is_ecs_service_arn, redeploy_ecs_service

__all__ = ["aws", "fake_ses", "smtp_cert"]  # fixtures, used by name

CLUSTER = "redcap-express"


def _service(ecs: Any, name: str, desired: int) -> str:
    arn: str = ecs.create_service(
        cluster=CLUSTER, serviceName=name, taskDefinition="redcap", desiredCount=desired, launchType="FARGATE"
    )["service"]["serviceArn"]
    return arn


@pytest.fixture
def ecs(aws: None) -> Any:
    client = boto3.client("ecs", region_name=REGION)
    client.create_cluster(clusterName=CLUSTER)
    client.register_task_definition(
        family="redcap",
        containerDefinitions=[{"name": "redcap", "image": "redcap:1", "memory": 4096}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="2048",
        memory="4096",
    )
    return client


def _deployment_ids(ecs: Any, arn: str) -> list[str]:
    service = ecs.describe_services(cluster=CLUSTER, services=[arn])["services"][0]
    return [d["id"] for d in service["deployments"]]


def test_redeploy_forces_a_new_deployment_of_exactly_this_service(ecs: Any) -> None:
    ours = _service(ecs, "redcap", desired=0)
    other = _service(ecs, "other-app", desired=0)
    before, other_before = _deployment_ids(ecs, ours), _deployment_ids(ecs, other)
    deployment = redeploy_ecs_service(ecs, EcsServiceRef.from_arn(ours))
    after = _deployment_ids(ecs, ours)
    assert after != before
    assert deployment == after[0]
    assert _deployment_ids(ecs, other) == other_before


def test_a_busy_service_is_not_redeployed_and_says_what_to_do(ecs: Any) -> None:
    arn = _service(ecs, "redcap", desired=2)  # rollout IN_PROGRESS (moto starts no tasks)
    before = _deployment_ids(ecs, arn)
    with pytest.raises(RotationError, match="busy with another deployment; run finishSecret again"):
        redeploy_ecs_service(ecs, EcsServiceRef.from_arn(arn))
    assert _deployment_ids(ecs, arn) == before


class _TwoDeployments:
    """A service mid-canary as AWS reports it: the new PRIMARY plus the old ACTIVE deployment."""

    def __init__(self, arn: str) -> None:
        self.arn = arn
        self.updates: list[str] = []

    def describe_services(self, *, cluster: str, services: list[str]) -> Mapping[str, Any]:
        deployments = [
            {"id": "ecs-svc/2", "status": "PRIMARY", "rolloutState": "COMPLETED"},
            {"id": "ecs-svc/1", "status": "ACTIVE", "rolloutState": "COMPLETED"},
        ]
        return {"services": [{"serviceArn": self.arn, "status": "ACTIVE", "deployments": deployments}]}

    def update_service(self, *, cluster: str, service: str, forceNewDeployment: bool) -> Mapping[str, Any]:
        self.updates.append(service)
        return {}


def test_two_deployments_in_flight_count_as_busy() -> None:
    arn = f"arn:aws:ecs:{REGION}:123456789012:service/{CLUSTER}/redcap"
    fake = _TwoDeployments(arn)
    with pytest.raises(RotationError, match="busy"):
        redeploy_ecs_service(fake, EcsServiceRef.from_arn(arn))
    assert fake.updates == []


def test_missing_inactive_service_and_missing_cluster_fail_with_a_reason(ecs: Any) -> None:
    missing = f"arn:aws:ecs:{REGION}:123456789012:service/{CLUSTER}/gone"
    with pytest.raises(RotationError, match="was not found in cluster redcap-express"):
        redeploy_ecs_service(ecs, EcsServiceRef.from_arn(missing))
    deleted = _service(ecs, "deleted", desired=0)
    ecs.delete_service(cluster=CLUSTER, service=deleted)
    with pytest.raises(RotationError, match="not ACTIVE|was not found"):
        redeploy_ecs_service(ecs, EcsServiceRef.from_arn(deleted))
    no_cluster = f"arn:aws:ecs:{REGION}:123456789012:service/nowhere/redcap"
    with pytest.raises(RotationError, match="DescribeServices failed: ClusterNotFoundException"):
        redeploy_ecs_service(ecs, EcsServiceRef.from_arn(no_cluster))


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:ecs:us-east-1:123456789012:service/redcap",  # short (old) ARN format: no cluster
        "arn:aws:ecs:us-east-1:123456789012:cluster/redcap",
        "arn:aws:ecs:us-east-1:123456789012:service//redcap",
        "arn:aws:apprunner:us-east-1:123456789012:service/redcap/abc",
        "not-an-arn",
    ],
)
def test_only_long_format_ecs_service_arns_are_accepted(arn: str) -> None:
    with pytest.raises(RotationError, match="COMPUTE_SERVICE_ARN"):
        EcsServiceRef.from_arn(arn)


def test_arn_kind_picks_the_redeploy() -> None:
    ref = EcsServiceRef.from_arn("arn:aws:ecs:eu-west-2:123456789012:service/c1/s1")
    assert (ref.cluster, ref.name) == ("c1", "s1")
    assert is_ecs_service_arn(ref.arn)
    assert not is_ecs_service_arn("arn:aws:apprunner:eu-west-2:123456789012:service/s1/abc")


def test_ses_rotation_through_the_handler_redeploys_the_express_service(
    ecs: Any, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes
) -> None:
    arn = _service(ecs, "redcap", desired=0)
    rot = make_rotation(monkeypatch, "ses-smtp", fake_ses=fake_ses, service_arn=arn)
    assert rot.app.CLIENTS.apprunner is None, "one redeploy client: ECS only"
    before = _deployment_ids(ecs, arn)
    token = rot.rotate()
    assert _deployment_ids(ecs, arn) != before
    assert "AWSCURRENT" in rot.versions()[token]
    assert fake_ses.logins == [rot.current()["AccessKeyId"]]
    rot.assert_current_works()


def test_ses_rotation_on_a_busy_express_service_fails_finish_and_keeps_the_new_key_current(
    ecs: Any, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes
) -> None:
    arn = _service(ecs, "redcap", desired=1)
    rot = make_rotation(monkeypatch, "ses-smtp", fake_ses=fake_ses, service_arn=arn)
    token = start_rotation(rot.secret_id)
    for step in ("createSecret", "setSecret", "testSecret"):
        rot.step(step, token)
    before = _deployment_ids(ecs, arn)
    with pytest.raises(RotationError, match="ECS service is busy"):
        rot.step("finishSecret", token)
    assert _deployment_ids(ecs, arn) == before
    # Same as App Runner busy: AWSCURRENT already moved (the key works); a rerun redeploys.
    assert "AWSCURRENT" in rot.versions()[token]
    rot.assert_current_works()
