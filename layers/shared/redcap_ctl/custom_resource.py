"""crhelper configured once for every custom resource in this stack.

- ``sleep_on_delete=0``: crhelper's default 120 s pause on Delete only delays
  stack deletion; our Deletes wait for the real condition instead.
- ``json_logging=False`` and explicit levels: crhelper otherwise rewrites the
  root logger on every call and fights Powertools' structured logging.
- crhelper itself answers FAILED shortly before the Lambda times out, so a
  stack never waits for CloudFormation's one-hour timeout.
- No polling clients: crhelper builds Lambda, EventBridge and Logs clients in
  its constructor for its polling mode, which these resources never use (they
  finish inside one invocation). Those three clients cost ~120 ms of every cold
  start (see ``make bench``), so construction skips them.
- crhelper never logs at DEBUG: its DEBUG records carry the event and the
  presigned response URL (``_silence_crhelper_debug``).
- One TLS context per container for the responses to CloudFormation: crhelper
  builds a fresh default context (loading every CA certificate, tens of
  milliseconds) for each response. A resource can warm it while it waits on
  AWS (``response_tls()``), so answering costs only the PUT.
- ``make_polling_helper()`` is the one exception: Custom::RedcapImage waits for
  a CodeBuild build (up to tens of minutes, beyond a Lambda's 15) with
  crhelper's polling. Its three clients come from the container's shared
  session and retry configuration (``redcap_ctl.clients``).
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
import types
from collections.abc import Callable, Mapping
from typing import Any

import crhelper.resource_helper as _resource_helper
import crhelper.utils as _crhelper_utils
from crhelper import CfnResource


@functools.cache
def response_tls() -> ssl.SSLContext:
    """The container's TLS context for answering CloudFormation (built once)."""
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH)


def _crhelper_context(purpose: ssl.Purpose = ssl.Purpose.SERVER_AUTH) -> ssl.SSLContext:
    if purpose is not ssl.Purpose.SERVER_AUTH:
        return ssl.create_default_context(purpose)
    return response_tls()


# crhelper.utils uses only these names of ``ssl``; with ssl_verify left at None
# (as make_helper leaves it) it never modifies the shared context.
_crhelper_utils.ssl = types.SimpleNamespace(  # type: ignore[attr-defined]
    Purpose=ssl.Purpose, CERT_NONE=ssl.CERT_NONE, create_default_context=_crhelper_context
)


class _NoPollingClients:
    """Stands in for ``boto3`` while crhelper's constructor runs.

    Any later use would mean polling was enabled, which nothing here does: the
    ``None`` clients then fail loudly instead of polling half-configured.
    """

    @staticmethod
    def client(*_args: Any, **_kwargs: Any) -> None:
        return None


class _NoDebugRecords(logging.Filter):
    """Drops crhelper's DEBUG records: they carry the whole event and the presigned ResponseURL."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


_CRHELPER_LOGGERS = ("crhelper", "crhelper.resource_helper", "crhelper.utils", "crhelper.log_helper")


def _silence_crhelper_debug() -> None:
    """crhelper logs the event (with the presigned response URL) and the URL itself at DEBUG.

    Anyone holding that URL can answer CloudFormation for this resource until it expires, so
    it must never reach the logs, even with LogLevel=DEBUG. crhelper's own loggers are held at
    INFO and filtered (a filter on the logger that emits the record, so it holds even if
    something lowers the level again); our own DEBUG logging is unaffected.
    """
    logging.getLogger("crhelper").setLevel(logging.INFO)
    for name in _CRHELPER_LOGGERS:
        emitting = logging.getLogger(name)
        if not any(isinstance(f, _NoDebugRecords) for f in emitting.filters):
            emitting.addFilter(_NoDebugRecords())


def _build_helper(stand_in: type, **polling: Any) -> CfnResource:
    """crhelper as every resource here wants it, with ``stand_in`` as boto3 during construction."""
    # crhelper ships no type information for its module globals.
    real_boto3 = _resource_helper.boto3  # type: ignore[attr-defined]
    _resource_helper.boto3 = stand_in  # type: ignore[attr-defined]
    try:
        return CfnResource(
            json_logging=False,
            log_level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
            boto_level="WARNING",
            sleep_on_delete=0,
            **polling,
        )
    finally:
        _resource_helper.boto3 = real_boto3  # type: ignore[attr-defined]
        # Never the event (presigned response URL) in a log line, polling or not.
        _silence_crhelper_debug()


def make_helper() -> CfnResource:
    return _build_helper(_NoPollingClients)


class _SharedSessionClients:
    """Stands in for ``boto3`` while crhelper's constructor builds its polling clients."""

    @staticmethod
    def client(service: str, *_args: Any, **_kwargs: Any) -> Any:
        from redcap_ctl import clients  # the layer's one session and retry policy

        return clients.client(service)


def make_polling_helper(polling_interval_minutes: int = 1) -> CfnResource:
    """crhelper WITH its polling clients (Lambda, EventBridge, Logs), for long waits.

    crhelper re-invokes the function through an EventBridge rule every
    ``polling_interval_minutes`` (1 is EventBridge's smallest rate) with the whole event,
    and answers CloudFormation once a poll returns a physical id or raises.
    """
    return _build_helper(_SharedSessionClients, polling_interval=polling_interval_minutes)


def delete_props[P](event: Mapping[str, Any], parse: Callable[[Mapping[str, Any]], P]) -> P | None:
    """The properties of a Delete that may have changed something, or None when it cannot have.

    Properties that never parsed never changed anything (Create failed on them first), and a failed
    Create answers with crhelper's generated physical id, not the ARN these resources use.
    """
    from redcap_ctl.errors import InputError
    from redcap_ctl.observability import logger

    try:
        props = parse(event["ResourceProperties"])
    except InputError as err:
        logger.warning("Delete with invalid properties: nothing to put back", extra={"error": str(err)})
        return None
    if not str(event.get("PhysicalResourceId", "")).startswith("arn:"):
        logger.info("Delete of a resource that never changed anything")
        return None
    return props
