"""Foundation: one customer-managed key encrypts every log group, secret, topic and queue of the stack."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.template import Rendered

KEY_REFS = ({"Ref": "KmsKey"}, {"Fn::GetAtt": ["KmsKey", "Arn"]})
# Resource type -> the property that names its KMS key.
KEY_PROPERTY = {
    "AWS::Logs::LogGroup": "KmsKeyId",
    "AWS::SecretsManager::Secret": "KmsKeyId",
    "AWS::SNS::Topic": "KmsMasterKeyId",
    "AWS::SQS::Queue": "KmsMasterKeyId",
}
EVERYTHING_ON = {
    "Environment": "prod",
    "DomainName": "redcap.example.org",
    "DnsMode": "CreateZone",
    "NotificationEmail": "ops@example.org",
    "DbReaderCount": 2,
}


def _of_types(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in rendered.resources.items() if r["Type"] in KEY_PROPERTY}


@pytest.mark.parametrize("params", [{}, EVERYTHING_ON])
def test_everything_encryptable_uses_the_stack_key(params: dict[str, Any]) -> None:
    resources = _of_types(Rendered(**params))
    assert {"FlowLogGroup", "DbSaltSecret", "S3UserSecret", "SesUserSecret", "NotificationTopic"} <= set(resources)
    for name, res in resources.items():
        assert res["Properties"].get(KEY_PROPERTY[res["Type"]]) in KEY_REFS, name


@pytest.mark.parametrize("params", [{}, EVERYTHING_ON])
def test_every_log_group_has_a_retention(params: dict[str, Any]) -> None:
    groups = Rendered(**params).of_type("AWS::Logs::LogGroup")
    for name, group in groups.items():
        assert group["Properties"].get("RetentionInDays"), name
