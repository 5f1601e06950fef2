"""The real cron caller handler against the REDCap stand-in on 127.0.0.1 and moto.

The stand-in answers cron.php from the WAF regex pattern set in moto, so these
tests exercise the same contract as production: the header value the caller
sends must be one the pattern set accepts right now.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from redcap_ctl import cron, waf
from redcap_ctl.observability import logger as obs_logger
from redcap_ctl.observability import metrics
from testkit import LambdaContext, load_event, load_handler
from testkit.emulators.redcap import RedcapEmulator, sha256

HEADER = "x-redcap-cron-secret"
FIRST = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
SECOND = "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2H1g0"
SECRETS = (FIRST, SECOND)


@dataclass
class Setup:
    handler: ModuleType
    redcap: RedcapEmulator
    sm: Any
    wafv2: Any
    ref: waf.PatternSetRef
    secret_arn: str
    records: list[logging.LogRecord]

    def invoke(self) -> dict[str, Any]:
        result: dict[str, Any] = self.handler.handler(load_event("cron_caller", "scheduled.json"), LambdaContext())
        return result

    def rotate_to(self, value: str) -> None:
        """What the rotation function does, in the order and with the calls it uses.

        The new value is staged as AWSPENDING and AWSCURRENT is then *moved* with
        UpdateSecretVersionStage, as a rotation does (not a plain PutSecretValue).
        moto keeps answering the old version to a GetSecretValue without a
        VersionStage after such a move (AWS answers AWSCURRENT), so this test
        fails if the caller ever stops asking for AWSCURRENT by name.
        """
        token = str(uuid.uuid4())
        (old_version,) = (
            version
            for version, stages in self.sm.describe_secret(SecretId=self.secret_arn)["VersionIdsToStages"].items()
            if "AWSCURRENT" in stages
        )
        self.sm.put_secret_value(  # createSecret
            SecretId=self.secret_arn, ClientRequestToken=token, SecretString=value, VersionStages=["AWSPENDING"]
        )
        waf.accept_only(self.wafv2, self.ref, [FIRST, value])  # setSecret: widen
        self.sm.update_secret_version_stage(  # finishSecret
            SecretId=self.secret_arn, VersionStage="AWSCURRENT", MoveToVersionId=token, RemoveFromVersionId=old_version
        )
        waf.accept_only(self.wafv2, self.ref, [value])  # then narrow


@pytest.fixture
def setup(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Iterator[Setup]:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")  # even debug output must not carry the secret
    # observability's Logger/Metrics may have been built (at collection) before the
    # sandbox set the environment; give them what Lambda's environment would.
    monkeypatch.setattr(metrics, "namespace", "REDCap/test")
    monkeypatch.setattr(metrics, "service", "cron-caller")
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="urllib3")
    # Every log record of every logger, before any handler or formatter sees it (Powertools'
    # loggers do not propagate to caplog and keep the stdout they found at import).
    records: list[logging.LogRecord] = []
    call_handlers = logging.Logger.callHandlers

    def spy(self: logging.Logger, record: logging.LogRecord) -> None:
        records.append(record)
        call_handlers(self, record)

    monkeypatch.setattr(logging.Logger, "callHandlers", spy)
    for name in (obs_logger.name, cron.logger.name):  # our loggers at DEBUG
        monkeypatch.setattr(logging.getLogger(name), "level", logging.DEBUG)
    with mock_aws():
        sm = boto3.client("secretsmanager")
        wafv2 = boto3.client("wafv2")
        arn = sm.create_secret(Name="cron-header", SecretString=FIRST)["ARN"]
        summary = wafv2.create_regex_pattern_set(
            Name="cron-header", Scope="REGIONAL", RegularExpressionList=[{"RegexString": waf.pattern_for(FIRST)}]
        )["Summary"]
        ref = waf.PatternSetRef.from_arn(summary["ARN"])
        with RedcapEmulator(header_name=HEADER, pattern_set=ref, waf_client=wafv2) as redcap:
            monkeypatch.setenv("CRON_URL", redcap.cron_url)
            monkeypatch.setenv("CRON_SECRET_ARN", arn)
            monkeypatch.setenv("CRON_HEADER_NAME", HEADER)
            monkeypatch.setenv("CRON_TIMEOUT_SECONDS", "5")
            handler = load_handler("cron_caller")
            state = Setup(handler, redcap, sm, wafv2, ref, arn, records)
            yield state
    # Every scenario, success or failure: the secret is in no output at all.
    out, err = capfd.readouterr()
    seen = "".join(r.getMessage() + repr(r.__dict__) for r in records)
    everything = out + err + caplog.text + repr([r.__dict__ for r in caplog.records]) + seen
    if state.redcap.requests:
        assert "cron.php" in seen  # the capture did see the run's log records
    for value in SECRETS:
        assert value not in everything


def emitted_metrics(out: str) -> set[str]:
    names: set[str] = set()
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            for directive in doc["_aws"]["CloudWatchMetrics"]:
                names.update(m["Name"] for m in directive["Metrics"])
    return names


def no_secret_in(err: BaseException) -> None:
    text = str(err) + repr(err) + repr(err.__cause__) + repr(err.__context__)
    for value in SECRETS:
        assert value not in text


def test_success_sends_the_header(setup: Setup, capfd: pytest.CaptureFixture[str]) -> None:
    result = setup.invoke()

    assert result["outcome"] == "success"
    assert result["status"] == 200
    assert result["attempts"] == 1
    (request,) = setup.redcap.requests
    assert request.path == "/cron.php"
    assert request.header_sha256 == sha256(FIRST)
    out = capfd.readouterr().out
    assert {"CronSuccess", "CronLatency"} <= emitted_metrics(out)
    capfd.readouterr()
    print(out)  # keep it for the fixture's leak check


def test_wrong_secret_gets_403_retries_once_then_fails(setup: Setup, capfd: pytest.CaptureFixture[str]) -> None:
    waf.accept_only(setup.wafv2, setup.ref, ["something-else-entirely-0123456789"])

    with pytest.raises(cron.CronFailed, match="HTTP 403") as info:
        setup.invoke()

    no_secret_in(info.value)
    assert [r.status for r in setup.redcap.requests] == [403, 403]
    out = capfd.readouterr().out
    assert "CronFailure" in emitted_metrics(out)
    assert "CronSuccess" not in emitted_metrics(out)
    print(out)


def test_server_error_fails_without_retry(setup: Setup) -> None:
    setup.redcap.force_status = 500

    with pytest.raises(cron.CronFailed, match="HTTP 500") as info:
        setup.invoke()

    no_secret_in(info.value)
    assert [r.status for r in setup.redcap.requests] == [500]
    # logged before raising, with the status and the latency
    (failed,) = [r for r in setup.records if r.getMessage() == "cron.php failed"]
    assert failed.levelno == logging.ERROR
    assert failed.__dict__["status"] == 500
    assert isinstance(failed.__dict__["latency_ms"], int)


def test_redirect_is_a_failure_and_not_followed(setup: Setup) -> None:
    setup.redcap.force_status = 302

    with pytest.raises(cron.CronFailed, match="HTTP 302"):
        setup.invoke()
    assert len(setup.redcap.requests) == 1


def test_slow_answer_is_a_timeout_not_a_failure(
    setup: Setup, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRON_TIMEOUT_SECONDS", "0.2")
    setup.handler.config.cache_clear()
    setup.redcap.delay_seconds = 3

    result = setup.invoke()

    assert result["outcome"] == "timeout"
    assert result["status"] is None
    assert 150 <= result["latency_ms"] < 2000
    out = capfd.readouterr().out
    assert "CronTimeout" in emitted_metrics(out)
    assert "CronFailure" not in emitted_metrics(out)
    print(out)


def test_refused_connection_fails(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CRON_URL", f"http://127.0.0.1:{port}/cron.php")
    setup.handler.config.cache_clear()

    with pytest.raises(cron.CronFailed, match="unreachable: NewConnectionError") as info:
        setup.invoke()
    no_secret_in(info.value)
    (failed,) = [r for r in setup.records if r.getMessage() == "cron.php unreachable"]
    assert failed.__dict__["error"] == "NewConnectionError"
    assert isinstance(failed.__dict__["latency_ms"], int)


def test_rotated_secret_is_picked_up_after_one_403(setup: Setup) -> None:
    assert setup.invoke()["attempts"] == 1  # caches FIRST in this container
    setup.rotate_to(SECOND)

    result = setup.invoke()

    assert result == {**result, "outcome": "success", "status": 200, "attempts": 2}
    first, second, third = setup.redcap.requests
    assert (first.header_sha256, first.status) == (sha256(FIRST), 200)
    assert (second.header_sha256, second.status) == (sha256(FIRST), 403)
    assert (third.header_sha256, third.status) == (sha256(SECOND), 200)
    # and the fresh value is cached: the next tick needs one request only
    assert setup.invoke()["attempts"] == 1


def test_bad_url_is_refused_before_any_request(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRON_URL", "http://example.org/cron.php")
    setup.handler.config.cache_clear()

    with pytest.raises(cron.InputError, match="^CRON_URL: must use https"):
        setup.invoke()
    assert setup.redcap.requests == []
    (logged,) = [r for r in setup.records if r.getMessage() == "cron caller misconfigured"]
    assert logged.__dict__["field"] == "CRON_URL"
    assert "example.org" not in repr(logged.__dict__)  # the problem, not the value


def test_tls_failure_fails(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    # https to a server that only speaks plain HTTP: the TLS handshake fails.
    monkeypatch.setenv("CRON_URL", f"https://127.0.0.1:{setup.redcap.port}/cron.php")
    setup.handler.config.cache_clear()

    with pytest.raises(cron.CronFailed, match="unreachable: SSLError") as info:
        setup.invoke()
    no_secret_in(info.value)
