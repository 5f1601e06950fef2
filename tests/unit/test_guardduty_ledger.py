"""redcap_ctl.guardduty without AWS: property parsing, the ledger tag, hand-over, the time budget."""

from __future__ import annotations

import pytest

from redcap_ctl import guardduty as gd
from redcap_ctl.budget import Budget
from redcap_ctl.errors import ControlPlaneError, InputError

STACK_ID = "arn:aws:cloudformation:eu-west-1:123456789012:stack/redcap-prod/0f0e0d0c-0000-4000-8000-000000000000"


def test_defaults_when_only_the_service_token_is_given() -> None:
    settings = gd.parse_settings({"ServiceToken": "arn"}, STACK_ID)
    assert settings == gd.Settings(gd.DEFAULT_FEATURES, None, False, "redcap-prod")
    assert settings.tag_key == "redcap:guardduty:redcap-prod"


def test_features_are_normalised_and_deduplicated() -> None:
    assert gd.parse_features([" s3_data_events", "S3_DATA_EVENTS", "RUNTIME_MONITORING"]) == (
        "S3_DATA_EVENTS",
        "RUNTIME_MONITORING",
    )
    assert gd.parse_features("RDS_LOGIN_EVENTS, LAMBDA_NETWORK_LOGS") == ("RDS_LOGIN_EVENTS", "LAMBDA_NETWORK_LOGS")
    assert gd.parse_features([]) == ()


def test_every_api_feature_name_is_accepted() -> None:
    # DetectorFeatureConfiguration.Name in the GuardDuty API reference.
    documented = {
        "S3_DATA_EVENTS",
        "EKS_AUDIT_LOGS",
        "EBS_MALWARE_PROTECTION",
        "RDS_LOGIN_EVENTS",
        "EKS_RUNTIME_MONITORING",
        "LAMBDA_NETWORK_LOGS",
        "RUNTIME_MONITORING",
    }
    assert set(gd.FEATURE_CODES) == documented
    assert len(set(gd.FEATURE_CODES.values())) == len(documented)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["FLOW_LOGS"], "unknown feature 'FLOW_LOGS'"),
        (["EKS_RUNTIME_MONITORING", "RUNTIME_MONITORING"], "cannot both be listed"),
        ([None], "must be a list"),
        (7, "must be a list"),
    ],
)
def test_bad_features_name_the_property(value: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        gd.parse_features(value)
    assert err.value.field == "Features"


def test_frequency_and_owner_validation() -> None:
    assert gd.parse_frequency("one_hour") == "ONE_HOUR"
    assert gd.parse_frequency("") is None
    with pytest.raises(InputError, match="FindingPublishingFrequency"):
        gd.parse_frequency("DAILY")
    assert gd.parse_owner("", STACK_ID) == "redcap-prod"
    with pytest.raises(InputError, match="OwnerId"):
        gd.parse_owner("x" * 101, STACK_ID)
    with pytest.raises(InputError, match="OwnerId"):
        gd.parse_owner(None, "not-a-stack-id")


def test_ledger_round_trips_and_fits_a_tag_value() -> None:
    everything = frozenset(gd.FEATURE_CODES)
    ledger = gd.Ledger("C", everything, everything, "SIX_HOURS")
    text = ledger.encode()
    assert len(text) <= 256
    assert gd.Ledger.decode(text) == ledger
    assert gd.Ledger.decode(gd.Ledger().encode()) == gd.Ledger()


@pytest.mark.parametrize("text", ["", "v2 d=C n=- t=- f=-", "v1 d=X n=- t=- f=-", "v1 d=C n=NOPE t=- f=-"])
def test_unreadable_ledgers_are_ignored(text: str) -> None:
    assert gd.Ledger.decode(text) is None
    assert gd.ledgers_on({"redcap:guardduty:x": text, "team": "security"}) == {}


def test_hand_over_gives_features_to_the_stack_that_needs_them_and_the_detector_to_the_first() -> None:
    others = {
        "redcap:guardduty:a": gd.Ledger(needs=frozenset({"S3_DATA_EVENTS"})),
        "redcap:guardduty:b": gd.Ledger(needs=frozenset({"RDS_LOGIN_EVENTS"})),
    }
    leaving = gd.Ledger("C", turned_on=frozenset({"S3_DATA_EVENTS", "RDS_LOGIN_EVENTS"}), prior_frequency="ONE_HOUR")

    handed = {k: gd.Ledger.decode(v) for k, v in gd._hand_over(others, leaving).items()}

    assert handed == {
        "redcap:guardduty:a": gd.Ledger("C", frozenset({"S3_DATA_EVENTS"}), frozenset({"S3_DATA_EVENTS"}), "ONE_HOUR"),
        "redcap:guardduty:b": gd.Ledger("-", frozenset({"RDS_LOGIN_EVENTS"}), frozenset({"RDS_LOGIN_EVENTS"})),
    }
    assert gd._hand_over({}, leaving) == {}
    assert gd._hand_over(others, gd.Ledger()) == {}


def test_detector_arn_comes_from_the_service_token() -> None:
    token = "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:redcap-GuardDutyFunction"
    assert gd.detector_arn(token, "abc") == "arn:aws-us-gov:guardduty:us-gov-west-1:123456789012:detector/abc"
    with pytest.raises(InputError, match="ServiceToken"):
        gd.detector_arn("nonsense", "abc")


def test_budget_refuses_a_call_it_cannot_finish() -> None:
    remaining = [60_000]
    budget = Budget(lambda: remaining[0], margin=8)
    budget.check("GetDetector")
    remaining[0] = 7_999
    with pytest.raises(ControlPlaneError, match="not enough time left to UpdateDetector"):
        budget.check("UpdateDetector")


def test_outcome_data_is_what_get_att_exposes() -> None:
    assert gd.Outcome("d1", True, "account").data() == {
        "DetectorId": "d1",
        "CreatedDetector": "true",
        "ManagedBy": "account",
    }
