"""Each rotation step through the real handler, per secret kind (moto, local SMTP, Stubbers)."""

from __future__ import annotations

import json
import re

import boto3
import botocore.client
import pytest
from functional.test_rotation_harness import (
    REGION,
    FakeSes,
    aws,
    backdate_key,
    fake_ses,
    make_rotation,
    ses_smtp_password_reference,
    smtp_cert,
    start_rotation,
)

from redcap_ctl import waf
from redcap_ctl.rotation import RotationClients, RotationConfig, drive
from redcap_ctl.rotation.cron import MIN_LENGTH

__all__ = ["aws", "fake_ses", "smtp_cert"]  # fixtures used by name below


def test_s3_key_rotation_runs_all_four_steps(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = make_rotation(monkeypatch, "s3-access-key")
    rot.rotate()  # the first rotation, from {"UserName"} only
    first = rot.current()
    token = start_rotation(rot.secret_id)

    assert rot.step("createSecret", token)["Outcome"] == "created"
    pending = json.loads(
        rot.sm.get_secret_value(SecretId=rot.secret_id, VersionId=token, VersionStage="AWSPENDING")["SecretString"]
    )
    assert set(pending) == {"UserName", "AccessKeyId", "SecretAccessKey"}
    assert sorted(rot.key_ids()) == sorted([first["AccessKeyId"], pending["AccessKeyId"]])
    assert rot.current() == first, "createSecret must not touch AWSCURRENT"

    assert rot.step("setSecret", token)["Outcome"] == "verified"
    assert rot.step("testSecret", token)["Outcome"] == "sts-iam-s3-ok"
    assert not boto3.client("s3", region_name=REGION).list_objects_v2(Bucket="redcap-files-test").get("Contents")

    rot.prepare("finishSecret", token)
    result = rot.step("finishSecret", token)
    assert result["Outcome"] == "finished; redcap-config-updated"
    rot.assert_stubs_used()  # the Data API UPDATE carried exactly the new key
    assert rot.current()["AccessKeyId"] == pending["AccessKeyId"]
    previous = [v for v, stages in rot.versions().items() if "AWSPREVIOUS" in stages]
    assert len(previous) == 1
    assert json.loads(rot.sm.get_secret_value(SecretId=rot.secret_id, VersionId=previous[0])["SecretString"]) == first
    rot.assert_current_works()


def test_each_step_is_safe_to_repeat(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = make_rotation(monkeypatch, "s3-access-key")
    token = start_rotation(rot.secret_id)
    assert rot.step("createSecret", token)["Outcome"] == "created"
    assert rot.step("createSecret", token)["Outcome"] == "pending-exists"
    assert len(rot.key_ids()) == 1
    rot.step("setSecret", token)
    rot.step("setSecret", token)
    rot.step("testSecret", token)
    rot.step("testSecret", token)
    rot.prepare("finishSecret", token)
    rot.step("finishSecret", token)
    # Secrets Manager may call finishSecret again: the version is AWSCURRENT, consumers are refreshed again.
    rot.prepare("finishSecret", token)
    assert rot.step("finishSecret", token)["Outcome"] == "already-current; redcap-config-updated"
    for step in ("createSecret", "setSecret", "testSecret"):
        assert rot.step(step, token)["Outcome"] == "already-current"
    rot.assert_stubs_used()
    rot.assert_current_works()


def test_username_only_secret_rotates_into_its_first_key_and_skips_missing_redcap(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rot = make_rotation(monkeypatch, "s3-access-key")
    assert rot.current() == {"UserName": rot.user}
    assert rot.key_ids() == []
    token = start_rotation(rot.secret_id)
    for step in ("createSecret", "setSecret", "testSecret"):
        rot.step(step, token)
    # REDCap's installer has not run yet: the table is missing and the Data API says so.
    pending = json.loads(rot.sm.get_secret_value(SecretId=rot.secret_id, VersionId=token)["SecretString"])
    rot.expect_consumer(pending, error="BadRequestException", message="Table 'redcap.redcap_config' doesn't exist")
    assert rot.step("finishSecret", token)["Outcome"] == "finished; redcap-not-installed"
    rot.assert_stubs_used()
    assert rot.key_ids() == [rot.current()["AccessKeyId"]]
    rot.assert_current_works()


def test_ses_rotation_logs_in_to_smtp_and_redeploys_app_runner(
    aws: None, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes
) -> None:
    rot = make_rotation(monkeypatch, "ses-smtp", fake_ses=fake_ses)
    token = rot.rotate()
    value = rot.current()
    assert value["SmtpUsername"] == value["AccessKeyId"]
    assert value["SmtpPassword"] == ses_smtp_password_reference(value["SecretAccessKey"], REGION)
    assert fake_ses.logins == [value["AccessKeyId"]]
    assert fake_ses.messages == [], "the SMTP check must never send mail"
    rot.assert_stubs_used()  # StartDeployment on exactly our service
    assert "AWSCURRENT" in rot.versions()[token]
    rot.assert_current_works()

    rot.rotate()  # a second rotation keeps the first key as the previous one
    assert len(rot.key_ids()) == 2
    assert fake_ses.logins[-1] == rot.current()["AccessKeyId"]
    rot.assert_current_works()


def test_cron_header_rotation_widens_then_narrows_waf(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = make_rotation(monkeypatch, "cron-header")
    old = rot.current_text()
    ref = rot.pattern_ref()
    token = start_rotation(rot.secret_id)

    rot.step("createSecret", token)
    new = rot.sm.get_secret_value(SecretId=rot.secret_id, VersionId=token, VersionStage="AWSPENDING")["SecretString"]
    assert len(new) >= MIN_LENGTH
    assert re.fullmatch(r"[A-Za-z0-9_-]+", new)
    assert new != old
    assert waf.accepted(rot.wafv2, ref, old)
    assert not waf.accepted(rot.wafv2, ref, new), "createSecret must not touch WAF"

    rot.step("setSecret", token)
    assert waf.accepted(rot.wafv2, ref, old)
    assert waf.accepted(rot.wafv2, ref, new)

    assert rot.step("testSecret", token)["Outcome"] == "waf-accepts-pending"
    assert rot.step("finishSecret", token)["Outcome"] == "finished; waf-narrowed"
    assert rot.current_text() == new
    assert waf.accepted(rot.wafv2, ref, new)
    assert not waf.accepted(rot.wafv2, ref, old)
    patterns, _ = waf.get_patterns(rot.wafv2, ref)
    assert patterns == [waf.pattern_for(new)]


def test_two_keys_previous_unused_is_deleted_to_make_room(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = make_rotation(monkeypatch, "s3-access-key")
    rot.rotate()
    previous = rot.current()["AccessKeyId"]
    rot.rotate()
    current = rot.current()["AccessKeyId"]
    backdate_key(previous, created_hours_ago=24 * 90, last_used_hours_ago=30)  # unused for 30 h
    backdate_key(current, created_hours_ago=24 * 30, last_used_hours_ago=0.1)  # in use

    rot.rotate()
    assert previous not in rot.key_ids()
    assert current in rot.key_ids()
    assert rot.current()["AccessKeyId"] not in (previous, current)
    rot.assert_current_works()


def test_two_keys_previous_inactive_is_deleted_even_if_recent(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = make_rotation(monkeypatch, "s3-access-key")
    rot.rotate()
    previous = rot.current()["AccessKeyId"]
    rot.rotate()
    backdate_key(previous, created_hours_ago=48, last_used_hours_ago=1)
    rot.iam.update_access_key(UserName=rot.user, AccessKeyId=previous, Status="Inactive")
    rot.rotate()
    assert previous not in rot.key_ids()
    rot.assert_current_works()


def test_drive_runs_a_whole_rotation_for_local_runs(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = make_rotation(monkeypatch, "cron-header")
    config = RotationConfig.from_env()
    clients = RotationClients(secrets=boto3.client("secretsmanager"), wafv2=boto3.client("wafv2"))
    old = rot.current_text()
    results = drive(rot.secret_id, config, clients)
    assert [r.step for r in results] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert rot.current_text() != old
    rot.assert_current_works()


def test_drive_replaces_the_placeholder_it_stages_for_iam_kinds(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = make_rotation(monkeypatch, "s3-access-key")
    rot.rotate()
    before = rot.current()
    rot.stubber("rds_data").add_response("execute_statement", {"numberOfRecordsUpdated": 2})
    results = drive(rot.secret_id, rot.app.CONFIG, rot.app.CLIENTS)
    assert results[0].outcome == "created"
    assert results[-1].outcome == "finished; redcap-config-updated"
    rot.assert_stubs_used()
    assert rot.current()["AccessKeyId"] != before["AccessKeyId"]
    assert sorted(rot.key_ids()) == sorted([before["AccessKeyId"], rot.current()["AccessKeyId"]])
    rot.assert_current_works()


def record_secret_reads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """Every GetSecretValue any client makes from now on (moto answers a stage-less read with a stale version)."""
    calls: list[dict[str, object]] = []
    original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]  # private, unstubbed

    def recording(self: botocore.client.BaseClient, operation: str, params: dict[str, object]) -> object:
        if operation == "GetSecretValue":
            calls.append(dict(params))
        return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return calls


@pytest.mark.parametrize("kind", ["s3-access-key", "ses-smtp", "cron-header"])
def test_every_secret_read_names_its_version_or_stage(
    aws: None, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes, kind: str
) -> None:
    rot = make_rotation(monkeypatch, kind, fake_ses=fake_ses)
    calls = record_secret_reads(monkeypatch)
    first = rot.rotate()
    second = rot.rotate()
    rot.assert_stubs_used()
    assert calls, "the rotation read no secret"
    stage_less = [c for c in calls if "VersionStage" not in c and "VersionId" not in c]
    assert stage_less == [], "a GetSecretValue without VersionStage/VersionId reads whatever the backend picks"
    # The reads of the current value ask for AWSCURRENT by name; the second rotation sees the first one's key.
    assert any(c.get("VersionStage") == "AWSCURRENT" for c in calls)
    assert "AWSCURRENT" in rot.versions()[second]
    assert "AWSPREVIOUS" in rot.versions()[first]
    rot.assert_current_works()
