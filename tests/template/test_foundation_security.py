"""Foundation: least privilege, secrets never in plaintext, no long-lived keys in the template."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from testkit import ROOT, TEMPLATE
from testkit.template import Rendered, load

SECRET_NAMES = {"DB_SALT", "S3_USER_SECRET", "SES_USER_SECRET", "REDCAP_ADMIN_SECRET"}


def _statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_iam_access_key_anywhere() -> None:
    # Keys are created and rotated by the key rotation Lambda, never by CloudFormation.
    types = {r["Type"] for r in load()["Resources"].values()}
    assert "AWS::IAM::AccessKey" not in types


def test_instance_role_has_no_wildcard_resource() -> None:
    role = Rendered(Environment="prod").resource("AppRunnerInstanceRole")
    for stmt in _statements(role):
        for resource in _as_list(stmt["Resource"]):
            assert "*" not in json.dumps(resource), stmt["Sid"]
        for action in _as_list(stmt["Action"]):
            assert "*" not in action, stmt["Sid"]


def test_instance_role_reads_only_its_own_secrets() -> None:
    role = Rendered().resource("AppRunnerInstanceRole")
    by_sid = {s["Sid"]: s for s in _statements(role)}
    assert by_sid["ReadOwnSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    # Never the master secret: REDCap connects with IAM database authentication.
    assert by_sid["ReadOwnSecrets"]["Resource"] == [
        {"Ref": "DbSaltSecret"},
        {"Ref": "S3UserSecret"},
        {"Ref": "SesUserSecret"},
        {"Ref": "RedcapAdminSecret"},
    ]
    assert by_sid["DecryptOwnSecrets"]["Resource"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    connect = by_sid["IamDatabaseAuthentication"]
    assert connect["Action"] == "rds-db:connect"
    assert "${DbCluster.DBClusterResourceId}/${DbIamUserName}" in connect["Resource"]["Fn::Sub"]
    assert set(by_sid) == {"ReadOwnSecrets", "DecryptOwnSecrets", "IamDatabaseAuthentication"}


STACK_REPO = "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/redcap-${StackUuid}"
OVERRIDE_REPO = "arn:${AWS::Partition}:ecr:${Region}:${Account}:repository/${Repository}"


@pytest.mark.parametrize(
    ("params", "arn"),
    [
        ({"RedcapSourceZip": "s3://b/redcap.zip"}, STACK_REPO),
        ({"ImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/redcap:1"}, OVERRIDE_REPO),
    ],
)
def test_ecr_access_role_wildcards_are_the_justified_ones(params: dict[str, str], arn: str) -> None:
    role = Rendered(**params).resource("AppRunnerEcrAccessRole")
    for stmt in _statements(role):
        if stmt["Resource"] == "*":
            # GetAuthorizationToken cannot be scoped to a resource.
            assert stmt["Action"] == "ecr:GetAuthorizationToken"
        else:
            assert stmt["Resource"]["Fn::Sub"][0] == arn


def _image_config() -> dict[str, Any]:
    service = Rendered().props("AppRunnerService")
    config: dict[str, Any] = service["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]
    return config


def test_app_runner_secrets_are_references_never_plaintext() -> None:
    config = _image_config()
    secrets = {s["Name"]: s["Value"] for s in config["RuntimeEnvironmentSecrets"]}
    assert set(secrets) == SECRET_NAMES
    plain = {v["Name"]: v["Value"] for v in config["RuntimeEnvironmentVariables"]}
    assert not SECRET_NAMES & set(plain)
    blob = json.dumps(plain)
    for marker in ("Secret", "PASSWORD", "Password", "SecretString", "resolve:secretsmanager"):
        assert marker not in blob, marker


def test_user_secrets_start_with_the_user_name_only_and_are_kms_encrypted() -> None:
    rendered = Rendered()
    for secret, user in (("S3UserSecret", "S3User"), ("SesUserSecret", "SesUser")):
        props = rendered.props(secret)
        assert props["SecretString"] == {"Fn::Sub": '{"UserName": "${' + user + '}"}'}
        assert props["KmsKeyId"] == {"Ref": "KmsKey"}
    salt = rendered.props("DbSaltSecret")
    assert "SecretString" not in salt
    assert salt["GenerateSecretString"]["PasswordLength"] >= 32


def test_iam_users_have_no_inline_policies_and_s3_user_is_bucket_scoped() -> None:
    rendered = Rendered()
    for user in ("S3User", "SesUser"):
        assert "Policies" not in rendered.props(user)
    (policy,) = rendered.props("S3UserGroup")["Policies"]
    for stmt in policy["PolicyDocument"]["Statement"]:
        assert "*" not in json.dumps(stmt["Resource"]).replace("${FileBucket.Arn}/*", ""), stmt


def test_key_rotation_and_service_principals() -> None:
    key = Rendered().props("KmsKey")
    assert key["EnableKeyRotation"] is True
    services = set()
    for stmt in key["KeyPolicy"]["Statement"]:
        for svc in _as_list(stmt["Principal"].get("Service", [])):
            services.add(svc if isinstance(svc, str) else svc["Fn::Sub"])
    assert {"events.amazonaws.com", "cloudwatch.amazonaws.com", "logs.${AWS::Region}.amazonaws.com"} <= services


ROOT_PRINCIPAL = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
# What publishing to the KMS-encrypted topic (and the SNS/EventBridge dead-letter queue) needs, per AWS's
# "encrypted topics and event sources" guidance: nothing else.
PUBLISHERS = {"events.amazonaws.com", "cloudwatch.amazonaws.com", "ses.amazonaws.com", "sns.amazonaws.com"}
PUBLISH_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey*"}
LOGS_ACTIONS = {"kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"}


def test_key_policy_grants_each_service_only_what_it_needs() -> None:
    statements = Rendered().props("KmsKey")["KeyPolicy"]["Statement"]
    services_seen: set[str] = set()
    for stmt in statements:
        assert stmt["Effect"] == "Allow", stmt
        assert stmt["Principal"] != "*", stmt
        assert stmt["Principal"].get("AWS") != "*", stmt
        if "AWS" in stmt["Principal"]:
            # Only this account; with the root statement, IAM policies (e.g. MalwareProtectionRole's
            # kms:Decrypt via S3) decide which of its principals may use the key.
            assert stmt["Principal"] == {"AWS": ROOT_PRINCIPAL}, stmt
            continue
        services = {s if isinstance(s, str) else s["Fn::Sub"] for s in _as_list(stmt["Principal"]["Service"])}
        actions = set(_as_list(stmt["Action"]))
        services_seen |= services
        if services == {"logs.${AWS::Region}.amazonaws.com"}:
            assert actions == LOGS_ACTIONS, stmt
            # CloudWatch Logs may use the key only for this account's log groups in this Region.
            assert stmt["Condition"] == {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": {
                        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"
                    }
                }
            }, stmt
        else:
            assert services <= PUBLISHERS, f"unexpected service principal(s) {services - PUBLISHERS}"
            assert actions == PUBLISH_ACTIONS, stmt
    assert services_seen == PUBLISHERS | {"logs.${AWS::Region}.amazonaws.com"}


def test_topic_policy_lets_eventbridge_and_alarms_publish() -> None:
    rendered = Rendered()
    assert rendered.props("NotificationTopic")["KmsMasterKeyId"] == {"Ref": "KmsKey"}
    policies = rendered.of_type("AWS::SNS::TopicPolicy")
    assert list(policies) == ["NotificationTopicPolicy"]
    allow = [
        s
        for s in policies["NotificationTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    principals = {p for s in allow for p in s["Principal"]["Service"]}
    assert {"events.amazonaws.com", "cloudwatch.amazonaws.com"} <= principals


def test_optional_email_subscription() -> None:
    assert "NotificationEmailSubscription" not in Rendered().resources
    sub = Rendered(NotificationEmail="ops@example.org").props("NotificationEmailSubscription")
    assert sub["Endpoint"] == "ops@example.org"


def test_app_runner_deployments_are_routed_to_the_topic() -> None:
    rule = Rendered().props("AppRunnerDeploymentEventsRule")
    assert rule["EventPattern"]["source"] == ["aws.apprunner"]
    assert rule["EventPattern"]["resources"] == [{"Fn::GetAtt": ["AppRunnerService", "ServiceArn"]}]
    assert rule["Targets"][0]["Arn"] == {"Ref": "NotificationTopic"}


def test_database_admits_only_the_compute_security_group() -> None:
    rendered = Rendered()
    assert "SecurityGroupIngress" not in rendered.props("DbSecurityGroup")
    ingress = [
        r["Properties"]
        for r in rendered.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Ref": "DbSecurityGroup"}
    ]
    assert ingress == [
        {
            "GroupId": {"Ref": "DbSecurityGroup"},
            "IpProtocol": "tcp",
            "FromPort": 3306,
            "ToPort": 3306,
            "SourceSecurityGroupId": {"Ref": "AppRunnerSecurityGroup"},
            "Description": "MySQL from REDCap on App Runner",
        }
    ]


def test_app_runner_service_shape() -> None:
    rendered = Rendered()
    service = rendered.props("AppRunnerService")
    assert service["InstanceConfiguration"]["Cpu"] == "2 vCPU"
    assert service["InstanceConfiguration"]["Memory"] == "4 GB"
    assert service["NetworkConfiguration"]["EgressConfiguration"]["EgressType"] == "VPC"
    assert service["HealthCheckConfiguration"]["Protocol"] == "HTTP"
    scaling = rendered.props("AppRunnerAutoScaling")
    assert (scaling["MinSize"], scaling["MaxSize"], scaling["MaxConcurrency"]) == (2, 10, 50)
    connector = rendered.props("AppRunnerVpcConnector")
    assert connector["Subnets"] == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}]


# ----------------------------------------------------------------------------- issue 13
def test_database_refuses_plain_text_connections() -> None:
    # Finding 2: without require_secure_transport a client may log in without TLS.
    params = Rendered().props("DbClusterParameterGroup")["Parameters"]
    assert params["require_secure_transport"] == "ON"


def test_kms_service_principals_act_only_for_this_account() -> None:
    # Finding 9: service principals in the key policy need aws:SourceAccount and aws:SourceArn.
    statements = Rendered().props("KmsKey")["KeyPolicy"]["Statement"]
    for stmt in statements:
        services = _as_list(stmt["Principal"].get("Service", []))
        if not services or any(str(s).startswith("logs.") or "logs." in json.dumps(s) for s in services):
            continue  # CloudWatch Logs is scoped by kms:EncryptionContext:aws:logs:arn instead
        condition = stmt["Condition"]
        assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, stmt["Sid"]
        for arn in condition["ArnLike"]["aws:SourceArn"]:
            assert "${AWS::AccountId}" in arn["Fn::Sub"], arn
            assert "${AWS::Region}" in arn["Fn::Sub"], arn


def test_every_service_role_trust_names_this_account() -> None:
    # Finding 9: the malware-protection role trusted its service without aws:SourceAccount.
    rendered = Rendered(EnableMalwareProtection="true")
    for name, res in rendered.of_type("AWS::IAM::Role").items():
        for stmt in res["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            service = stmt["Principal"].get("Service")
            if service in ("malware-protection-plan.guardduty.amazonaws.com", "scheduler.amazonaws.com"):
                assert stmt["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}, name


def test_enhanced_monitoring_role_trusts_rds_only_for_this_account() -> None:
    # Issue 17, item 5: RDS documents aws:SourceArn/aws:SourceAccount for the Enhanced Monitoring role
    # (RDS User Guide, USER_Monitoring.OS.Enabling, "Protecting against the confused deputy problem").
    (stmt,) = Rendered().props("DbMonitoringRole")["AssumeRolePolicyDocument"]["Statement"]
    assert stmt["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_app_runner_roles_carry_no_undocumented_trust_condition() -> None:
    # Issue 17, item 5: App Runner documents no aws:SourceAccount for build/tasks.apprunner.amazonaws.com;
    # a condition the service does not satisfy would stop it assuming the role (docs/security-checks.md).
    rendered = Rendered(ComputeType="AppRunner")
    for name, service in (
        ("AppRunnerEcrAccessRole", "build.apprunner.amazonaws.com"),
        ("AppRunnerInstanceRole", "tasks.apprunner.amazonaws.com"),
    ):
        (stmt,) = rendered.props(name)["AssumeRolePolicyDocument"]["Statement"]
        assert stmt["Principal"] == {"Service": service}
        assert "Condition" not in stmt, name
    doc = (ROOT / "docs" / "security-checks.md").read_text(encoding="utf-8")
    assert "App Runner documents no" in doc


@pytest.mark.parametrize("queue", ["NotificationDeadLetterQueue", "CronDeadLetterQueue"])
def test_every_queue_denies_requests_without_tls(queue: str) -> None:
    # Finding 9: the dead-letter queues had no TLS-only deny.
    rendered = Rendered()
    policies = [
        r["Properties"]
        for r in rendered.of_type("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue} in r["Properties"]["Queues"]
    ]
    (policy,) = policies
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert denies == [
        {
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sqs:*",
            "Resource": {"Fn::GetAtt": [queue, "Arn"]},
            "Condition": {"Bool": {"aws:SecureTransport": False}},
        }
    ]
    assert set(rendered.of_type("AWS::SQS::Queue")) == {"NotificationDeadLetterQueue", "CronDeadLetterQueue"}


def _egress_ports(**params: str) -> set[int]:
    rendered = Rendered(**params)
    rules = list(rendered.props("AppRunnerSecurityGroup")["SecurityGroupEgress"])
    rules += [
        r["Properties"]
        for r in rendered.of_type("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Ref": "AppRunnerSecurityGroup"}
    ]
    return {r["FromPort"] for r in rules if r["CidrIp"] == "0.0.0.0/0"}


def test_plain_http_egress_only_for_the_data_entry_trigger_when_asked() -> None:
    # Finding 9: port 80 to anywhere was open for every stack.
    assert _egress_ports() == {443, 587}
    assert _egress_ports(AllowHttpEgress="true") == {80, 443, 587}


def test_parameter_group_labels_are_single_strings() -> None:
    # Finding 11: {default: Domain, DNS and email} is a mapping with two keys in YAML flow style.
    groups = load()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    for group in groups:
        assert set(group["Label"]) == {"default"}, group["Label"]
        assert isinstance(group["Label"]["default"], str)
    assert "Domain, DNS and email" in [g["Label"]["default"] for g in groups]


def test_secure_transport_conditions_are_booleans() -> None:
    # Finding 11: CloudFormation Guard compares aws:SecureTransport with the boolean false.
    text = TEMPLATE.read_text(encoding="utf-8")
    assert re.findall(r"aws:SecureTransport:\s*(\S+)", text) == ["false"] * len(
        re.findall(r"aws:SecureTransport", text)
    )


# ----------------------------------------------------------------------------- finding 4
def test_every_log_group_aws_services_create_is_claimed_with_the_key_and_retention() -> None:
    # Aurora's exports and App Runner's application/service logs: created by the services, so claimed.
    rendered = Rendered()
    exports = rendered.props("DbCluster")["EnableCloudwatchLogsExports"]
    database = rendered.props("DatabaseLogGroups")
    assert [n["Fn::Sub"] for n in database["LogGroupNames"]] == [
        f"/aws/rds/cluster/${{DbCluster}}/{kind}" for kind in exports
    ]
    app_runner = rendered.props("AppRunnerLogGroups")
    assert [n["Fn::Sub"][0].rsplit("/", 1)[1] for n in app_runner["LogGroupNames"]] == ["application", "service"]
    for props in (database, app_runner):
        assert props["KmsKeyArn"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
        assert props["RetentionInDays"] == rendered.params["LogRetentionDays"]
        assert props["ServiceToken"] == {"Fn::GetAtt": ["ServiceLogGroupsFunction", "Arn"]}
    # claimed before the first instance can export anything
    assert rendered.resource("DbWriter")["DependsOn"] == "DatabaseLogGroups"
    assert "ServiceLogGroupsAppRunnerPolicy" in rendered.resource("AppRunnerLogGroups")["DependsOn"]
    # ECS Express: Container Insights' performance group, claimed before the service starts.
    express = Rendered(ComputeType="EcsExpress")
    claim = express.props("ExpressLogGroups")
    assert claim["LogGroupNames"] == [{"Fn::Sub": "/aws/ecs/containerinsights/${EcsExpressCluster}/performance"}]
    assert claim["KmsKeyArn"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert claim["RetentionInDays"] == express.params["LogRetentionDays"]
    assert "ExpressLogGroups" in express.resource("ExpressService")["DependsOn"]
    (grant,) = express.props("ServiceLogGroupsExpressPolicy")["PolicyDocument"]["Statement"]
    assert grant["Resource"]["Fn::Sub"].endswith(":log-group:/aws/ecs/containerinsights/${EcsExpressCluster}/*")
    assert "ExpressLogGroups" not in rendered.resources
