"""The IAM data check (testkit.iam_check) passes on template.yaml and catches planted wrong grants.

moto does not enforce IAM; this is where a grant AWS would refuse is caught (issue 13, finding 1).
"""

from __future__ import annotations

from typing import Any

import pytest

from testkit.iam_check import ACCEPTED, PARAMETER_SETS, SAMPLE_PARAMETERS, check_template, run, with_statement
from testkit.template import Rendered

GUARDDUTY_PARAMS = {**SAMPLE_PARAMETERS, **PARAMETER_SETS["dev"]}


def test_template_has_no_iam_findings_left_without_a_reason() -> None:
    new, accepted, stale = run()
    assert [str(f) for f in new] == []
    assert stale == [], "an accepted finding no longer occurs: remove it from ACCEPTED"
    assert all(ACCEPTED[f.key].strip() for f in accepted)


def _planted(statement: dict[str, Any]) -> list[str]:
    rendered = with_statement(Rendered(**GUARDDUTY_PARAMS), "GuardDutyFunctionRole", statement)
    return [str(f) for f in check_template(rendered, "planted")]


def test_catches_an_action_without_resource_types_granted_on_a_resource() -> None:
    # The finding-1 grant as it was: GetAdministratorAccount on detector/*, which AWS denies.
    findings = _planted(
        {
            "Sid": "Planted",
            "Effect": "Allow",
            "Action": ["guardduty:GetDetector", "guardduty:GetAdministratorAccount"],
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:guardduty:${AWS::Region}:${AWS::AccountId}:detector/*"},
        }
    )
    assert findings == [
        "planted:GuardDutyFunctionRole/Planted: guardduty:GetAdministratorAccount on "
        "arn:aws:guardduty:us-east-1:123456789012:detector/*: supports no resource type: grant it on *"
    ]


def test_catches_a_resource_of_the_wrong_type() -> None:
    findings = _planted(
        {
            "Sid": "Planted",
            "Effect": "Allow",
            "Action": "iam:CreateAccessKey",
            "Resource": {"Fn::GetAtt": ["FlowLogRole", "Arn"]},
        }
    )
    assert len(findings) == 1
    assert (
        "iam:CreateAccessKey on arn:aws:iam::123456789012:role/FlowLogRole: not a resource type it supports"
        in (findings[0])
    )


@pytest.mark.parametrize("action", ["guardduty:GetAdminAccount", "kms:Encrypted*", "*"])
def test_catches_actions_that_do_not_exist(action: str) -> None:
    findings = _planted({"Sid": "Planted", "Effect": "Allow", "Action": action, "Resource": "*"})
    assert len(findings) == 1
    assert action in findings[0]


def test_accepts_what_iam_accepts() -> None:
    # "*" for an action without resource types, a log group ARN with :* for its streams, object ARNs.
    log_group = {"Fn::GetAtt": ["FlowLogGroup", "Arn"]}
    objects = {"Fn::Sub": "${FileBucket.Arn}/*"}
    assert _planted({"Sid": "Ok", "Effect": "Allow", "Action": "logs:PutLogEvents", "Resource": log_group}) == []
    assert _planted({"Sid": "Ok", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects}) == []
    assert _planted({"Sid": "Ok", "Effect": "Allow", "Action": "guardduty:ListDetectors", "Resource": "*"}) == []
    # ...and object actions are not accepted on the bucket itself
    assert _planted({"Sid": "No", "Effect": "Allow", "Action": "s3:GetObject", "Resource": log_group}) != []
