"""A stateful emulator of App Runner's custom-domain API (moto has no App Runner).

Usable two ways:

- in-process: ``AppRunnerEmulator().handle("DescribeCustomDomains", {...})``,
  or ``with emulator.serve() as url:`` and point ``AWS_ENDPOINT_URL_APPRUNNER``
  at ``url`` so real boto3 clients (and the real handler) talk to it;
- as a local server for ``make local``:
  ``python -m testkit.emulators.apprunner --port 4599`` (127.0.0.1 only).

It speaks App Runner's awsJson1_0 protocol (``POST /`` with
``X-Amz-Target: AppRunner.<Operation>``) and answers errors in the JSON shape
botocore parses (``{"__type": ..., "Message": ...}``), so clients see real
``ClientError`` codes. What it models, because the custom resource depends on it:

- statuses are lower-case strings and move ``creating`` ->
  ``pending_certificate_dns_validation`` (-> ``active`` when configured);
- validation records appear only after ``records_after`` describes (and, if
  set, ``publish_delay`` seconds): ``published_at`` records when, for the bench;
- ``DescribeCustomDomains`` is paginated (``MaxResults`` 1..5, ``NextToken``);
- at most five custom domains per service;
- ``DisassociateCustomDomain`` -> ``deleting`` -> gone after ``delete_after`` describes;
- ``DescribeService`` returns ``NetworkConfiguration.IpAddressType`` and, when set, the ECR image the
  service runs (``SourceConfiguration.ImageRepository.ImageIdentifier``, as App Runner's API reference shows);
- ``StartDeployment`` answers an ``OperationId`` and appends the service ARN to
  ``deployments`` (the SES key rotation redeploys the service), so tests can assert it;
- injected faults: access denied per operation, a busy service
  (``InvalidStateException``) for the next N calls, ``create_failed``, a CAA
  problem, ``delete_failed``. The real ``CustomDomain`` has no reason field, so
  a ``create_failed`` domain carries its reason the way App Runner does: its
  validation records turn ``FAILED``. A CAA problem is refused at
  ``AssociateCustomDomain`` with ACM's CAA message.

Control endpoints for an out-of-process server (JSON bodies):
``POST /_emulator/services`` ``{"Name", "IpAddressType"}`` -> ``{"ServiceArn"}``;
``POST /_emulator/faults`` with any of the :class:`Faults` fields;
``GET /_emulator/state``; ``GET /_emulator/deployments`` -> ``{"Deployments": [ARN, ...]}``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from testkit.emulators import serving

MAX_DOMAINS = 5
MAX_PAGE = 5
_ARN_RE = re.compile(r"^arn:aws[a-z-]*:apprunner:([a-z0-9-]+):(\d{12}):service/([A-Za-z0-9_-]{4,40})/([0-9a-f]{32})$")
_DOMAIN_RE = re.compile(r"^[A-Za-z0-9*.-]{1,255}$")

CAA_MESSAGE = (
    "At least one of your domains has a CAA record that does not include Amazon as an approved "
    'Certificate Authority. Add a CAA record such as [0 issue "amazontrust.com"] and try again.'
)


class ApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class Faults:
    """Failures to inject. Mutate freely between calls (guarded by the emulator's lock)."""

    access_denied: set[str] = field(default_factory=set)  # operation names
    busy: dict[str, int] = field(default_factory=dict)  # operation -> InvalidStateException answers left
    create_failed: set[str] = field(default_factory=set)  # domains that end in create_failed
    caa_problem: set[str] = field(default_factory=set)  # domains whose AssociateCustomDomain is refused
    delete_failed: set[str] = field(default_factory=set)  # domains that end in delete_failed


@dataclass
class DomainState:
    name: str
    www: bool
    nonce: int
    status: str = "creating"
    describes: int = 0
    created_at: float = field(default_factory=time.monotonic)
    published_at: float | None = None  # the describe that first returned the records
    describe_times: list[float] = field(default_factory=list)  # describes while creating, for the bench
    records: list[dict[str, str]] = field(default_factory=list)
    delete_describes: int = 0
    records_after: int = 1
    publish_delay: float = 0.0

    @property
    def available_at(self) -> float | None:
        """When the records became available: the moment both of the emulator's conditions held.

        A describe at or after this moment returns them; ``published_at`` is when one did.
        """
        if self.published_at is None:
            return None
        n = self.records_after
        counted = self.describe_times[n - 1] if 1 <= n <= len(self.describe_times) else self.created_at
        return max(counted, self.created_at + self.publish_delay)

    @property
    def interval_at_publication(self) -> float | None:
        """The gap between the describe before ``available_at`` and the one that saw the records."""
        if self.published_at is None or len(self.describe_times) < 2:
            return None
        return self.published_at - self.describe_times[-2]

    def to_api(self) -> dict[str, Any]:
        return {
            "DomainName": self.name,
            "EnableWWWSubdomain": self.www,
            "Status": self.status,
            "CertificateValidationRecords": [dict(r) for r in self.records],
        }


@dataclass
class ServiceState:
    arn: str
    ip_address_type: str = "IPV4"
    image_identifier: str = ""
    domains: dict[str, DomainState] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.arn.split("/")[1]

    @property
    def service_id(self) -> str:
        return self.arn.split("/")[2]

    @property
    def dns_target(self) -> str:
        region = self.arn.split(":")[3]
        return f"{self.service_id[:10]}.{region}.awsapprunner.com"


class AppRunnerEmulator:
    def __init__(
        self,
        *,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        records_after: int = 2,
        publish_delay: float = 0.0,
        active_after: int | None = None,
        delete_after: int = 1,
        page_size: int = MAX_PAGE,
        auto_create_services: bool = True,
    ) -> None:
        self._settings = {
            "records_after": records_after,
            "publish_delay": publish_delay,
            "active_after": active_after,
            "delete_after": delete_after,
            "page_size": page_size,
        }
        self.region = region
        self.account_id = account_id
        self.records_after = records_after
        self.publish_delay = publish_delay
        self.active_after = active_after
        self.delete_after = delete_after
        self.page_size = page_size
        self.auto_create_services = auto_create_services
        self.faults = Faults()
        self.services: dict[str, ServiceState] = {}
        self.calls: list[str] = []
        self.deployments: list[str] = []  # service ARNs, one per StartDeployment
        self.removed: set[str] = set()
        self.lock = threading.RLock()
        self._nonce = 0

    def reset(self) -> None:
        """Forget all state and faults and restore the constructor's settings (one server, many tests)."""
        with self.lock:
            for key, value in self._settings.items():
                setattr(self, key, value)
            self.faults = Faults()
            self.services.clear()
            self.removed.clear()
            self.calls.clear()
            self.deployments.clear()
            self._nonce = 0

    # --- set-up helpers ---------------------------------------------------
    def service_arn(self, name: str = "redcap") -> str:
        sid = hashlib.sha256(name.encode()).hexdigest()[:32]
        return f"arn:aws:apprunner:{self.region}:{self.account_id}:service/{name}/{sid}"

    def add_service(self, name: str = "redcap", ip_address_type: str = "IPV4") -> str:
        arn = self.service_arn(name)
        with self.lock:
            self.services[arn] = ServiceState(arn=arn, ip_address_type=ip_address_type)
            self.removed.discard(arn)
        return arn

    def remove_service(self, arn: str) -> None:
        with self.lock:
            self.services.pop(arn, None)
            self.removed.add(arn)

    def domain(self, arn: str, name: str) -> DomainState | None:
        with self.lock:
            svc = self.services.get(arn)
            return None if svc is None else svc.domains.get(name)

    def dns_target(self, arn: str) -> str:
        return self._service(arn).dns_target

    def force_remove_domain(self, arn: str, name: str) -> None:
        """Someone removed the association outside CloudFormation."""
        with self.lock:
            self._service(arn).domains.pop(name, None)

    # --- protocol ---------------------------------------------------------
    def handle(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Run one API call; returns (HTTP status, JSON body) exactly as served."""
        with self.lock:
            self.calls.append(operation)
            try:
                method = getattr(self, f"_op_{operation}", None)
                if method is None:
                    raise ApiError("UnknownOperationException", f"{operation} is not emulated")
                if operation in self.faults.access_denied:
                    raise ApiError(
                        "AccessDeniedException",
                        f"User: arn:aws:sts::{self.account_id}:assumed-role/custom-domain is not authorized to "
                        f"perform: apprunner:{operation} on resource: {body.get('ServiceArn', '*')}",
                    )
                left = self.faults.busy.get(operation, 0)
                if left > 0:
                    self.faults.busy[operation] = left - 1
                    raise ApiError(
                        "InvalidStateException",
                        "The service is in OPERATION_IN_PROGRESS state; wait for the operation to finish.",
                    )
                result: dict[str, Any] = method(body)
                return 200, result
            except ApiError as err:
                return err.status, {"__type": err.code, "Message": err.message}

    def _service(self, arn: Any) -> ServiceState:
        if not isinstance(arn, str) or not _ARN_RE.match(arn):
            raise ApiError("InvalidRequestException", "ServiceArn is not a valid App Runner service ARN")
        svc = self.services.get(arn)
        if svc is None:
            if not self.auto_create_services or arn in self.removed:
                raise ApiError("ResourceNotFoundException", f"Service {arn} not found")
            svc = self.services[arn] = ServiceState(arn=arn)
        return svc

    def _existing_service(self, arn: Any) -> ServiceState:
        if isinstance(arn, str) and arn in self.removed:
            raise ApiError("ResourceNotFoundException", f"Service {arn} not found")
        return self._service(arn)

    def _records_for(self, svc: ServiceState, dom: DomainState) -> list[dict[str, str]]:
        def rec(label: str, seed: str) -> dict[str, str]:
            digest = hashlib.sha256(f"{seed}:{dom.nonce}".encode()).hexdigest()
            return {
                "Name": f"_{digest[:32]}.{label}.",
                "Type": "CNAME",
                "Value": f"_{digest[32:64]}.{digest[:10]}.acm-validations.aws.",
                "Status": "PENDING_VALIDATION",
            }

        base = dom.name.removeprefix("*.")
        records = [rec(base, base), rec(f"{svc.service_id[:8]}.{base}", "internal")]
        if dom.www:
            records.append(rec(f"www.{base}", "www"))
        return records

    def _tick(self, svc: ServiceState) -> None:
        now = time.monotonic()
        for name, dom in list(svc.domains.items()):
            if dom.status == "creating":
                dom.describes += 1
                dom.describe_times.append(now)
                if dom.describes >= self.records_after and now - dom.created_at >= self.publish_delay:
                    dom.records = self._records_for(svc, dom)
                    dom.published_at = now
                    if name in self.faults.create_failed:
                        dom.status = "create_failed"
                        for r in dom.records:
                            r["Status"] = "FAILED"
                    else:
                        dom.status = "pending_certificate_dns_validation"
            elif dom.status == "pending_certificate_dns_validation":
                dom.describes += 1
                if self.active_after is not None and dom.describes >= self.active_after:
                    dom.status = "active"
                    for r in dom.records:
                        r["Status"] = "SUCCESS"
            elif dom.status == "deleting":
                dom.delete_describes += 1
                if dom.delete_describes >= self.delete_after:
                    if name in self.faults.delete_failed:
                        dom.status = "delete_failed"
                    else:
                        del svc.domains[name]

    def _op_AssociateCustomDomain(self, body: dict[str, Any]) -> dict[str, Any]:
        svc = self._service(body.get("ServiceArn"))
        name = body.get("DomainName")
        if not isinstance(name, str) or not _DOMAIN_RE.match(name):
            raise ApiError("InvalidRequestException", "DomainName must match [A-Za-z0-9*.-]{1,255}")
        www = body.get("EnableWWWSubdomain", True)  # the real API's default
        if not isinstance(www, bool):
            raise ApiError("InvalidRequestException", "EnableWWWSubdomain must be a boolean")
        if name in svc.domains:
            raise ApiError("InvalidRequestException", f"Domain {name} is already associated with the service")
        for other in self.services.values():
            if other is not svc and name in other.domains:
                raise ApiError("InvalidRequestException", f"Domain {name} is associated with another service")
        if len(svc.domains) >= MAX_DOMAINS:
            raise ApiError(
                "InvalidRequestException",
                f"The service already has the maximum of {MAX_DOMAINS} custom domains",
            )
        if name in self.faults.caa_problem:
            raise ApiError("InvalidRequestException", CAA_MESSAGE)
        self._nonce += 1
        dom = DomainState(
            name=name, www=www, nonce=self._nonce, records_after=self.records_after, publish_delay=self.publish_delay
        )
        svc.domains[name] = dom
        return {
            "DNSTarget": svc.dns_target,
            "ServiceArn": svc.arn,
            "CustomDomain": dom.to_api(),
            "VpcDNSTargets": [],
        }

    def _op_DescribeCustomDomains(self, body: dict[str, Any]) -> dict[str, Any]:
        svc = self._existing_service(body.get("ServiceArn"))
        max_results = body.get("MaxResults", MAX_PAGE)
        if not isinstance(max_results, int) or not 1 <= max_results <= MAX_PAGE:
            raise ApiError("InvalidRequestException", f"MaxResults must be between 1 and {MAX_PAGE}")
        offset = 0
        token = body.get("NextToken")
        if token is not None:
            try:
                offset = int(base64.b64decode(str(token)).decode())
            except ValueError:
                raise ApiError("InvalidRequestException", "NextToken is invalid") from None
        else:
            # A new listing (not a follow-up page) is what moves time on.
            self._tick(svc)
        names = sorted(svc.domains)
        size = min(max_results, self.page_size)
        page = names[offset : offset + size]
        out: dict[str, Any] = {
            "DNSTarget": svc.dns_target,
            "ServiceArn": svc.arn,
            "CustomDomains": [svc.domains[n].to_api() for n in page],
            "VpcDNSTargets": [],
        }
        if offset + size < len(names):
            out["NextToken"] = base64.b64encode(str(offset + size).encode()).decode()
        return out

    def _op_DisassociateCustomDomain(self, body: dict[str, Any]) -> dict[str, Any]:
        svc = self._existing_service(body.get("ServiceArn"))
        name = body.get("DomainName")
        dom = svc.domains.get(name) if isinstance(name, str) else None
        if dom is None:
            raise ApiError("ResourceNotFoundException", f"Domain {name} is not associated with the service")
        dom.status = "deleting"
        dom.delete_describes = 0
        return {
            "DNSTarget": svc.dns_target,
            "ServiceArn": svc.arn,
            "CustomDomain": dom.to_api(),
            "VpcDNSTargets": [],
        }

    def _op_DescribeService(self, body: dict[str, Any]) -> dict[str, Any]:
        svc = self._existing_service(body.get("ServiceArn"))
        return {
            "Service": {
                "ServiceName": svc.name,
                "ServiceId": svc.service_id,
                "ServiceArn": svc.arn,
                "ServiceUrl": svc.dns_target,
                "CreatedAt": 1_700_000_000,
                "UpdatedAt": 1_700_000_000,
                "Status": "RUNNING",
                "SourceConfiguration": (
                    {"ImageRepository": {"ImageIdentifier": svc.image_identifier, "ImageRepositoryType": "ECR"}}
                    if svc.image_identifier
                    else {}
                ),
                "InstanceConfiguration": {"Cpu": "2048", "Memory": "4096"},
                "AutoScalingConfigurationSummary": {},
                "NetworkConfiguration": {
                    "EgressConfiguration": {"EgressType": "DEFAULT"},
                    "IngressConfiguration": {"IsPubliclyAccessible": True},
                    "IpAddressType": svc.ip_address_type,
                },
            }
        }

    def _op_StartDeployment(self, body: dict[str, Any]) -> dict[str, Any]:
        svc = self._existing_service(body.get("ServiceArn"))
        self.deployments.append(svc.arn)
        return {"OperationId": uuid.uuid4().hex}

    # --- HTTP -------------------------------------------------------------
    def _control(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if method == "POST" and path == "/_emulator/services":
                arn = self.add_service(str(body.get("Name", "redcap")), str(body.get("IpAddressType", "IPV4")))
                return 200, {"ServiceArn": arn}
            if method == "POST" and path == "/_emulator/faults":
                for key, value in body.items():
                    if not hasattr(self.faults, key):
                        return 400, {"Message": f"unknown fault {key}"}
                    current = getattr(self.faults, key)
                    setattr(self.faults, key, dict(value) if isinstance(current, dict) else set(value))
                return 200, {}
            if method == "GET" and path == "/_emulator/state":
                return 200, {arn: {n: d.to_api() for n, d in svc.domains.items()} for arn, svc in self.services.items()}
            if method == "GET" and path == "/_emulator/deployments":
                return 200, {"Deployments": list(self.deployments)}
        return 404, {"Message": f"no such control endpoint {method} {path}"}

    def make_server(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the emulator only listens on the loopback interface")
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", hashlib.md5(data, usedforsecurity=False).hexdigest())
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length) if length else b"{}"
                parsed = json.loads(raw or b"{}")
                return parsed if isinstance(parsed, dict) else {}

            def do_POST(self) -> None:
                if self.path.startswith("/_emulator/"):
                    self._reply(*emulator._control("POST", self.path, self._body()))
                    return
                target = self.headers.get("X-Amz-Target", "")
                prefix, _, operation = target.partition(".")
                if prefix != "AppRunner" or not operation:
                    self._reply(400, {"__type": "UnknownOperationException", "Message": f"bad target {target!r}"})
                    return
                self._reply(*emulator.handle(operation, self._body()))

            def do_GET(self) -> None:
                self._reply(*emulator._control("GET", self.path, {}))

            def log_message(self, format: str, *args: Any) -> None:
                return

        return ThreadingHTTPServer((host, port), Handler)

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve on 127.0.0.1 in a daemon thread; yields the endpoint URL."""
        with serving(self.make_server(port=port)) as url:
            yield url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="App Runner custom-domain emulator on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--records-after", type=int, default=2, help="describes before records appear")
    parser.add_argument("--publish-delay", type=float, default=0.0, help="seconds before records appear")
    parser.add_argument("--active-after", type=int, default=None, help="describes before the domain is active")
    parser.add_argument("--delete-after", type=int, default=1, help="describes before a deleting domain is gone")
    parser.add_argument("--page-size", type=int, default=MAX_PAGE)
    args = parser.parse_args(argv)
    emulator = AppRunnerEmulator(
        region=args.region,
        records_after=args.records_after,
        publish_delay=args.publish_delay,
        active_after=args.active_after,
        delete_after=args.delete_after,
        page_size=args.page_size,
    )
    server = emulator.make_server(port=args.port)
    # The runner reads this line to learn the port (0 means "pick a free one").
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
