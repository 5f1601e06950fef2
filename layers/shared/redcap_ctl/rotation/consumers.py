"""After AWSCURRENT moves: hand the new credentials to the things that use them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.rotation.config import DbTarget
from redcap_ctl.rotation.values import RotationError, error_code

if TYPE_CHECKING:
    from mypy_boto3_apprunner import AppRunnerClient
    from mypy_boto3_rds_data import RDSDataServiceClient

logger = Logger(child=True)

# One statement, so REDCap never sees a new key id with an old secret. The rotation's database
# user may only CALL this procedure (made by Custom::RedcapDatabase, see redcap_ctl.database),
# which changes exactly the amazon_s3_key and amazon_s3_secret rows; values travel as parameters.
UPDATE_S3_KEYS = "CALL redcap_ctl_set_s3_key(:key_id, :secret)"

# MySQL's wording when REDCap's schema is not there yet (the Data API wraps it in BadRequestException).
_NOT_INSTALLED = ("doesn't exist", "unknown database", "does not exist")
RESUMING_RETRIES = 4


def update_redcap_s3_keys(
    rds_data: RDSDataServiceClient,
    db: DbTarget,
    key_id: str,
    secret: str,
    sleep: Callable[[float], None],
) -> int | None:
    """Write the S3 key into ``redcap_config``; None when REDCap is not installed yet."""
    for attempt in range(RESUMING_RETRIES):
        try:
            resp = rds_data.execute_statement(
                resourceArn=db.cluster_arn,
                secretArn=db.secret_arn,
                database=db.database,
                sql=UPDATE_S3_KEYS,
                parameters=[
                    {"name": "key_id", "value": {"stringValue": key_id}},
                    {"name": "secret", "value": {"stringValue": secret}},
                ],
            )
        except ClientError as err:
            code = error_code(err)
            message = str(err.response.get("Error", {}).get("Message", "")).lower()
            if code == "BadRequestException" and any(m in message for m in _NOT_INSTALLED):
                logger.info("REDCap is not installed yet (no redcap_config table); skipping the S3 key update")
                return None
            if code == "DatabaseResumingException" and attempt < RESUMING_RETRIES - 1:
                # Aurora Serverless v2 wakes from auto-pause in seconds.
                sleep(5.0)
                continue
            raise RotationError(f"updating redcap_config through the Data API failed: {code}") from None
        updated = int(resp.get("numberOfRecordsUpdated", 0))
        logger.info("updated REDCap's S3 key", extra={"rows": updated})
        if updated == 0:
            # MySQL counts unchanged rows as 0 too (a repeated finishSecret), so this is a hint only.
            logger.warning("redcap_config had no changed amazon_s3_key/amazon_s3_secret rows")
        return updated
    raise AssertionError("unreachable")  # pragma: no cover


def redeploy_app_runner(apprunner: AppRunnerClient, service_arn: str) -> str:
    """Start a deployment so new instances read the new SMTP secret (instances read secrets at start)."""
    try:
        resp = apprunner.start_deployment(ServiceArn=service_arn)
    except ClientError as err:
        code = error_code(err)
        if code == "InvalidStateException":
            raise RotationError(
                "App Runner is busy with another operation; run finishSecret again (or StartDeployment) once it is idle"
            ) from None
        raise RotationError(f"App Runner StartDeployment failed: {code}") from None
    operation = resp["OperationId"]
    logger.info("started App Runner deployment", extra={"operation_id": operation})
    return operation


class EcsDeployments(Protocol):
    """The two ECS calls a redeploy makes (boto3's ECS client; typed here, no ECS stubs are pinned)."""

    def describe_services(self, *, cluster: str, services: list[str]) -> Mapping[str, Any]: ...

    def update_service(self, *, cluster: str, service: str, forceNewDeployment: bool) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class EcsServiceRef:
    """An ECS service ARN in the long format: ``arn:<partition>:ecs:<region>:<account>:service/<cluster>/<name>``."""

    arn: str
    cluster: str
    name: str

    @classmethod
    def from_arn(cls, arn: str) -> EcsServiceRef:
        parts = arn.split(":", 5)
        resource = parts[5].split("/") if len(parts) == 6 else []
        if parts[:1] != ["arn"] or parts[2:3] != ["ecs"] or len(resource) != 3 or resource[0] != "service":
            raise RotationError("COMPUTE_SERVICE_ARN is not an ECS service ARN (arn:...:ecs:...:service/cluster/name)")
        if not all(resource[1:]):
            raise RotationError("COMPUTE_SERVICE_ARN names no cluster or service")
        return cls(arn=arn, cluster=resource[1], name=resource[2])


def is_ecs_service_arn(arn: str) -> bool:
    return arn.split(":")[2:3] == ["ecs"]


def _busy(service: Mapping[str, Any]) -> bool:
    """A deployment still rolling (Express's canary, its bake time or a rollback) makes the service busy."""
    deployments = service.get("deployments", [])
    return len(deployments) > 1 or any(d.get("rolloutState") == "IN_PROGRESS" for d in deployments)


def redeploy_ecs_service(ecs: EcsDeployments, ref: EcsServiceRef) -> str:
    """Force a new deployment of exactly this service so new tasks read the new SMTP secret.

    ECS resolves ``Secrets`` when a task starts, like App Runner: running tasks keep the old
    value until they are replaced. A service still rolling out another deployment is busy, as an
    App Runner service in an operation is: the step fails and Secrets Manager's retry (or an
    operator) runs finishSecret again once it is idle, instead of stacking deployments.
    """
    try:
        described = ecs.describe_services(cluster=ref.cluster, services=[ref.arn])
    except ClientError as err:
        raise RotationError(f"ECS DescribeServices failed: {error_code(err)}") from None
    services = [s for s in described.get("services", []) if s.get("serviceArn") == ref.arn]
    if not services:
        raise RotationError(f"ECS service {ref.name} was not found in cluster {ref.cluster}")
    status = services[0].get("status")
    if status != "ACTIVE":
        raise RotationError(f"ECS service {ref.name} is {status}, not ACTIVE; nothing to redeploy")
    if _busy(services[0]):
        raise RotationError(
            "ECS service is busy with another deployment; run finishSecret again (or force a new deployment) "
            "once it is idle"
        )
    try:
        resp = ecs.update_service(cluster=ref.cluster, service=ref.arn, forceNewDeployment=True)
    except ClientError as err:
        raise RotationError(f"ECS UpdateService failed: {error_code(err)}") from None
    deployments = resp.get("service", {}).get("deployments", [])
    primary: Mapping[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    deployment = str(primary.get("id", ""))
    logger.info("forced a new ECS deployment", extra={"service": ref.name, "deployment_id": deployment})
    return deployment
