"""boto3 clients built once per container, with one retry/timeout policy.

Endpoints are never passed explicitly: boto3 reads ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` itself, which is how the local emulators (moto
server, the App Runner emulator) are reached. Do not defeat that.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Standard mode retries throttling and transient errors with jittered backoff;
# the short connect timeout keeps a broken endpoint from eating a custom
# resource's time budget (it must always answer CloudFormation).
DEFAULT_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
)


@functools.cache
def client(service: str, region_name: str | None = None) -> Any:
    """Return a cached boto3 client for ``service``.

    Returns ``Any`` so callers can annotate the precise ``mypy_boto3_*`` type.
    """
    # Typed as Any: the service name is a runtime string, not one of the stub's literals.
    session: Any = boto3.session.Session()
    return session.client(service, region_name=region_name, config=DEFAULT_CONFIG)


def reset() -> None:
    """Forget cached clients (tests switch endpoints and credentials between cases)."""
    client.cache_clear()
