"""Foundation: the outputs the platform issue asks for, with the values they must point at.

"Outputs: service URL, custom URL when set, name servers, bucket, database endpoints, secret ARNs,
web ACL ARN, topic ARN."
"""

from __future__ import annotations

from typing import Any

import pytest

from testkit.template import Rendered

ALWAYS: dict[str, Any] = {
    "ServiceUrl": {"Fn::Sub": "https://${AppRunnerService.ServiceUrl}"},
    "FileBucketName": {"Ref": "FileBucket"},
    "DbWriterEndpoint": {"Fn::GetAtt": ["DbCluster", "Endpoint.Address"]},
    "DbReaderEndpoint": {"Fn::GetAtt": ["DbCluster", "ReadEndpoint.Address"]},
    "DbMasterSecretArn": {"Fn::GetAtt": ["DbCluster", "MasterUserSecret.SecretArn"]},
    "DbSaltSecretArn": {"Ref": "DbSaltSecret"},
    "S3UserSecretArn": {"Ref": "S3UserSecret"},
    "SesUserSecretArn": {"Ref": "SesUserSecret"},
    "CronSecretArn": {"Ref": "CronSecret"},
    "WebAclArn": {"Fn::GetAtt": ["WebAcl", "Arn"]},
    "NotificationTopicArn": {"Ref": "NotificationTopic"},
}
NO_DOMAIN = {"DnsMode": "External", "SesEmailIdentity": "redcap@example.org"}
CREATE_ZONE = {"DnsMode": "CreateZone", "DomainName": "redcap.example.org"}


@pytest.mark.parametrize("params", [NO_DOMAIN, CREATE_ZONE], ids=["no-domain", "create-zone"])
def test_the_asked_for_outputs_exist_and_point_at_the_right_resources(params: dict[str, str]) -> None:
    outputs = Rendered(**params).outputs
    for name, value in ALWAYS.items():
        assert name in outputs, name
        assert outputs[name]["Value"] == value, name


def test_custom_url_and_name_servers_only_when_they_exist() -> None:
    plain = Rendered(**NO_DOMAIN).outputs
    assert "CustomUrl" not in plain
    assert "NameServers" not in plain
    zone = Rendered(**CREATE_ZONE).outputs
    assert zone["CustomUrl"]["Value"] == {"Fn::Sub": "https://${DomainName}"}
    assert zone["NameServers"]["Value"] == {"Fn::Join": [",", {"Fn::GetAtt": ["HostedZone", "NameServers"]}]}
