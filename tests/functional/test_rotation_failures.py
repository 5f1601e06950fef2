"""Failure matrix: a failure at each step for each kind, plus the awkward starting states.

After every cell AWSCURRENT must still hold a working credential: for the IAM
kinds a key that exists, is Active, belongs to the user and that STS accepts
(moto's STS alone would accept any key); for the cron header a value WAF accepts.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse, HTTPHeaders
from botocore.exceptions import ClientError
from functional.test_rotation_harness import (
    FakeSes,
    Rotation,
    aws,
    backdate_key,
    fake_ses,
    inject,
    make_rotation,
    smtp_cert,
    start_rotation,
)

from redcap_ctl import waf
from redcap_ctl.errors import ControlPlaneError
from redcap_ctl.rotation import RotationError

__all__ = ["aws", "fake_ses", "smtp_cert"]

PRIOR = ("createSecret", "setSecret", "testSecret", "finishSecret")


def rotated_once(monkeypatch: pytest.MonkeyPatch, kind: str, ses: FakeSes | None = None) -> Rotation:
    rot = make_rotation(monkeypatch, kind, fake_ses=ses)
    if kind != "cron-header":
        rot.rotate()  # AWSCURRENT now holds a real key, as in any rotation after the first
    rot.assert_current_works()
    return rot


def run_until(rot: Rotation, token: str, failing: str) -> None:
    for step in PRIOR[: PRIOR.index(failing)]:
        rot.step(step, token)


def pending_value(rot: Rotation, token: str) -> str | None:
    try:
        text: str = rot.sm.get_secret_value(SecretId=rot.secret_id, VersionId=token, VersionStage="AWSPENDING")[
            "SecretString"
        ]
    except ClientError:
        return None
    return text


# ---------------------------------------------------------------------------------------------- s3-access-key
def test_s3_create_fails_on_limit_exceeded_and_touches_nothing(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    before, keys = rot.current(), rot.key_ids()
    inject(rot.app.CLIENTS.iam, "CreateAccessKey", "LimitExceeded")
    token = start_rotation(rot.secret_id)
    with pytest.raises(RotationError, match="LimitExceeded"):
        rot.step("createSecret", token)
    assert pending_value(rot, token) is None
    assert rot.key_ids() == keys
    assert rot.current() == before
    rot.assert_current_works()


def test_s3_set_fails_on_throttling(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    before = rot.current()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "setSecret")
    inject(rot.app.CLIENTS.iam, "ListAccessKeys", "Throttling")
    with pytest.raises(RotationError, match="throttling"):
        rot.step("setSecret", token)
    assert rot.current() == before
    rot.assert_current_works()


def test_s3_test_fails_when_the_probe_is_denied_after_bounded_retries(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    before = rot.current()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "testSecret")
    rot.user_errors["s3:PutObject"] = "AccessDenied"
    with pytest.raises(RotationError, match=r"S3 PutObject probe .* after 8 attempts: AccessDenied"):
        rot.step("testSecret", token)
    assert len(rot.sleeps) == 7
    assert sum(rot.sleeps) < 120, "IAM propagation retries must stay bounded"
    assert rot.current() == before
    rot.assert_current_works()


def test_s3_finish_fails_before_the_label_moves(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    before = rot.current()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "finishSecret")
    inject(rot.app.CLIENTS.secrets, "UpdateSecretVersionStage", "InternalServiceError")
    with pytest.raises(ClientError, match="InternalServiceError"):
        rot.step("finishSecret", token)
    assert rot.current() == before
    rot.assert_current_works()


def test_s3_finish_consumer_failure_is_completed_by_the_retry(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "finishSecret")
    pending = json.loads(pending_value(rot, token) or "{}")
    rot.expect_consumer(pending, error="ForbiddenException", message="not authorized")
    with pytest.raises(RotationError, match="Data API failed: ForbiddenException"):
        rot.step("finishSecret", token)
    rot.assert_current_works()  # AWSCURRENT moved to the tested key; REDCap still holds the old, valid one
    rot.expect_consumer(pending)
    assert rot.step("finishSecret", token)["Outcome"] == "already-current; redcap-config-updated"
    rot.assert_stubs_used()


# ---------------------------------------------------------------------------------------------- ses-smtp
def test_ses_create_fails_on_throttling(aws: None, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes) -> None:
    rot = rotated_once(monkeypatch, "ses-smtp", fake_ses)
    before, keys = rot.current(), rot.key_ids()
    inject(rot.app.CLIENTS.iam, "CreateAccessKey", "Throttling")
    token = start_rotation(rot.secret_id)
    with pytest.raises(RotationError, match="throttling"):
        rot.step("createSecret", token)
    assert rot.key_ids() == keys
    assert rot.current() == before
    rot.assert_current_works()


def test_ses_set_fails_on_access_denied(aws: None, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes) -> None:
    rot = rotated_once(monkeypatch, "ses-smtp", fake_ses)
    before = rot.current()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "setSecret")
    inject(rot.app.CLIENTS.iam, "ListAccessKeys", "AccessDenied")
    with pytest.raises(RotationError, match="access denied"):
        rot.step("setSecret", token)
    assert rot.current() == before
    rot.assert_current_works()


def test_ses_test_fails_when_smtp_rejects_the_login(
    aws: None, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes
) -> None:
    rot = rotated_once(monkeypatch, "ses-smtp", fake_ses)
    before = rot.current()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "testSecret")
    fake_ses.reject_all = True
    with pytest.raises(ControlPlaneError, match=r"SMTP AUTH was rejected by 127\.0\.0\.1:\d+ \(code 535\)"):
        rot.step("testSecret", token)
    assert len(rot.sleeps) == 7
    assert rot.current() == before
    fake_ses.reject_all = False
    rot.assert_current_works()


def test_ses_test_fails_when_smtp_is_unreachable(aws: None, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes) -> None:
    rot = rotated_once(monkeypatch, "ses-smtp", fake_ses)
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "testSecret")
    config = rot.app.CONFIG
    assert config.smtp is not None
    broken = config.smtp.__class__(host="127.0.0.1", port=1, timeout=2, ca_file=config.smtp.ca_file)
    monkeypatch.setattr(rot.app, "CONFIG", config.__class__(**{**config.__dict__, "smtp": broken}))
    with pytest.raises(ControlPlaneError, match=r"SMTP check against 127\.0\.0\.1:1 failed: ConnectionRefusedError"):
        rot.step("testSecret", token)
    rot.assert_current_works()


def test_ses_finish_fails_before_the_label_moves(aws: None, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes) -> None:
    rot = rotated_once(monkeypatch, "ses-smtp", fake_ses)
    before = rot.current()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "finishSecret")
    inject(rot.app.CLIENTS.secrets, "UpdateSecretVersionStage", "ThrottlingException")
    with pytest.raises(ClientError):
        rot.step("finishSecret", token)
    assert rot.current() == before
    rot.assert_current_works()


def test_ses_finish_deployment_failure_is_completed_by_the_retry(
    aws: None, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes
) -> None:
    rot = rotated_once(monkeypatch, "ses-smtp", fake_ses)
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "finishSecret")
    rot.expect_consumer({}, error="InvalidStateException", message="operation in progress")
    with pytest.raises(RotationError, match="App Runner is busy"):
        rot.step("finishSecret", token)
    rot.assert_current_works()
    rot.expect_consumer({})
    assert rot.step("finishSecret", token)["Outcome"] == "already-current; app-runner-deployment-started"
    rot.assert_stubs_used()


# ---------------------------------------------------------------------------------------------- cron-header
def test_cron_create_fails_and_waf_is_untouched(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "cron-header")
    before = rot.current_text()
    patterns, _ = waf.get_patterns(rot.wafv2, rot.pattern_ref())
    inject(rot.app.CLIENTS.secrets, "PutSecretValue", "InternalServiceError")
    token = start_rotation(rot.secret_id)
    with pytest.raises(ClientError):
        rot.step("createSecret", token)
    assert pending_value(rot, token) is None
    assert waf.get_patterns(rot.wafv2, rot.pattern_ref())[0] == patterns
    assert rot.current_text() == before
    rot.assert_current_works()


def test_cron_set_fails_when_waf_keeps_changing(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "cron-header")
    before = rot.current_text()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "setSecret")
    calls = inject(rot.app.CLIENTS.wafv2, "UpdateRegexPatternSet", "WAFOptimisticLockException")
    with pytest.raises(ControlPlaneError, match="kept changing"):
        rot.step("setSecret", token)
    assert calls[0] == waf.LOCK_RETRIES
    assert rot.current_text() == before
    rot.assert_current_works()


def test_cron_set_survives_a_concurrent_waf_change(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "cron-header")
    before = rot.current_text()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "setSecret")
    calls = inject(rot.app.CLIENTS.wafv2, "UpdateRegexPatternSet", "WAFOptimisticLockException", times=1)
    assert rot.step("setSecret", token)["Outcome"] == "waf-widened"
    assert calls[0] == 2, "re-read the lock token and wrote again"
    pending = pending_value(rot, token)
    assert pending
    assert waf.accepted(rot.wafv2, rot.pattern_ref(), pending)
    assert rot.current_text() == before
    rot.assert_current_works()


def test_cron_test_fails_when_waf_lost_the_pending_value(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "cron-header")
    before = rot.current_text()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "testSecret")
    waf.accept_only(rot.wafv2, rot.pattern_ref(), [before])  # someone narrowed the set in between
    with pytest.raises(RotationError, match="WAF does not accept the pending cron header"):
        rot.step("testSecret", token)
    assert rot.current_text() == before
    rot.assert_current_works()


def test_cron_finish_fails_before_the_label_moves(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "cron-header")
    before = rot.current_text()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "finishSecret")
    inject(rot.app.CLIENTS.secrets, "UpdateSecretVersionStage", "InternalServiceError")
    with pytest.raises(ClientError):
        rot.step("finishSecret", token)
    assert rot.current_text() == before
    rot.assert_current_works()


def test_cron_finish_narrowing_failure_keeps_both_values_accepted(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "cron-header")
    old = rot.current_text()
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "finishSecret")
    inject(rot.app.CLIENTS.wafv2, "UpdateRegexPatternSet", "WAFUnavailableEntityException", times=1)
    with pytest.raises(ClientError):
        rot.step("finishSecret", token)
    assert rot.current_text() != old
    assert waf.accepted(rot.wafv2, rot.pattern_ref(), old)  # the caller cannot be locked out either way
    rot.assert_current_works()
    assert rot.step("finishSecret", token)["Outcome"] == "already-current; waf-narrowed"
    assert not waf.accepted(rot.wafv2, rot.pattern_ref(), old)


# ---------------------------------------------------------------------------------------------- starting states
def test_two_keys_with_the_other_one_in_use_fails_and_touches_nothing(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    previous = rot.current()["AccessKeyId"]
    rot.rotate()
    current = rot.current()
    backdate_key(previous, created_hours_ago=24 * 90, last_used_hours_ago=2)  # a consumer still uses it
    backdate_key(current["AccessKeyId"], created_hours_ago=3, last_used_hours_ago=None)
    keys = rot.key_ids()
    token = start_rotation(rot.secret_id)
    with pytest.raises(
        RotationError, match=r"two access keys .* used \(or created\) within the last 24 h; .*nothing was changed"
    ):
        rot.step("createSecret", token)
    assert rot.key_ids() == keys
    assert pending_value(rot, token) is None
    assert rot.current() == current
    rot.assert_current_works()


def test_stale_pending_from_a_failed_run_is_cleaned_up_by_the_next_run(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    previous = rot.current()["AccessKeyId"]
    backdate_key(previous, created_hours_ago=48, last_used_hours_ago=0.5)
    failed = start_rotation(rot.secret_id)
    run_until(rot, failed, "testSecret")
    stale_key = json.loads(pending_value(rot, failed) or "{}")["AccessKeyId"]
    rot.user_errors["sts:GetCallerIdentity"] = "InvalidClientTokenId"
    with pytest.raises(RotationError, match="STS GetCallerIdentity"):
        rot.step("testSecret", failed)
    rot.user_errors.clear()
    assert sorted(rot.key_ids()) == sorted([previous, stale_key])  # both slots taken

    token = rot.rotate()  # a new run: the stale key (never current, never used) goes, the current key stays
    assert stale_key not in rot.key_ids()
    assert sorted(rot.key_ids()) == sorted([previous, rot.current()["AccessKeyId"]])
    assert "AWSPENDING" not in rot.versions().get(failed, [])
    assert "AWSCURRENT" in rot.versions()[token]
    rot.assert_current_works()


def test_stale_pending_label_left_on_another_version_is_removed(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    failed = start_rotation(rot.secret_id)
    run_until(rot, failed, "testSecret")  # createSecret + setSecret, then the run dies
    stale_key = json.loads(pending_value(rot, failed) or "{}")["AccessKeyId"]
    # An operator re-stages with a new token (AWSPENDING can hold one version only) ...
    token = start_rotation(rot.secret_id)
    rot.step("createSecret", token)
    assert stale_key not in rot.key_ids()
    for step in ("setSecret", "testSecret"):
        rot.step(step, token)
    rot.prepare("finishSecret", token)
    rot.step("finishSecret", token)
    rot.assert_current_works()


def test_same_token_retry_after_a_failed_test_reuses_the_pending_key(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "testSecret")
    pending = json.loads(pending_value(rot, token) or "{}")
    rot.user_errors["s3:PutObject"] = "AccessDenied"
    with pytest.raises(RotationError):
        rot.step("testSecret", token)
    rot.user_errors.clear()
    # Secrets Manager retries the rotation with the same token.
    assert rot.step("createSecret", token)["Outcome"] == "pending-exists"
    rot.step("setSecret", token)
    rot.step("testSecret", token)
    rot.prepare("finishSecret", token)
    rot.step("finishSecret", token)
    assert rot.current()["AccessKeyId"] == pending["AccessKeyId"]
    rot.assert_current_works()


def test_username_only_secret_failing_its_first_rotation_recovers(
    aws: None, monkeypatch: pytest.MonkeyPatch, fake_ses: FakeSes
) -> None:
    rot = make_rotation(monkeypatch, "ses-smtp", fake_ses=fake_ses)
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "testSecret")
    fake_ses.reject_all = True
    with pytest.raises(ControlPlaneError):
        rot.step("testSecret", token)
    assert rot.current() == {"UserName": rot.user}  # nothing to break yet, and nothing was broken
    fake_ses.reject_all = False
    rot.rotate()
    assert len(rot.key_ids()) == 1, "the failed run's key was cleaned up"
    rot.assert_current_works()


def test_rotation_not_enabled_or_unknown_token_is_refused(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = make_rotation(monkeypatch, "cron-header", rotation_enabled=False)
    token = start_rotation(rot.secret_id)
    with pytest.raises(RotationError, match="not enabled for rotation"):
        rot.step("createSecret", token)
    rot2 = make_rotation(monkeypatch, "s3-access-key")
    with pytest.raises(RotationError, match="not a version"):
        rot2.step("createSecret", "00000000-0000-4000-8000-000000000000")
    current_version = next(v for v, s in rot2.versions().items() if "AWSCURRENT" in s)
    rot2.sm.update_secret_version_stage(
        SecretId=rot2.secret_id, VersionStage="AWSPREVIOUS", MoveToVersionId=current_version
    )
    other = next(v for v, s in rot2.versions().items() if "AWSCURRENT" not in s)
    with pytest.raises(RotationError, match="not staged AWSPENDING"):
        rot2.step("setSecret", other)


def test_failures_name_a_reason_and_leak_no_secret(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "testSecret")
    pending: dict[str, Any] = json.loads(pending_value(rot, token) or "{}")
    rot.user_errors["s3:PutObject"] = "AccessDenied"
    with pytest.raises(RotationError) as info:
        rot.step("testSecret", token)
    text = str(info.value) + repr(info.value) + str(info.value.__cause__) + str(info.value.__context__)
    for secret in (pending["SecretAccessKey"], pending["AccessKeyId"], rot.current()["SecretAccessKey"]):
        assert secret not in text


# ---------------------------------------------------------------------------------------------- testSecret's STS check
def _as_user_with(monkeypatch: pytest.MonkeyPatch, rot: Rotation, install: Callable[[Any], None]) -> None:
    """Clients as the rotated user, with ``install`` hooking their events (on top of the harness factory)."""
    make = rot.app.CLIENTS.as_user

    def factory(service: str, key_id: str, secret: str, region: str) -> Any:
        client = make(service, key_id, secret, region)
        if service == "sts":
            install(client)
        return client

    monkeypatch.setattr(rot.app, "CLIENTS", dataclasses.replace(rot.app.CLIENTS, as_user=factory))


def test_sts_propagation_errors_are_retried_until_the_new_key_works(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    failed: list[list[int]] = []
    _as_user_with(
        monkeypatch,
        rot,
        lambda client: failed.append(inject(client, "GetCallerIdentity", "InvalidClientTokenId", times=2)),
    )
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "testSecret")
    assert rot.step("testSecret", token)["Outcome"] == "sts-iam-s3-ok"
    assert len(rot.sleeps) == 2, "two propagation retries, then success"
    assert [c[0] for c in failed] == [3], "one STS client, asked three times"


def test_a_key_that_authenticates_as_another_principal_fails_the_test(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rot = rotated_once(monkeypatch, "s3-access-key")
    before = rot.current()

    def other_user(client: Any) -> None:
        def answer(**_kw: Any) -> tuple[AWSResponse, dict[str, Any]]:
            arn = "arn:aws:iam::123456789012:user/someone-else"
            return AWSResponse("https://sts", 200, HTTPHeaders(), None), {"Arn": arn, "UserId": "AIDA", "Account": "1"}

        client.meta.events.register("before-call.sts.GetCallerIdentity", answer)

    _as_user_with(monkeypatch, rot, other_user)
    token = start_rotation(rot.secret_id)
    run_until(rot, token, "testSecret")
    with pytest.raises(RotationError, match="another principal"):
        rot.step("testSecret", token)
    assert rot.current() == before
    rot.assert_current_works()
