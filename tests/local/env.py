"""Local AWS on 127.0.0.1: moto in server mode (with optional fault injection).

The moto server runs in a thread of this process on a free port; SDK clients
reach it only through ``AWS_ENDPOINT_URL`` (boto3 reads it itself, the code
under test never passes an endpoint). ``break_services`` makes every request
for those services fail, non-retryably, with ``InjectedFault``: that is how the
self-test proves ``make local`` fails loudly when an emulated service breaks.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

HOST = "127.0.0.1"
REGION = "us-east-1"
# moto's default account; STS GetCallerIdentity answers it for any moto key.
ACCOUNT_ID = "123456789012"

# SigV4 credential scope: Credential=<key>/<date>/<region>/<service>/aws4_request
_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([a-z0-9-]+)/aws4_request")

# Services whose protocol (query or rest-xml) answers errors in XML; the others speak JSON.
_XML_SERVICES = frozenset(
    {"route53", "s3", "iam", "sts", "ec2", "sqs", "sns", "rds", "cloudformation", "ses", "cloudwatch", "autoscaling"}
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def signing_service(environ: Mapping[str, Any]) -> str:
    match = _SCOPE_RE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    return match.group(1) if match else ""


class FaultSwitch:
    """Faults apply only while a handler runs, so the runner's own set-up and checks still work."""

    def __init__(self) -> None:
        self._armed = threading.Event()

    @property
    def armed(self) -> bool:
        return self._armed.is_set()

    @contextmanager
    def arm(self) -> Iterator[None]:
        self._armed.set()
        try:
            yield
        finally:
            self._armed.clear()


FAULTS = FaultSwitch()


def fault_injector(app: WsgiApp, broken: frozenset[str]) -> WsgiApp:
    """Answer HTTP 400 ``InjectedFault`` for the broken services while a handler runs.

    400 rather than 5xx: botocore's standard retry mode would retry a 5xx with
    backoff for several seconds before giving up; the point is a fast, loud
    failure with a recognisable message.
    """

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service = signing_service(environ)
        if service not in broken or not FAULTS.armed:
            return app(environ, start_response)
        message = f"emulated {service} is broken on purpose (make local BREAK={service})"
        if service in _XML_SERVICES:
            body = (
                "<ErrorResponse><Error><Type>Sender</Type><Code>InjectedFault</Code>"
                f"<Message>{message}</Message></Error></ErrorResponse>"
            ).encode()
            ctype = "text/xml"
        else:
            body = json.dumps({"__type": "InjectedFault", "message": message}).encode()
            ctype = "application/x-amz-json-1.1"
        headers = [("Content-Type", ctype), ("Content-Length", str(len(body))), ("x-amzn-ErrorType", "InjectedFault")]
        start_response("400 Bad Request", headers)
        return [body]

    return wrapped


class LocalMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer on 127.0.0.1, a free port, quiet, with fault injection."""

    def __init__(self, broken: Iterable[str] = ()) -> None:
        super().__init__(ip_address=HOST, port=0, verbose=False)
        self.broken = frozenset(broken)

    def _server_entry(self) -> None:
        from local import moto_gaps

        moto_gaps.apply()
        app: WsgiApp = moto_gaps.guardduty_tags(DomainDispatcherApplication(create_backend_app))
        if self.broken:
            app = fault_injector(app, self.broken)
        self._server = make_server(HOST, 0, app, True, request_handler=QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


class QuietHandler(MotoRequestHandler):
    """No access log lines between the rows of the results table."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "", None}


def _loopback(host: object) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def _network_guard(event: str, args: tuple[object, ...]) -> None:
    if event == "socket.getaddrinfo" and not _loopback(args[0]):
        raise PermissionError(f"make local talks only to 127.0.0.1; refused to resolve {args[0]!r}")
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _loopback(address[0]):
            raise PermissionError(f"make local talks only to 127.0.0.1; refused to connect to {address[0]!r}")


_guard_installed = False


def install_network_guard() -> None:
    """Refuse (in this process) any DNS lookup or connection that is not loopback.

    A handler that somehow missed ``AWS_ENDPOINT_URL`` must fail loudly here,
    not reach a real AWS endpoint. Audit hooks cannot be removed, so this is
    for the ``make local``/bench processes only, never for the test suite.
    """
    global _guard_installed
    if not _guard_installed:
        sys.addaudithook(_network_guard)
        _guard_installed = True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# Variables a developer's shell might carry that would send the SDK elsewhere
# (a real account, a profile, another endpoint): never inherited.
_SCRUB = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def sandbox_environ(moto_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The AWS part of the environment every handler (and bench child) runs with."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's fake credentials, not a secret
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "POWERTOOLS_METRICS_NAMESPACE": "REDCap/redcap-local",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    # Any AWS_ENDPOINT_URL_<SERVICE> from the caller's shell is dropped too: the
    # only per-service endpoints are the emulators this run starts.
    env.update(extra or {})
    return env


@contextmanager
def patched_environ(values: Mapping[str, str], *, scrub: bool = False) -> Iterator[None]:
    """Set ``values`` in os.environ for the block and restore the previous state after.

    ``scrub`` first removes whatever could point the SDK at a real account or
    another endpoint (the run-wide sandbox); a handler's own variables are laid
    on top of that sandbox without scrubbing it again.
    """
    saved = dict(os.environ)
    try:
        if scrub:
            for name in list(os.environ):
                if name in _SCRUB or name.startswith("AWS_ENDPOINT_URL"):
                    del os.environ[name]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
