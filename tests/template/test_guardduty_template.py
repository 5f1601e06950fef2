"""GuardDuty in template.yaml: the parameter gates, the custom resource, the findings rule, malware scanning."""

from __future__ import annotations

import json
from typing import Any

import pytest

from redcap_ctl import guardduty
from testkit.template import Rendered, load

GUARDDUTY_RESOURCES = {"GuardDutyFunction", "GuardDutyLogGroup", "GuardDutyProtection", "GuardDutyFindingsRule"}
MALWARE_RESOURCES = {"MalwareProtectionRole", "FileBucketMalwareProtectionPlan"}
GUARDDUTY_OUTPUTS = {"GuardDutyDetectorId", "GuardDutyCreatedDetector", "GuardDutyManagedBy"}


def _statements(resource: dict[str, Any]) -> list[dict[str, Any]]:
    # IAM roles wrap each document in PolicyDocument; SAM functions list the documents themselves.
    docs = [p.get("PolicyDocument", p) for p in resource["Properties"]["Policies"]]
    return [s for doc in docs for s in doc["Statement"]]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ----------------------------------------------------------------------------- parameter gates
def test_parameters_default_to_protection_on_and_revert_off() -> None:
    params = load()["Parameters"]
    assert params["EnableGuardDuty"]["Default"] == "true"
    assert params["EnableGuardDuty"]["AllowedValues"] == ["true", "false"]
    assert params["EnableMalwareProtection"]["AllowedValues"] == ["true", "false"]
    assert params["GuardDutyRevertOnDelete"]["Default"] == "false"
    assert set(params["GuardDutyFindingFrequency"]["AllowedValues"]) == {"", *guardduty.FREQUENCIES}


@pytest.mark.parametrize(
    ("guard", "malware"),
    [("true", "true"), ("true", "false"), ("false", "true"), ("false", "false")],
)
def test_each_parameter_gates_only_its_own_resources(guard: str, malware: str) -> None:
    rendered = Rendered(EnableGuardDuty=guard, EnableMalwareProtection=malware)
    resources = set(rendered.resources)
    outputs = set(rendered.outputs)

    assert (resources >= GUARDDUTY_RESOURCES) is (guard == "true")
    assert not (GUARDDUTY_RESOURCES & resources) or guard == "true"
    assert (outputs >= GUARDDUTY_OUTPUTS) is (guard == "true")
    assert not (GUARDDUTY_OUTPUTS & outputs) or guard == "true"
    assert (resources >= MALWARE_RESOURCES) is (malware == "true")
    assert not (MALWARE_RESOURCES & resources) or malware == "true"
    assert ("MalwareProtectionPlanId" in outputs) is (malware == "true")
    # Never the native detector: it fails where one exists and its deletion disables GuardDuty account-wide.
    assert not rendered.of_type("AWS::GuardDuty::Detector")


# ----------------------------------------------------------------------------- custom resource
def test_protection_properties_parse_to_the_documented_defaults() -> None:
    props = Rendered().props("GuardDutyProtection")

    assert set(props) <= guardduty.KNOWN_PROPERTIES
    assert props["ServiceToken"] == {"Fn::GetAtt": ["GuardDutyFunction", "Arn"]}
    assert props["OwnerId"] == {"Ref": "AWS::StackName"}
    assert "FindingPublishingFrequency" not in props  # an existing detector's frequency is left alone
    # The handler accepts exactly what the template sends by default.
    stack_id = "arn:aws:cloudformation:us-east-1:123456789012:stack/redcap/x"
    settings = guardduty.parse_settings({**props, "OwnerId": "redcap", "ServiceToken": "arn"}, stack_id)
    assert settings.features == ("S3_DATA_EVENTS", "RDS_LOGIN_EVENTS", "LAMBDA_NETWORK_LOGS")
    assert settings.revert_on_delete is False
    assert settings.frequency is None


def test_finding_frequency_and_revert_pass_through() -> None:
    props = Rendered(GuardDutyFindingFrequency="ONE_HOUR", GuardDutyRevertOnDelete="true").props("GuardDutyProtection")
    assert props["FindingPublishingFrequency"] == "ONE_HOUR"
    assert props["RevertOnDelete"] == "true"


def test_function_follows_the_house_layout_and_logs_encrypted() -> None:
    rendered = Rendered()
    fn = rendered.props("GuardDutyFunction")
    assert fn["CodeUri"] == "functions/guardduty/"
    assert fn["Handler"] == "app.handler"
    assert fn["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "guardduty"
    group = rendered.props("GuardDutyLogGroup")
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}/GuardDutyFunction"}
    assert rendered.resource("GuardDutyProtection")["DependsOn"] == "GuardDutyLogGroup"


def test_function_policy_is_least_privilege() -> None:
    statements = Rendered().function_statements("GuardDutyFunction")
    by_sid = {s["Sid"]: s for s in statements}

    # "*" only where IAM offers no resource type. GetAdministratorAccount is one of them: granted on
    # detector/* AWS would deny it (issue 13, finding 1; the IAM data check catches the whole class).
    for stmt in statements:
        if "*" in _as_list(stmt["Resource"]):
            assert set(_as_list(stmt["Action"])) <= {
                "guardduty:ListDetectors",
                "guardduty:CreateDetector",
                "guardduty:GetAdministratorAccount",
            }, stmt["Sid"]
    assert by_sid["AskWhetherAnAdministratorManagesThisAccount"]["Resource"] == "*"
    detector = by_sid["ManageThisAccountsDetector"]
    assert detector["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:guardduty:${AWS::Region}:${AWS::AccountId}:detector/*"
    }
    assert {"guardduty:TagResource", "guardduty:UntagResource"} <= set(detector["Action"])
    assert "guardduty:GetAdministratorAccount" not in detector["Action"]
    slr = by_sid["GuardDutyServiceLinkedRoles"]
    assert "iam:CreateServiceLinkedRole" in slr["Action"]
    services = slr["Condition"]["StringEqualsIfExists"]["iam:AWSServiceName"]
    assert set(services) == {"guardduty.amazonaws.com", "malware-protection.guardduty.amazonaws.com"}
    assert all("aws-service-role/" in json.dumps(r) for r in slr["Resource"])
    for stmt in statements:
        for action in _as_list(stmt["Action"]):
            assert "*" not in action, stmt["Sid"]


# ----------------------------------------------------------------------------- findings rule
def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """The subset of EventBridge matching the rule uses: value lists and numeric ranges."""
    for key, rule in pattern.items():
        value = event.get(key)
        if isinstance(rule, dict):
            if not isinstance(value, dict) or not _matches(rule, value):
                return False
            continue
        ok = False
        for option in rule:
            if isinstance(option, dict) and "numeric" in option:
                op, bound = option["numeric"]
                ok = ok or (isinstance(value, (int, float)) and {">=": value >= bound, ">": value > bound}[op])
            else:
                ok = ok or value == option
        if not ok:
            return False
    return True


@pytest.mark.parametrize(
    ("severity", "sent"),
    [(1.0, False), (2.0, False), (3.9, False), (4.0, True), (5.5, True), (7.0, True), (8.9, True), (9.0, True)],
)
def test_findings_rule_sends_medium_and_above(severity: float, sent: bool) -> None:
    rule = Rendered().props("GuardDutyFindingsRule")
    finding = {"source": "aws.guardduty", "detail-type": "GuardDuty Finding", "detail": {"severity": severity}}
    assert _matches(rule["EventPattern"], finding) is sent


def test_findings_rule_uses_numeric_matching_and_targets_the_topic() -> None:
    rule = Rendered().props("GuardDutyFindingsRule")
    assert rule["EventPattern"]["source"] == ["aws.guardduty"]
    assert rule["EventPattern"]["detail"]["severity"] == [{"numeric": [">=", 4]}]
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Ref": "NotificationTopic"}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["NotificationDeadLetterQueue", "Arn"]}
    other = {"source": "aws.s3", "detail-type": "GuardDuty Finding", "detail": {"severity": 8}}
    assert not _matches(rule["EventPattern"], other)


# ----------------------------------------------------------------------------- malware protection plan
def test_malware_plan_protects_the_file_bucket_and_tags_results() -> None:
    plan = Rendered().props("FileBucketMalwareProtectionPlan")
    assert plan["ProtectedResource"] == {"S3Bucket": {"BucketName": {"Ref": "FileBucket"}}}
    assert plan["Role"] == {"Fn::GetAtt": ["MalwareProtectionRole", "Arn"]}
    assert plan["Actions"] == {"Tagging": {"Status": "ENABLED"}}


def test_malware_role_is_the_documented_policy_scoped_to_this_bucket_and_key() -> None:
    role = Rendered().resource("MalwareProtectionRole")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "malware-protection-plan.guardduty.amazonaws.com"}
    by_sid = {s["Sid"]: s for s in _statements(role)}

    assert set(by_sid) == {
        "AllowManagedRuleToSendS3EventsToGuardDuty",
        "AllowGuardDutyToMonitorEventBridgeManagedRule",
        "AllowPostScanTag",
        "AllowEnableS3EventBridgeEvents",
        "AllowPutValidationObject",
        "AllowCheckBucketOwnership",
        "AllowMalwareScan",
        "AllowDecryptForMalwareScan",
    }
    managed = by_sid["AllowManagedRuleToSendS3EventsToGuardDuty"]
    assert managed["Condition"] == {
        "StringLike": {"events:ManagedBy": "malware-protection-plan.guardduty.amazonaws.com"}
    }
    assert "rule/DO-NOT-DELETE-AmazonGuardDutyMalwareProtectionS3*" in managed["Resource"]["Fn::Sub"]
    assert set(by_sid["AllowMalwareScan"]["Action"]) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert by_sid["AllowMalwareScan"]["Resource"] == {"Fn::Sub": "${FileBucket.Arn}/*"}
    assert by_sid["AllowEnableS3EventBridgeEvents"]["Resource"] == {"Fn::GetAtt": ["FileBucket", "Arn"]}
    kms = by_sid["AllowDecryptForMalwareScan"]
    assert set(kms["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    assert kms["Resource"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}}}
    for stmt in by_sid.values():
        for resource in _as_list(stmt["Resource"]):
            assert resource != "*", stmt["Sid"]


def test_function_errors_reach_the_notification_topic() -> None:
    alarm = Rendered().props("GuardDutyFunctionErrorsAlarm")
    assert alarm["MetricName"] == "Errors"
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "GuardDutyFunction"}}]
    assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]
    assert "GuardDutyFunctionErrorsAlarm" not in Rendered(EnableGuardDuty="false").resources
