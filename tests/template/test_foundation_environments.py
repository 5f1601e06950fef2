"""Foundation: what prod turns on that dev does not (and the parameters that override it)."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.template import Rendered, load

PROD = {"Environment": "prod"}
DEV = {"Environment": "dev"}


def test_prod_aurora_has_backtrack_long_backups_and_deletion_protection() -> None:
    db = Rendered(**PROD).props("DbCluster")
    assert db["BacktrackWindow"] == 86400
    assert db["BackupRetentionPeriod"] == 30
    assert db["DeletionProtection"] is True


def test_dev_aurora_is_disposable() -> None:
    db = Rendered(**DEV).props("DbCluster")
    assert db["BacktrackWindow"] == 0
    assert db["BackupRetentionPeriod"] < 30
    assert db["DeletionProtection"] is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [("prod", "Snapshot"), ("dev", "Delete")],
)
def test_database_deletion_and_replace_policy(env: str, expected: str) -> None:
    db = Rendered(Environment=env).resource("DbCluster")
    assert db["DeletionPolicy"] == expected
    assert db["UpdateReplacePolicy"] == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [("prod", "Retain"), ("dev", "Delete")],
)
def test_bucket_deletion_and_replace_policy(env: str, expected: str) -> None:
    rendered = Rendered(Environment=env)
    bucket = rendered.resource("FileBucket")
    assert bucket["DeletionPolicy"] == expected
    assert bucket["UpdateReplacePolicy"] == expected
    # The access-log bucket exists in prod only (issue 17), where it is retained.
    if env == "prod":
        assert rendered.resource("LogBucket")["DeletionPolicy"] == "Retain"
        assert rendered.resource("LogBucket")["UpdateReplacePolicy"] == "Retain"
    else:
        assert "LogBucket" not in rendered.resources
        assert "LogBucketPolicy" not in rendered.resources


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_never_lost_resources_are_retained_in_every_environment(env: str) -> None:
    rendered = Rendered(Environment=env)
    for name in ("DbSaltSecret", "KmsKey"):
        res = rendered.resource(name)
        assert res["DeletionPolicy"] == "Retain", name
        assert res["UpdateReplacePolicy"] == "Retain", name


def _versioning(**params: Any) -> str | None:
    config = Rendered(**params).props("FileBucket").get("VersioningConfiguration")
    return None if config is None else str(config["Status"])


def test_file_versioning_follows_environment_by_default() -> None:
    assert _versioning(**PROD) == "Enabled"
    assert _versioning(**DEV) is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"Environment": "prod", "FileVersioning": "Suspended"}, "Suspended"),
        ({"Environment": "dev", "FileVersioning": "Enabled"}, "Enabled"),
        ({"Environment": "dev", "FileVersioning": "Suspended"}, "Suspended"),
    ],
)
def test_file_versioning_can_be_overridden(params: dict[str, str], expected: str) -> None:
    assert _versioning(**params) == expected


def test_noncurrent_versions_expire() -> None:
    rules = Rendered(**PROD).props("FileBucket")["LifecycleConfiguration"]["Rules"]
    days = [r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules if "NoncurrentVersionExpiration" in r]
    assert days == [90]


def test_file_bucket_is_private_kms_encrypted_tls_only_and_logged() -> None:
    rendered = Rendered(**DEV)
    bucket = rendered.props("FileBucket")
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": {"Fn::GetAtt": ["KmsKey", "Arn"]}}
    # Access logging in prod only (issue 17: late log deliveries would race a dev delete).
    assert "LoggingConfiguration" not in bucket
    prod_logging = Rendered(**PROD).props("FileBucket")["LoggingConfiguration"]
    assert prod_logging == {"DestinationBucketName": {"Ref": "LogBucket"}, "LogFilePrefix": "file-bucket/"}
    (deny,) = rendered.props("FileBucketPolicy")["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    # A boolean, as CloudFormation Guard's S3_BUCKET_SSL_REQUESTS_ONLY expects (issue 13, finding 11).
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}


def _nat_gateways(env: str, **extra: str) -> set[str]:
    return set(Rendered(Environment=env, **extra).of_type("AWS::EC2::NatGateway"))


def test_no_nat_in_dev_unless_asked_and_one_per_az_in_prod() -> None:
    # Issue 19: dev on App Runner runs without a NAT gateway by default; DevNatGateway=true brings one back.
    assert _nat_gateways("dev") == set()
    assert _nat_gateways("dev", DevNatGateway="true") == {"NatGateway1"}
    assert _nat_gateways("prod") == {"NatGateway1", "NatGateway2"}
    # prod ignores DevNatGateway: it always has one per AZ.
    assert _nat_gateways("prod", DevNatGateway="false") == {"NatGateway1", "NatGateway2"}
    assert not Rendered(Environment="dev").of_type("AWS::EC2::EIP")


@pytest.mark.parametrize(("env", "nat"), [("dev", "NatGateway1"), ("prod", "NatGateway2")])
def test_second_private_subnet_egress(env: str, nat: str) -> None:
    route = Rendered(Environment=env, DevNatGateway="true").props("PrivateDefaultRoute2")
    assert route["NatGatewayId"] == {"Ref": nat}


def _interface_endpoints(rendered: Rendered) -> dict[str, dict[str, object]]:
    return {
        r["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]: r["Properties"]
        for r in rendered.of_type("AWS::EC2::VPCEndpoint").values()
        if r["Properties"]["VpcEndpointType"] == "Interface"
    }


def test_dev_without_nat_reaches_ses_s3_and_secrets_through_endpoints_in_one_az() -> None:
    """Issue 19 item 3: no NAT in dev, yet REDCap still sends mail and reaches S3 and Secrets Manager."""
    dev = Rendered(**DEV)
    interface = _interface_endpoints(dev)
    assert set(interface) == {"secretsmanager", "email-smtp"}
    for props in interface.values():
        assert props["SubnetIds"] == [{"Ref": "PrivateSubnet1"}]
        assert props["PrivateDnsEnabled"] is True
    gateway = next(
        r for r in dev.of_type("AWS::EC2::VPCEndpoint").values() if r["Properties"]["VpcEndpointType"] == "Gateway"
    )
    assert gateway["Properties"]["RouteTableIds"] == [{"Ref": "PrivateRouteTable1"}, {"Ref": "PrivateRouteTable2"}]
    # The VPC connector's subnets are the ones the SMTP endpoint's security group admits (the VPC's CIDR).
    smtp = dev.props("ExpressSmtpEndpointSecurityGroup")["SecurityGroupIngress"]
    assert [(r["FromPort"], r["CidrIp"]) for r in smtp] == [(587, {"Fn::GetAtt": ["Vpc", "CidrBlock"]})]
    assert dev.props("AppRunnerVpcConnector")["Subnets"] == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
    assert dev.props("WafRedcapEgressIpSet")["Addresses"] == []
    # With the NAT gateway back, App Runner's mail goes through it and the SMTP endpoint is not created.
    with_nat = Rendered(**DEV, DevNatGateway="true")
    assert set(_interface_endpoints(with_nat)) == {"secretsmanager"}


def test_prod_network_is_unchanged_by_issue_19() -> None:
    """prod renders the NAT gateways, endpoints and Aurora scaling exactly as before issue 19."""
    for compute in ("AppRunner", "EcsExpress"):
        prod = Rendered(**PROD, ComputeType=compute)
        for props in _interface_endpoints(prod).values():
            assert props["SubnetIds"] == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]
        for flag in ("true", "false"):
            same = Rendered(**PROD, ComputeType=compute, DevNatGateway=flag)
            for name in ("NatGateway1", "NatGateway2", "PrivateDefaultRoute1", "PrivateDefaultRoute2", "DbCluster"):
                assert (name in same.resources) is (name in prod.resources), name
                if name in prod.resources:
                    assert same.resource(name) == prod.resource(name), name
    app_runner = Rendered(**PROD)
    assert set(_interface_endpoints(app_runner)) == {"secretsmanager"}
    assert app_runner.props("PrivateDefaultRoute1")["NatGatewayId"] == {"Ref": "NatGateway1"}
    assert app_runner.props("DbCluster")["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 8}


@pytest.mark.parametrize(("minimum", "pause"), [("0", 300), ("0.5", None), ("1", None)])
def test_aurora_auto_pause_only_at_zero_acu(minimum: str, pause: int | None) -> None:
    scaling = Rendered(**DEV, DbMinCapacity=minimum).props("DbCluster")["ServerlessV2ScalingConfiguration"]
    assert scaling.get("SecondsUntilAutoPause") == pause
    longer = Rendered(**DEV, DbMinCapacity="0", DbSecondsUntilAutoPause="3600").props("DbCluster")
    assert int(longer["ServerlessV2ScalingConfiguration"]["SecondsUntilAutoPause"]) == 3600


def test_network_endpoints_and_flow_logs() -> None:
    rendered = Rendered(**DEV, DevNatGateway="true")
    endpoints = {
        r["Properties"]["VpcEndpointType"]: r["Properties"] for r in rendered.of_type("AWS::EC2::VPCEndpoint").values()
    }
    assert endpoints["Gateway"]["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.s3"}
    assert endpoints["Interface"]["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.secretsmanager"}
    flow = rendered.props("VpcFlowLog")
    assert flow["TrafficType"] == "ALL"
    assert rendered.props("FlowLogGroup")["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}


def _readers(count: int) -> set[str]:
    instances = Rendered(DbReaderCount=count).of_type("AWS::RDS::DBInstance")
    return set(instances) - {"DbWriter"}


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, set()), (1, {"DbReader1"}), (2, {"DbReader1", "DbReader2"})],
)
def test_reader_count(count: int, expected: set[str]) -> None:
    assert _readers(count) == expected


def test_aurora_serverless_v2_features() -> None:
    rendered = Rendered(**PROD)
    db = rendered.props("DbCluster")
    assert db["Engine"] == "aurora-mysql"
    assert db["EnableIAMDatabaseAuthentication"] is True
    assert db["EnableHttpEndpoint"] is True
    assert db["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in db
    assert db["MasterUserSecret"] == {"KmsKeyId": {"Fn::GetAtt": ["KmsKey", "Arn"]}}
    assert db["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert db["StorageEncrypted"] is True
    assert set(db["EnableCloudwatchLogsExports"]) >= {"error", "slowquery", "audit"}
    assert set(db["ServerlessV2ScalingConfiguration"]) == {"MinCapacity", "MaxCapacity"}
    params = rendered.props("DbClusterParameterGroup")["Parameters"]
    assert params["max_allowed_packet"] == 134217728
    assert params["read_rnd_buffer_size"] == 262144
    assert params["sort_buffer_size"] == 2097152
    assert rendered.props("DbWriter")["DBInstanceClass"] == "db.serverless"


def test_db_parameters_come_from_stack_parameters() -> None:
    params = Rendered(DbSortBufferSize=4194304).props("DbClusterParameterGroup")["Parameters"]
    assert params["sort_buffer_size"] == 4194304


def test_conditional_deletion_policies_have_the_transform_they_need() -> None:
    # Fn::If in DeletionPolicy/UpdateReplacePolicy is only valid under AWS::LanguageExtensions,
    # which must run before the SAM transform.
    transform = load()["Transform"]
    assert transform == ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"]


@pytest.mark.parametrize("compute", ["AppRunner", "EcsExpress"])
def test_dev_stacks_empty_their_buckets_on_delete_and_prod_stacks_never_do(compute: str) -> None:
    """Custom::DevStackCleanup (empties buckets, removes the rotation's keys) exists in dev only."""
    cleanup = {"DevStackCleanup", "DevStackCleanupFunction", "DevStackCleanupFunctionRole", "DevStackCleanupLogGroup"}
    dev = Rendered(Environment="dev", ComputeType=compute)
    prod = Rendered(Environment="prod", ComputeType=compute)
    assert cleanup <= set(dev.resources)
    assert not cleanup & set(prod.resources)
    props = dev.props("DevStackCleanup")
    assert props["Buckets"] == [{"Ref": "FileBucket"}]
    assert "LoggedBuckets" not in props  # dev has no access logging (issue 17)
    assert props["Users"] == [{"Ref": "S3User"}, {"Ref": "SesUser"}]
    # What prod keeps when its stack is deleted, dev lets go.
    assert prod.resource("FileBucket")["DeletionPolicy"] == "Retain"
    assert dev.resource("FileBucket").get("DeletionPolicy", "Delete") == "Delete"
