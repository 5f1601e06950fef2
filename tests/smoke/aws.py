"""The stack as CloudFormation describes it, and AWS clients that can only read.

Every client comes from one boto3 session whose event hook refuses, before anything is signed or
sent, any operation whose name does not start with Describe, Get, List or Head: smoke cannot
write, whatever a future check asks for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

READ_PREFIXES = ("Describe", "Get", "List", "Head")


class SmokeError(Exception):
    """Stops the whole run (no stack, no credentials): the message says what to do."""


class WriteRefused(Exception):
    """A call that is not read-only was attempted; it was never sent."""


def refuse_writes(model: Any, **_: Any) -> None:
    """botocore ``before-call`` hook: only Describe*/Get*/List*/Head* operations go out."""
    name = str(model.name)
    if not name.startswith(READ_PREFIXES):
        service = model.service_model.service_name
        raise WriteRefused(f"smoke is read-only: refused {service}:{name}")


def read_only_session(region: str | None = None, session: boto3.session.Session | None = None) -> Any:
    """A session whose clients refuse every operation that is not a read (hook registered first)."""
    session = session or boto3.session.Session(region_name=region)
    session.events.register("before-call", refuse_writes, unique_id="smoke-read-only")
    return session


@dataclass(frozen=True)
class Resource:
    logical_id: str
    type: str
    physical_id: str
    status: str


@dataclass(frozen=True)
class Stack:
    name: str
    region: str
    status: str
    reason: str
    parameters: dict[str, str]
    outputs: dict[str, str]
    resources: dict[str, Resource]

    def param(self, name: str) -> str:
        return self.parameters.get(name, "").strip()

    def physical(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        return resource.physical_id if resource and resource.physical_id else None

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources.values() if r.type == type_ and r.physical_id]

    @property
    def express(self) -> bool:
        return self.param("ComputeType") == "EcsExpress"

    @property
    def prod(self) -> bool:
        return self.param("Environment") == "prod"


def _code(err: Exception) -> str:
    response = getattr(err, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def load_stack(cloudformation: Any, name: str, region: str) -> Stack:
    """DescribeStacks and ListStackResources (all pages) of ``name``."""
    try:
        described = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
    except ClientError as err:
        if _code(err) == "ValidationError":
            raise SmokeError(f"stack {name} does not exist in {region} (wrong --region, or not deployed yet)") from None
        raise
    parameters = {
        str(p["ParameterKey"]): str(p.get("ResolvedValue", p.get("ParameterValue", "")))
        for p in described.get("Parameters", [])
    }
    outputs = {str(o["OutputKey"]): str(o.get("OutputValue", "")) for o in described.get("Outputs", [])}
    resources: dict[str, Resource] = {}
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name):
        for summary in page.get("StackResourceSummaries", []):
            resource = Resource(
                logical_id=str(summary["LogicalResourceId"]),
                type=str(summary["ResourceType"]),
                physical_id=str(summary.get("PhysicalResourceId", "")),
                status=str(summary.get("ResourceStatus", "")),
            )
            resources[resource.logical_id] = resource
    return Stack(
        name=name,
        region=region,
        status=str(described["StackStatus"]),
        reason=str(described.get("StackStatusReason", "")),
        parameters=parameters,
        outputs=outputs,
        resources=resources,
    )


def chunks(items: Iterable[str], size: int) -> list[list[str]]:
    listed = list(items)
    return [listed[i : i + size] for i in range(0, len(listed), size)]
