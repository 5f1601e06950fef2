"""The clients one rotation step needs, and how to build a client *as the rotated user*."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from redcap_ctl import clients

if TYPE_CHECKING:
    from mypy_boto3_apprunner import AppRunnerClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_rds_data import RDSDataServiceClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_wafv2 import WAFV2Client

    from redcap_ctl.rotation.consumers import EcsDeployments

# The probes retry on their own (IAM propagation), so the SDK must not hide
# an InvalidClientTokenId behind its own retries.
_PROBE_CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=15)

UserClientFactory = Callable[[str, str, str, str], Any]


def user_client(service: str, access_key_id: str, secret_access_key: str, region: str) -> Any:
    """A client that signs with the given key only (never the function's role token).

    Endpoints still come from ``AWS_ENDPOINT_URL*`` so emulators work unchanged.
    """
    return clients.session().client(
        service,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        aws_session_token=None,
        config=_PROBE_CONFIG,
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RotationClients:
    secrets: SecretsManagerClient
    iam: IAMClient | None = None
    rds_data: RDSDataServiceClient | None = None
    apprunner: AppRunnerClient | None = None
    ecs: EcsDeployments | None = None
    wafv2: WAFV2Client | None = None
    as_user: UserClientFactory = user_client
    sleep: Callable[[float], None] = field(default=time.sleep)
    now: Callable[[], datetime] = field(default=_utcnow)

    def need_iam(self) -> IAMClient:
        if self.iam is None:
            raise RuntimeError("this secret kind needs an IAM client")
        return self.iam

    def need_rds_data(self) -> RDSDataServiceClient:
        if self.rds_data is None:
            raise RuntimeError("this secret kind needs an RDS Data API client")
        return self.rds_data

    def need_apprunner(self) -> AppRunnerClient:
        if self.apprunner is None:
            raise RuntimeError("this secret kind needs an App Runner client")
        return self.apprunner

    def need_ecs(self) -> EcsDeployments:
        if self.ecs is None:
            raise RuntimeError("redeploying an ECS service needs an ECS client")
        return self.ecs

    def need_wafv2(self) -> WAFV2Client:
        if self.wafv2 is None:
            raise RuntimeError("this secret kind needs a WAFv2 client")
        return self.wafv2
