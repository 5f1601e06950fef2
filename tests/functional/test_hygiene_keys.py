"""The daily key-hygiene check through its real handler, after real rotations in moto."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from functional.test_rotation_harness import REGION, Rotation, aws, backdate_key, make_rotation, start_rotation
from functional.test_rotation_steps import record_secret_reads
from moto.core import DEFAULT_ACCOUNT_ID
from moto.secretsmanager.models import secretsmanager_backends

from testkit import LambdaContext, load_event, load_handler

__all__ = ["aws"]

HOUR = 3600


def age_current_version(rot: Rotation, hours: float) -> None:
    """Pretend the last rotation happened ``hours`` ago."""
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[rot.secret_id]
    for version in secret.versions.values():
        if "AWSCURRENT" in version["version_stages"]:
            version["createdate"] = int(time.time() - hours * HOUR)


def rotated_twice(monkeypatch: pytest.MonkeyPatch) -> tuple[Rotation, str, str]:
    rot = make_rotation(monkeypatch, "s3-access-key")
    rot.rotate()
    previous = rot.current()["AccessKeyId"]
    rot.rotate()
    return rot, previous, rot.current()["AccessKeyId"]


def run_hygiene(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **secrets: str) -> Any:
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "key-hygiene")
    capsys.readouterr()
    app = load_handler("key_hygiene")
    result = app.handler(load_event("key_hygiene", "scheduled.json"), LambdaContext())
    out = capsys.readouterr().out
    metrics = {}
    for line in out.splitlines():
        if '"_aws"' in line:
            record = json.loads(line)
            directive = record["_aws"]["CloudWatchMetrics"][0]
            assert directive["Dimensions"] == [["service", "SecretKind"]]
            name = directive["Metrics"][0]["Name"]
            value = record[name]
            metrics[(name, record["SecretKind"])] = value[0] if isinstance(value, list) else value
    return result, metrics, out


def key_status(rot: Rotation) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in rot.iam.list_access_keys(UserName=rot.user)["AccessKeyMetadata"]}


def test_previous_key_unused_for_the_grace_is_deactivated(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rot, previous, current = rotated_twice(monkeypatch)
    age_current_version(rot, 30)
    backdate_key(previous, created_hours_ago=24 * 91, last_used_hours_ago=31)  # last used before the rotation
    result, metrics, _ = run_hygiene(monkeypatch, capsys, S3_SECRET_ARN=rot.secret_id)
    assert key_status(rot) == {previous: "Inactive", current: "Active"}
    assert result["Secrets"][0]["Actions"] == [f"deactivated ...{previous[-4:]}"]
    assert metrics[("PreviousKeyInUse", "s3-access-key")] == 0
    assert metrics[("SecretAgeDays", "s3-access-key")] == pytest.approx(30 / 24, abs=0.01)
    rot.assert_current_works()


def test_previous_key_used_recently_stays_active_within_the_maximum_grace(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rot, previous, current = rotated_twice(monkeypatch)
    age_current_version(rot, 30)
    backdate_key(previous, created_hours_ago=24 * 91, last_used_hours_ago=2)
    _, metrics, _ = run_hygiene(monkeypatch, capsys, S3_SECRET_ARN=rot.secret_id)
    assert key_status(rot) == {previous: "Active", current: "Active"}
    assert metrics[("PreviousKeyInUse", "s3-access-key")] == 0


def test_previous_key_still_in_use_after_the_maximum_grace_raises_the_metric(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    rot, previous, current = rotated_twice(monkeypatch)
    age_current_version(rot, 100)
    backdate_key(previous, created_hours_ago=24 * 91, last_used_hours_ago=1)
    result, metrics, _ = run_hygiene(monkeypatch, capsys, S3_SECRET_ARN=rot.secret_id)
    assert key_status(rot) == {previous: "Active", current: "Active"}, "never cut off a consumer"
    assert metrics[("PreviousKeyInUse", "s3-access-key")] == 1
    assert result["Secrets"][0]["PreviousKeyInUse"] is True
    assert any("a consumer did not follow" in r.getMessage() for r in caplog.records)


def test_deactivated_key_is_deleted_after_the_second_grace_only(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rot, previous, current = rotated_twice(monkeypatch)
    rot.iam.update_access_key(UserName=rot.user, AccessKeyId=previous, Status="Inactive")
    age_current_version(rot, 24 * 5)  # 1 day + 4 days: inside 24 h + 168 h
    backdate_key(previous, created_hours_ago=24 * 95, last_used_hours_ago=24 * 10)
    run_hygiene(monkeypatch, capsys, S3_SECRET_ARN=rot.secret_id)
    assert key_status(rot) == {previous: "Inactive", current: "Active"}

    age_current_version(rot, 24 * 9)  # past 24 h + 168 h
    result, _, _ = run_hygiene(monkeypatch, capsys, S3_SECRET_ARN=rot.secret_id)
    assert key_status(rot) == {current: "Active"}
    assert result["Secrets"][0]["Actions"] == [f"deleted ...{previous[-4:]}"]
    rot.assert_current_works()


def test_a_rotation_in_progress_is_left_alone(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rot = make_rotation(monkeypatch, "s3-access-key")
    rot.rotate()
    current = rot.current()["AccessKeyId"]
    token = start_rotation(rot.secret_id)
    rot.step("createSecret", token)
    pending = json.loads(rot.sm.get_secret_value(SecretId=rot.secret_id, VersionId=token)["SecretString"])
    age_current_version(rot, 48)
    backdate_key(pending["AccessKeyId"], created_hours_ago=47, last_used_hours_ago=None)
    run_hygiene(monkeypatch, capsys, S3_SECRET_ARN=rot.secret_id)
    assert key_status(rot) == {current: "Active", pending["AccessKeyId"]: "Active"}


def test_secret_age_is_published_for_every_kind_and_overdue_is_flagged(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    s3 = make_rotation(monkeypatch, "s3-access-key")
    s3.rotate()
    cron = make_rotation(monkeypatch, "cron-header")
    age_current_version(cron, 24 * 100)
    result, metrics, out = run_hygiene(monkeypatch, capsys, S3_SECRET_ARN=s3.secret_id, CRON_SECRET_ARN=cron.secret_id)
    assert metrics[("SecretAgeDays", "cron-header")] == pytest.approx(100, abs=0.01)
    assert metrics[("SecretAgeDays", "s3-access-key")] < 0.01
    assert ("PreviousKeyInUse", "cron-header") not in metrics
    overdue = {r["SecretKind"]: r["Overdue"] for r in result["Secrets"]}
    assert overdue == {"s3-access-key": False, "cron-header": True}
    assert s3.current()["SecretAccessKey"] not in out
    assert cron.current_text() not in out


def test_hygiene_never_reads_the_cron_header_value(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Finding 9: the age of a secret is a version date; reading the live value is not needed for it.
    cron = make_rotation(monkeypatch, "cron-header")
    age_current_version(cron, 24 * 10)
    calls = record_secret_reads(monkeypatch)
    result, metrics, _ = run_hygiene(monkeypatch, capsys, CRON_SECRET_ARN=cron.secret_id)
    assert calls == []
    assert metrics[("SecretAgeDays", "cron-header")] == pytest.approx(10, abs=0.01)
    assert result["Secrets"][0]["Overdue"] is False


def test_hygiene_reads_the_current_key_by_stage_or_version(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rot, previous, current = rotated_twice(monkeypatch)
    age_current_version(rot, 30)
    backdate_key(previous, created_hours_ago=24 * 91, last_used_hours_ago=31)
    calls = record_secret_reads(monkeypatch)
    run_hygiene(monkeypatch, capsys, S3_SECRET_ARN=rot.secret_id)
    assert calls
    assert [c for c in calls if "VersionStage" not in c and "VersionId" not in c] == []
    # Had it read a stale version, it would have retired the key AWSCURRENT holds.
    assert key_status(rot) == {previous: "Inactive", current: "Active"}
