"""Rotation configuration and the pure decisions (which key may go, what counts as a value)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from redcap_ctl.database import ROTATION_PROCEDURE
from redcap_ctl.errors import InputError
from redcap_ctl.rotation import RotationConfig, SecretKind
from redcap_ctl.rotation.config import Retry
from redcap_ctl.rotation.consumers import UPDATE_S3_KEYS
from redcap_ctl.rotation.hygiene import HygieneConfig
from redcap_ctl.rotation.iam_keys import KeyInfo, deletable_reason
from redcap_ctl.rotation.values import KeySecret, RotationError

PATTERN_SET = "arn:aws:wafv2:us-east-1:123456789012:regional/regexpatternset/cron/0d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
DAY = timedelta(hours=24)


def test_s3_config_needs_bucket_and_database() -> None:
    env = {"SECRET_KIND": "s3-access-key", "AWS_REGION": "eu-west-1", "FILE_BUCKET": "b"}
    with pytest.raises(InputError, match="DB_CLUSTER_ARN"):
        RotationConfig.from_env(env)
    env |= {"DB_CLUSTER_ARN": "arn:c", "DB_SECRET_ARN": "arn:s", "DB_NAME": "redcap"}
    config = RotationConfig.from_env(env)
    assert config.kind is SecretKind.S3
    assert config.region == "eu-west-1"
    assert config.db is not None
    assert config.db.database == "redcap"
    assert config.previous_key_idle_hours == 24


def test_ses_config_defaults_to_port_587_and_the_system_trust_store() -> None:
    env = {
        "SECRET_KIND": "ses-smtp",
        "AWS_REGION": "us-east-1",
        "SMTP_HOST": "email-smtp.us-east-1.amazonaws.com",
        "COMPUTE_SERVICE_ARN": "arn:aws:apprunner:us-east-1:1:service/x/y",
    }
    config = RotationConfig.from_env(env)
    assert config.smtp is not None
    assert (config.smtp.port, config.smtp.ca_file) == (587, None)
    with pytest.raises(InputError, match="SMTP_PORT"):
        RotationConfig.from_env({**env, "SMTP_PORT": "99999"})


def test_unknown_kind_and_bad_pattern_set_are_named() -> None:
    with pytest.raises(InputError, match="SECRET_KIND: must be one of"):
        RotationConfig.from_env({"SECRET_KIND": "db-password", "AWS_REGION": "us-east-1"})
    with pytest.raises(InputError, match="CRON_PATTERN_SET_ARN"):
        RotationConfig.from_env({"SECRET_KIND": "cron-header", "AWS_REGION": "us-east-1", "CRON_PATTERN_SET_ARN": "x"})
    cron = RotationConfig.from_env(
        {"SECRET_KIND": "cron-header", "AWS_REGION": "us-east-1", "CRON_PATTERN_SET_ARN": PATTERN_SET}
    )
    assert cron.pattern_set is not None
    assert cron.pattern_set.name == "cron"


def test_propagation_retries_are_bounded() -> None:
    retry = Retry(attempts=8, delay=2, max_delay=15)
    assert retry.delays() == [2, 4, 8, 15, 15, 15, 15]
    assert sum(retry.delays()) < 90


@pytest.mark.parametrize(
    ("status", "created_ago", "used_ago", "deletable"),
    [
        ("Inactive", timedelta(hours=1), timedelta(minutes=5), True),
        ("Active", 90 * DAY, timedelta(hours=25), True),
        ("Active", 90 * DAY, timedelta(hours=23), False),
        ("Active", 2 * DAY, None, True),
        ("Active", timedelta(hours=3), None, False),  # IAM reports use late: a young key may be in use
    ],
)
def test_which_non_current_key_may_be_deleted(
    status: str, created_ago: timedelta, used_ago: timedelta | None, deletable: bool
) -> None:
    key = KeyInfo("AKIAEXAMPLE", status, NOW - created_ago, None if used_ago is None else NOW - used_ago)
    assert (deletable_reason(key, NOW, DAY) is not None) is deletable


def test_key_secret_parsing_never_echoes_the_value() -> None:
    text = json.dumps({"UserName": "u", "AccessKeyId": "AKIA1", "SecretAccessKey": "very-secret"})
    key = KeySecret.parse(text, "AWSCURRENT value")
    assert "very-secret" not in repr(key)
    assert KeySecret.parse('{"UserName": "u"}', "v").has_key is False
    for bad in ("not json very-secret", '["very-secret"]', '{"AccessKeyId": "AKIA1"}'):
        with pytest.raises(RotationError) as info:
            KeySecret.parse(bad, "AWSPENDING value")
        assert "very-secret" not in str(info.value)
    with pytest.raises(RotationError, match="both AccessKeyId and SecretAccessKey"):
        KeySecret.parse('{"UserName": "u", "AccessKeyId": "AKIA1"}', "v")


def test_ses_value_carries_the_smtp_credentials_for_the_region() -> None:
    value = json.loads(KeySecret("u", "AKIA1", "s3cr3t").to_json(SecretKind.SES, "eu-west-1"))
    assert set(value) == {"UserName", "AccessKeyId", "SecretAccessKey", "SmtpUsername", "SmtpPassword"}
    assert value["SmtpUsername"] == "AKIA1"
    s3 = json.loads(KeySecret("u", "AKIA1", "s3cr3t").to_json(SecretKind.S3, "eu-west-1"))
    assert set(s3) == {"UserName", "AccessKeyId", "SecretAccessKey"}


def test_redcap_update_touches_only_the_two_s3_rows_and_takes_values_as_parameters() -> None:
    # The rotation user may only call the procedure that Custom::RedcapDatabase creates.
    assert f"CALL {ROTATION_PROCEDURE}(:key_id, :secret)" == UPDATE_S3_KEYS


def test_hygiene_config_checks_its_graces() -> None:
    config = HygieneConfig.from_env({"S3_SECRET_ARN": "arn:s3"})
    assert config.secrets == ((SecretKind.S3, "arn:s3"),)
    assert (config.deactivate_after, config.delete_after, config.max_grace) == (DAY, 7 * DAY, 3 * DAY)
    with pytest.raises(InputError, match="S3_SECRET_ARN"):
        HygieneConfig.from_env({})
    with pytest.raises(InputError, match="PREVIOUS_KEY_MAX_GRACE_HOURS"):
        HygieneConfig.from_env(
            {"S3_SECRET_ARN": "a", "DEACTIVATE_AFTER_HOURS": "48", "PREVIOUS_KEY_MAX_GRACE_HOURS": "24"}
        )
