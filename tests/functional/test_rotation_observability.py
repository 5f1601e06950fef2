"""What the rotation function emits: metrics per SecretKind, and never a secret in logs or results."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from functional.test_rotation_harness import FakeSes, Rotation, aws, fake_ses, make_rotation, smtp_cert, start_rotation

from redcap_ctl.errors import ControlPlaneError
from redcap_ctl.rotation import RotationError

__all__ = ["aws", "fake_ses", "smtp_cert"]


def emf(out: str) -> list[dict[str, Any]]:
    records = []
    for line in out.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            records.append(json.loads(line))
    return records


def secret_material(rot: Rotation) -> set[str]:
    """Every secret value any version of the secret ever held (and the full key ids)."""
    found: set[str] = set()
    for version in rot.versions():
        try:
            text = rot.sm.get_secret_value(SecretId=rot.secret_id, VersionId=version)["SecretString"]
        except rot.sm.exceptions.ResourceNotFoundException:  # a staged version createSecret never filled
            continue
        if rot.kind == "cron-header":
            found.add(text)
            continue
        value = json.loads(text)
        found.update(v for k, v in value.items() if k != "UserName")
    return found


def test_metrics_per_secret_kind(
    aws: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fake_ses: FakeSes
) -> None:
    for kind in ("s3-access-key", "ses-smtp", "cron-header"):
        rot = make_rotation(monkeypatch, kind, fake_ses=fake_ses)
        capsys.readouterr()
        rot.rotate()
        records = emf(capsys.readouterr().out)
        succeeded = [r for r in records if "RotationSucceeded" in r]
        assert len(succeeded) == 1, kind
        directive = succeeded[0]["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "REDCap/test"
        assert sorted(directive["Dimensions"][0]) == ["SecretKind", "service"]
        assert succeeded[0]["SecretKind"] == kind
        # The service value is POWERTOOLS_SERVICE_NAME when the shared Metrics object was first imported.
        assert succeeded[0]["service"]
        assert not [r for r in records if "RotationFailed" in r]

        token = start_rotation(rot.secret_id)
        monkeypatch.setattr(rot.app, "CONFIG", rot.app.CONFIG)  # same config; the failure comes from the token
        with pytest.raises(RotationError):
            rot.step("testSecret", token)  # createSecret never ran for this token
        failed = [r for r in emf(capsys.readouterr().out) if "RotationFailed" in r]
        assert [(r["SecretKind"], r["RotationFailed"]) for r in failed] in ([(kind, 1.0)], [(kind, [1.0])])


def test_no_secret_material_in_logs_or_results(
    aws: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    fake_ses: FakeSes,
) -> None:
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("PREVIOUS_KEY_IDLE_HOURS", "0")  # rotate twice in a row: the old key may go at once
    caplog.set_level(logging.DEBUG, logger="service_undefined")
    caplog.set_level(logging.INFO)
    results: list[Any] = []
    secrets: set[str] = set()
    for kind in ("s3-access-key", "ses-smtp", "cron-header"):
        rot = make_rotation(monkeypatch, kind, fake_ses=fake_ses)
        for _ in range(2):
            token = start_rotation(rot.secret_id)
            for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
                rot.prepare(step, token)
                results.append(rot.step(step, token))
        # and a failing run, whose error goes through logger.exception
        token = start_rotation(rot.secret_id)
        rot.step("createSecret", token)
        if kind == "ses-smtp":
            fake_ses.reject_all = True
        elif kind == "s3-access-key":
            rot.user_errors["s3:PutObject"] = "AccessDenied"
        else:
            from redcap_ctl import waf

            waf.accept_only(rot.wafv2, rot.pattern_ref(), [rot.current_text()])
        with pytest.raises(ControlPlaneError) as info:
            rot.step("testSecret", token)
        results.append(str(info.value))
        fake_ses.reject_all = False
        secrets |= secret_material(rot)

    captured = capsys.readouterr()
    text = captured.out + captured.err + caplog.text + json.dumps(results)
    assert len(secrets) >= 3 * 3
    leaked = sorted(s[:4] + "..." for s in secrets if s in text)
    assert leaked == [], f"secret material found in logs/results: {leaked}"
    assert "rotation step" in text  # the logs were captured at all
