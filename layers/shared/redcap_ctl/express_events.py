"""EventBridge events of an ECS Express service that the control plane reacts to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def is_deployment_start(event: Mapping[str, Any], service_arn: str) -> bool:
    """An EventBridge "ECS Deployment State Change" for this service's deployment starting."""
    return (
        event.get("source") == "aws.ecs"
        and event.get("detail-type") == "ECS Deployment State Change"
        and service_arn in event.get("resources", [])
        and event.get("detail", {}).get("eventName") == "SERVICE_DEPLOYMENT_IN_PROGRESS"
    )
