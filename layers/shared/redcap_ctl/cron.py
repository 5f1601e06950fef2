"""Call REDCap's ``cron.php`` once, with the secret header WAF lets through.

The scheduler invokes the cron caller every ``CronMinutes``; this module does
the work: read the header value (cached with Powertools Parameters), GET
``CRON_URL`` with it, and report one of three outcomes:

* 2xx -> success (metric ``CronSuccess``).
* Read timeout after the request was sent -> :attr:`Outcome.TIMEOUT` (metric
  ``CronTimeout``), *not* an exception: REDCap keeps running the jobs
  server-side after the client gives up, so a long cron run is not a failure
  and must not trip the failure alarm. It is logged as a warning.
* Anything else (non-2xx, connection refused, TLS failure, connect timeout)
  -> :class:`CronFailed` is raised after logging status and latency (metric
  ``CronFailure``), so Lambda's ``Errors`` metric and the alarm see it.

A 403 means WAF (or REDCap) did not accept the header: the usual cause is a
rotation that moved ``AWSCURRENT`` while this container still held the old
value in its cache, so the secret is fetched fresh once and the call retried
once. A rotation therefore never costs more than that one extra request.

The secret value never leaves this module except as the request header: it is
not logged, not in exception messages, not in metrics, not in the URL.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

import urllib3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
from urllib3.exceptions import HTTPError, ReadTimeoutError

from redcap_ctl.config import require_env
from redcap_ctl.errors import ControlPlaneError, InputError
from redcap_ctl.observability import metrics

logger = Logger(child=True)

# App Runner cuts a request at 120 s; the client gives up before that so the
# outcome is ours to report, not a 5xx from the proxy.
MAX_TIMEOUT_SECONDS = 110.0
CONNECT_TIMEOUT_SECONDS = 5.0
# How long a container trusts its cached copy of the secret. A 403 bypasses
# the cache anyway, so this only bounds how stale a copy can get.
SECRET_MAX_AGE_SECONDS = 300
# Left over for logging and flushing metrics when the Lambda budget is short.
SAFETY_MARGIN_SECONDS = 3.0
AWSCURRENT = "AWSCURRENT"

_HEADER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
# A value that could split the header or smuggle another one is refused.
_HEADER_VALUE_RE = re.compile(r"^[\x21-\x7e]{16,4096}$")


class Outcome(StrEnum):
    SUCCESS = "success"
    TIMEOUT = "timeout"


class CronFailed(ControlPlaneError):
    """cron.php was not run: a non-2xx answer, or no answer at all."""


class SecretSource(Protocol):
    """What the caller needs from Powertools' ``SecretsProvider``."""

    def get(self, name: str, *, max_age: int, force_fetch: bool, VersionStage: str) -> object: ...


@dataclass(frozen=True)
class CronConfig:
    url: str
    secret_arn: str
    header_name: str
    timeout_seconds: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CronConfig:
        return cls(
            url=parse_cron_url(require_env("CRON_URL", environ)),
            secret_arn=require_env("CRON_SECRET_ARN", environ),
            header_name=parse_header_name(require_env("CRON_HEADER_NAME", environ)),
            timeout_seconds=parse_timeout(require_env("CRON_TIMEOUT_SECONDS", environ)),
        )


@dataclass(frozen=True)
class CronResult:
    outcome: Outcome
    status: int | None
    latency_ms: int
    attempts: int


def parse_cron_url(url: str, field: str = "CRON_URL") -> str:
    """https anywhere; plain http only to a loopback address (local runs, tests).

    Problems are reported without echoing the URL: a misconfigured URL is the
    classic place for a secret (``?secret=...``) to end up.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InputError(field, "is not a valid URL") from None
    del port  # parsed only to validate it
    if parts.username is not None or parts.password is not None:
        raise InputError(field, "must not carry credentials")
    if parts.query or parts.fragment:
        raise InputError(field, "must not have a query string or fragment (the secret goes in a header)")
    host = (parts.hostname or "").lower()
    if not host:
        raise InputError(field, "has no host")
    if host in ("http", "https"):
        # https://https://...: a service endpoint attribute that already carried its scheme.
        raise InputError(field, "has a doubled scheme (the endpoint already starts with https://)")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and _is_loopback(host):
        return url
    if parts.scheme == "http":
        raise InputError(field, "must use https (plain http is accepted only for loopback addresses)")
    raise InputError(field, "must be an https URL")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_header_name(name: str, field: str = "CRON_HEADER_NAME") -> str:
    if not _HEADER_NAME_RE.match(name):
        raise InputError(field, "must be an HTTP header name (letters, digits and '-')")
    return name


def parse_timeout(value: str, field: str = "CRON_TIMEOUT_SECONDS") -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise InputError(field, f"must be a number of seconds, got {value[:20]!r}") from None
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise InputError(field, f"must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} (App Runner's limit is 120)")
    return seconds


def call_cron(
    config: CronConfig,
    secrets: SecretSource,
    http: urllib3.PoolManager,
    *,
    remaining_seconds: Callable[[], float] | None = None,
) -> CronResult:
    """GET cron.php once (twice after a 403); raise :class:`CronFailed` on failure."""
    secret = _fetch_secret(secrets, config.secret_arn, force=False)
    attempt = 1
    status, latency_ms = _get(config, http, secret, attempt, remaining_seconds)
    if status == 403:
        # Most likely a rotation: our cached value is no longer accepted.
        logger.info("cron.php answered 403; fetching the secret again and retrying once")
        secret = _fetch_secret(secrets, config.secret_arn, force=True)
        attempt = 2
        status, latency_ms = _get(config, http, secret, attempt, remaining_seconds)

    if status is None:
        metrics.add_metric(name="CronTimeout", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="CronLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        logger.warning(
            "cron.php did not answer before the client timeout; REDCap keeps running the jobs server-side",
            extra={"latency_ms": latency_ms, "attempt": attempt, "timeout_seconds": config.timeout_seconds},
        )
        return CronResult(Outcome.TIMEOUT, None, latency_ms, attempt)

    metrics.add_metric(name="CronLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
    if 200 <= status < 300:
        metrics.add_metric(name="CronSuccess", unit=MetricUnit.Count, value=1)
        logger.info("cron.php succeeded", extra={"status": status, "latency_ms": latency_ms, "attempt": attempt})
        return CronResult(Outcome.SUCCESS, status, latency_ms, attempt)

    metrics.add_metric(name="CronFailure", unit=MetricUnit.Count, value=1)
    logger.error("cron.php failed", extra={"status": status, "latency_ms": latency_ms, "attempt": attempt})
    raise CronFailed(f"cron.php answered HTTP {status} after {latency_ms} ms (attempt {attempt})")


def _fetch_secret(secrets: SecretSource, arn: str, *, force: bool) -> str:
    # AWSCURRENT is GetSecretValue's default, asked for by name anyway: the value
    # WAF accepts after a rotation is the one the rotation moved AWSCURRENT to, and
    # an emulator (moto) that answers a stage-less request differently must not
    # hide a caller that would read the wrong version.
    value = secrets.get(arn, max_age=SECRET_MAX_AGE_SECONDS, force_fetch=force, VersionStage=AWSCURRENT)
    if not isinstance(value, str) or not _HEADER_VALUE_RE.match(value):
        # Say what is wrong with it, never what it is.
        raise CronFailed("the cron secret is not a usable header value (16-4096 printable ASCII characters)")
    return value


def _get(
    config: CronConfig,
    http: urllib3.PoolManager,
    secret: str,
    attempt: int,
    remaining_seconds: Callable[[], float] | None,
) -> tuple[int | None, int]:
    """One GET. Returns (status, latency); status None means a read timeout."""
    read_timeout = config.timeout_seconds
    if remaining_seconds is not None:
        # Never let the Lambda be killed mid-request: that would lose the outcome.
        budget = remaining_seconds() - CONNECT_TIMEOUT_SECONDS - SAFETY_MARGIN_SECONDS
        read_timeout = min(read_timeout, max(1.0, budget))
    timeout = urllib3.Timeout(connect=min(CONNECT_TIMEOUT_SECONDS, read_timeout), read=read_timeout)
    started = time.monotonic()
    try:
        response = http.request(
            "GET",
            config.url,
            headers={config.header_name: secret, "User-Agent": "redcap-cron-caller"},
            timeout=timeout,
            retries=False,
            redirect=False,  # a redirect must not carry the header to another host
            preload_content=True,
        )
    except ReadTimeoutError:
        return None, _ms_since(started)
    except HTTPError as err:
        latency_ms = _ms_since(started)
        metrics.add_metric(name="CronFailure", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="CronLatency", unit=MetricUnit.Milliseconds, value=latency_ms)
        # The class name says enough (refused, TLS, connect timeout); the
        # message could quote request details, so it is not passed on.
        kind = type(err).__name__
        logger.error("cron.php unreachable", extra={"error": kind, "latency_ms": latency_ms, "attempt": attempt})
        raise CronFailed(f"cron.php unreachable: {kind} after {latency_ms} ms (attempt {attempt})") from None
    return response.status, _ms_since(started)


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
