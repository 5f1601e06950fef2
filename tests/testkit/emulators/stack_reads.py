"""What moto cannot answer for ``make smoke``: a deployed stack's read side, and SES's account status.

A WSGI layer in front of the moto server (same process, 127.0.0.1):

- CloudFormation ``DescribeStacks`` and ``ListStackResources`` for the stacks registered here, in the
  query protocol's XML as the CloudFormation API reference shows it (``<DescribeStacksResult>`` with
  ``Stacks/member``; ``<ListStackResourcesResult>`` with ``StackResourceSummaries/member``). An
  unknown stack answers AWS's ``ValidationError`` "Stack with id NAME does not exist". moto's own
  stacks would need a template moto can create; make local creates each resource itself instead.
- SES v2 ``GetAccount`` (``GET /v2/email/account``, SES API v2 reference), which moto 5.2.5 lacks:
  ``ProductionAccessEnabled``, ``SendingEnabled`` and ``EnforcementStatus`` as set here.

Everything else goes to moto unchanged.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
_NS = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
_STAMP = "2026-12-01T00:00:00.000Z"


@dataclass
class DeployedStack:
    name: str
    stack_id: str
    status: str = "CREATE_COMPLETE"
    reason: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    # logical id -> (resource type, physical id)
    resources: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class SesAccount:
    production_access: bool = True
    sending_enabled: bool = True
    enforcement_status: str = "HEALTHY"


class StackReads:
    def __init__(self) -> None:
        self.stacks: dict[str, DeployedStack] = {}
        self.ses = SesAccount()
        self.lock = threading.Lock()

    def add(self, stack: DeployedStack) -> None:
        with self.lock:
            self.stacks[stack.name] = stack

    # --- CloudFormation (query protocol, XML) ---------------------------------
    def _describe(self, stack: DeployedStack) -> str:
        params = "".join(
            f"<member><ParameterKey>{escape(k)}</ParameterKey><ParameterValue>{escape(v)}</ParameterValue></member>"
            for k, v in stack.parameters.items()
        )
        outputs = "".join(
            f"<member><OutputKey>{escape(k)}</OutputKey><OutputValue>{escape(v)}</OutputValue></member>"
            for k, v in stack.outputs.items()
        )
        reason = f"<StackStatusReason>{escape(stack.reason)}</StackStatusReason>" if stack.reason else ""
        return (
            f'<DescribeStacksResponse xmlns="{_NS}"><DescribeStacksResult><Stacks><member>'
            f"<StackName>{escape(stack.name)}</StackName><StackId>{escape(stack.stack_id)}</StackId>"
            f"<CreationTime>{_STAMP}</CreationTime><StackStatus>{stack.status}</StackStatus>{reason}"
            f"<Parameters>{params}</Parameters><Outputs>{outputs}</Outputs>"
            "</member></Stacks></DescribeStacksResult>"
            "<ResponseMetadata><RequestId>smoke-stack-reads</RequestId></ResponseMetadata></DescribeStacksResponse>"
        )

    def _resources(self, stack: DeployedStack) -> str:
        members = "".join(
            f"<member><LogicalResourceId>{escape(logical)}</LogicalResourceId>"
            f"<PhysicalResourceId>{escape(physical)}</PhysicalResourceId>"
            f"<ResourceType>{escape(type_)}</ResourceType><LastUpdatedTimestamp>{_STAMP}</LastUpdatedTimestamp>"
            "<ResourceStatus>CREATE_COMPLETE</ResourceStatus></member>"
            for logical, (type_, physical) in stack.resources.items()
        )
        return (
            f'<ListStackResourcesResponse xmlns="{_NS}"><ListStackResourcesResult>'
            f"<StackResourceSummaries>{members}</StackResourceSummaries></ListStackResourcesResult>"
            "<ResponseMetadata><RequestId>smoke-stack-reads</RequestId></ResponseMetadata></ListStackResourcesResponse>"
        )

    def _cloudformation(self, form: dict[str, list[str]]) -> tuple[str, str] | None:
        action = form.get("Action", [""])[0]
        if action not in ("DescribeStacks", "ListStackResources"):
            return None
        name = form.get("StackName", [""])[0]
        with self.lock:
            stack = self.stacks.get(name)
            if stack is None:
                message = f"Stack with id {name} does not exist"
                body = (
                    f'<ErrorResponse xmlns="{_NS}"><Error><Type>Sender</Type><Code>ValidationError</Code>'
                    f"<Message>{escape(message)}</Message></Error><RequestId>smoke</RequestId></ErrorResponse>"
                )
                return "400 Bad Request", body
            return "200 OK", self._describe(stack) if action == "DescribeStacks" else self._resources(stack)

    def _ses_account(self) -> str:
        with self.lock:
            return json.dumps(
                {
                    "DedicatedIpAutoWarmupEnabled": False,
                    "EnforcementStatus": self.ses.enforcement_status,
                    "ProductionAccessEnabled": self.ses.production_access,
                    "SendingEnabled": self.ses.sending_enabled,
                    "SendQuota": {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0},
                }
            )

    def wrap(self, app: WsgiApp) -> WsgiApp:
        def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            method = environ.get("REQUEST_METHOD", "")
            path = environ.get("PATH_INFO", "")
            if method == "GET" and path == "/v2/email/account":
                data = self._ses_account().encode()
                start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
                return [data]
            if method == "POST" and path in ("", "/"):
                length = int(environ.get("CONTENT_LENGTH") or 0)
                raw = environ["wsgi.input"].read(length) if length else b""
                environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again when this is not ours
                answer = self._cloudformation(parse_qs(raw.decode("utf-8", "replace")))
                if answer is not None:
                    status, body = answer
                    data = body.encode()
                    start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
                    return [data]
            return app(environ, start_response)

        return wrapped
