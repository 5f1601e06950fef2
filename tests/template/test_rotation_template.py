"""Key rotation in template.yaml: schedules, per-kind least privilege, hygiene, alarms."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from testkit import ROOT
from testkit.template import Rendered

ROTATION = {
    "S3UserSecret": ("S3KeyRotationFunction", "s3-access-key", "S3UserSecretRotationSchedule"),
    "SesUserSecret": ("SesKeyRotationFunction", "ses-smtp", "SesUserSecretRotationSchedule"),
    "CronSecret": ("CronHeaderRotationFunction", "cron-header", "CronSecretRotationSchedule"),
}


@pytest.fixture(scope="module")
def tpl() -> Rendered:
    return Rendered()


def statements(function: str) -> list[dict[str, Any]]:
    return Rendered().function_statements(function)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("secret", sorted(ROTATION))
def test_each_secret_rotates_on_schedule_and_at_creation(tpl: Rendered, secret: str) -> None:
    function, kind, schedule = ROTATION[secret]
    props = tpl.props(schedule)
    assert props["SecretId"] == {"Ref": secret}
    assert props["RotationLambdaARN"] == {"Fn::GetAtt": [function, "Arn"]}
    assert props["RotateImmediatelyOnUpdate"] is True
    assert props["RotationRules"] == {"AutomaticallyAfterDays": 90}
    assert Rendered(RotationDays=30).props(schedule)["RotationRules"] == {"AutomaticallyAfterDays": 30}

    fn = tpl.props(function)
    assert fn["CodeUri"] == "functions/key_rotation/"
    assert fn["Handler"] == "app.handler"
    env = fn["Environment"]["Variables"]
    assert env["SECRET_KIND"] == kind
    assert env["POWERTOOLS_SERVICE_NAME"] == "key-rotation"
    assert "POWERTOOLS_LOGGER_LOG_EVENT" not in env, "event logging stays off on the rotation function"
    assert "VpcConfig" not in fn
    skips = {s["id"]: s["comment"] for s in tpl.resource(function)["Metadata"]["checkov"]["skip"]}
    assert "public" in skips["CKV_AWS_117"], "the VPC skip needs its written reason"


@pytest.mark.parametrize("secret", sorted(ROTATION))
def test_only_secrets_manager_from_this_account_for_this_secret_may_invoke(tpl: Rendered, secret: str) -> None:
    function, _, schedule = ROTATION[secret]
    permissions = [
        r["Properties"]
        for r in tpl.of_type("AWS::Lambda::Permission").values()
        if r["Properties"]["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}
    ]
    assert permissions == [
        {
            "FunctionName": {"Fn::GetAtt": [function, "Arn"]},
            "Action": "lambda:InvokeFunction",
            "Principal": "secretsmanager.amazonaws.com",
            "SourceAccount": {"Ref": "AWS::AccountId"},
            "SourceArn": {"Ref": secret},
        }
    ]
    depends = as_list(tpl.resource(schedule).get("DependsOn", []))
    assert any(d.endswith("Permission") for d in depends)
    assert any(d.endswith("LogGroup") for d in depends)


SM_ROTATE = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
IAM_KEYS = (
    "iam:ListAccessKeys",
    "iam:CreateAccessKey",
    "iam:DeleteAccessKey",
    "iam:GetAccessKeyLastUsed",
)
KMS_VIA_SM = {"StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}}
KMS = {"Fn::GetAtt": ["KmsKey", "Arn"]}


def _grants(secret: str, *extra: tuple[tuple[str, ...], dict[str, Any]]) -> set[tuple[str, str, str]]:
    out = {(a, json.dumps({"Ref": secret}), "") for a in SM_ROTATE}
    out |= {
        (a, json.dumps(KMS), json.dumps(KMS_VIA_SM, sort_keys=True)) for a in ("kms:Decrypt", "kms:GenerateDataKey")
    }
    for actions, resource in extra:
        out |= {(a, json.dumps(resource), "") for a in actions}
    return out


# Every (action, resource, condition) each rotation function may hold -- exactly these, nothing wider.
EXPECTED_GRANTS = {
    "S3UserSecret": _grants(
        "S3UserSecret",
        (("secretsmanager:ListSecretVersionIds",), {"Ref": "S3UserSecret"}),
        (IAM_KEYS, {"Fn::GetAtt": ["S3User", "Arn"]}),
        (("rds-data:ExecuteStatement",), {"Fn::GetAtt": ["DbCluster", "DBClusterArn"]}),
        # Its own Data API user (EXECUTE on one procedure), never the master secret.
        (("secretsmanager:GetSecretValue",), {"Ref": "RotationDbUserSecret"}),
    ),
    "SesUserSecret": _grants(
        "SesUserSecret",
        (("secretsmanager:ListSecretVersionIds",), {"Ref": "SesUserSecret"}),
        (IAM_KEYS, {"Fn::GetAtt": ["SesUser", "Arn"]}),
        (("apprunner:StartDeployment",), {"Fn::GetAtt": ["AppRunnerService", "ServiceArn"]}),
    ),
    "CronSecret": _grants(
        "CronSecret",
        (("wafv2:GetRegexPatternSet", "wafv2:UpdateRegexPatternSet"), {"Fn::GetAtt": ["CronHeaderPatternSet", "Arn"]}),
    ),
}


def grants(function: str) -> set[tuple[str, str, str]]:
    """Flatten a function's execution-role policies (beyond its own log group and X-Ray) to triples."""
    out: set[tuple[str, str, str]] = set()
    for st in statements(function):
        assert st["Effect"] == "Allow"
        assert set(st) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, "no NotAction/NotResource"
        condition = json.dumps(st["Condition"], sort_keys=True) if "Condition" in st else ""
        for action in as_list(st["Action"]):
            for resource in as_list(st["Resource"]):
                out.add((action, json.dumps(resource), condition))
    # (function_statements refuses a role with managed policies: they would add grants this test cannot see.)
    return out


@pytest.mark.parametrize("secret", sorted(ROTATION))
def test_rotation_policies_are_exactly_this_kinds_resources(tpl: Rendered, secret: str) -> None:
    function, _, _ = ROTATION[secret]
    expected = EXPECTED_GRANTS[secret]
    actual = grants(function)
    assert actual - expected == set(), "a rotation policy grants more than its kind needs"
    assert expected - actual == set(), "a rotation policy lost a grant its kind needs"


def test_hygiene_policy_is_exactly_the_two_users_and_three_secrets(tpl: Rendered) -> None:
    secrets = [{"Ref": s} for s in ("S3UserSecret", "SesUserSecret", "CronSecret")]
    users = [{"Fn::GetAtt": [u, "Arn"]} for u in ("S3User", "SesUser")]
    # Finding 9: ages come from version dates; only the IAM kinds' values are read (for their key ids).
    expected = {("secretsmanager:ListSecretVersionIds", json.dumps(r), "") for r in secrets}
    expected |= {("secretsmanager:GetSecretValue", json.dumps(r), "") for r in secrets[:2]}
    expected |= {
        (a, json.dumps(r), "")
        for a in ("iam:ListAccessKeys", "iam:GetAccessKeyLastUsed", "iam:UpdateAccessKey", "iam:DeleteAccessKey")
        for r in users
    }
    expected.add(("kms:Decrypt", json.dumps(KMS), json.dumps(KMS_VIA_SM, sort_keys=True)))
    assert grants("KeyHygieneFunction") == expected


def test_kind_specific_environment(tpl: Rendered) -> None:
    s3 = tpl.props("S3KeyRotationFunction")["Environment"]["Variables"]
    assert s3["FILE_BUCKET"] == {"Ref": "FileBucket"}
    assert s3["DB_CLUSTER_ARN"] == {"Fn::GetAtt": ["DbCluster", "DBClusterArn"]}
    assert s3["DB_SECRET_ARN"] == {"Ref": "RotationDbUserSecret"}
    assert s3["DB_NAME"] == tpl.props("DbCluster")["DatabaseName"]
    ses = tpl.props("SesKeyRotationFunction")["Environment"]["Variables"]
    assert ses["SMTP_HOST"] == {"Fn::Sub": "email-smtp.${AWS::Region}.amazonaws.com"}
    assert ses["SMTP_PORT"] == "587"
    assert ses["COMPUTE_SERVICE_ARN"] == {"Fn::GetAtt": ["AppRunnerService", "ServiceArn"]}
    cron = tpl.props("CronHeaderRotationFunction")["Environment"]["Variables"]
    assert cron["CRON_PATTERN_SET_ARN"] == {"Fn::GetAtt": ["CronHeaderPatternSet", "Arn"]}


def test_every_key_rotation_function_has_an_encrypted_log_group_with_retention(tpl: Rendered) -> None:
    for function in (
        "S3KeyRotationFunction",
        "SesKeyRotationFunction",
        "CronHeaderRotationFunction",
        "KeyHygieneFunction",
    ):
        groups = [
            r["Properties"]
            for r in tpl.of_type("AWS::Logs::LogGroup").values()
            if r["Properties"].get("LogGroupName") == {"Fn::Sub": f"/aws/lambda/${{AWS::StackName}}/{function}"}
        ]
        assert len(groups) == 1, function
        assert groups[0]["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
        assert groups[0]["RetentionInDays"] == 365


def test_hygiene_runs_daily_with_the_grace_parameters(tpl: Rendered) -> None:
    schedule = tpl.props("KeyHygieneSchedule")
    assert schedule["ScheduleExpression"] == "rate(1 day)"
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": ["KeyHygieneFunction", "Arn"]}
    fn = tpl.props("KeyHygieneFunction")
    assert fn["CodeUri"] == "functions/key_hygiene/"
    env = fn["Environment"]["Variables"]
    assert env["DEACTIVATE_AFTER_HOURS"] == 24
    assert env["DELETE_AFTER_HOURS"] == 168
    assert env["PREVIOUS_KEY_MAX_GRACE_HOURS"] == 72
    assert env["ROTATION_DAYS"] == 90
    iam = [st for st in statements("KeyHygieneFunction") if any(a.startswith("iam:") for a in as_list(st["Action"]))]
    assert [st["Resource"] for st in iam] == [[{"Fn::GetAtt": ["S3User", "Arn"]}, {"Fn::GetAtt": ["SesUser", "Arn"]}]]


def test_alarms_watch_the_metrics_the_functions_publish(tpl: Rendered) -> None:
    alarms = tpl.of_type("AWS::CloudWatch::Alarm")
    services = {
        "key-rotation": tpl.props("S3KeyRotationFunction")["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"],
        "key-hygiene": tpl.props("KeyHygieneFunction")["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"],
    }
    seen: set[tuple[str, str]] = set()
    for alarm in alarms.values():
        props = alarm["Properties"]
        metric = props.get("MetricName")
        dims = props.get("Dimensions")
        stats = [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        if stats:
            metric, dims = stats[0]["MetricName"], stats[0].get("Dimensions", [])
        if metric not in ("RotationFailed", "PreviousKeyInUse", "SecretAgeDays"):
            continue
        named = {d["Name"]: d["Value"] for d in dims}
        assert named["service"] == services["key-rotation" if metric == "RotationFailed" else "key-hygiene"]
        assert props["AlarmActions"] == [{"Ref": "NotificationTopic"}]
        seen.add((metric, named["SecretKind"]))
    kinds = ("s3-access-key", "ses-smtp", "cron-header")
    assert seen == (
        {("RotationFailed", k) for k in kinds}
        | {("SecretAgeDays", k) for k in kinds}
        | {("PreviousKeyInUse", k) for k in kinds[:2]}
    )


_SUB_NAME = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")


def direct_dependencies(tpl: Rendered, name: str) -> set[str]:
    """Resources ``name`` waits for in CloudFormation: DependsOn, Ref, GetAtt and Sub references."""
    resources = tpl.resources
    found: set[str] = set(as_list(resources[name].get("DependsOn", [])))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "Ref" and isinstance(value, str):
                    found.add(value)
                elif key == "Fn::GetAtt":
                    found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
                elif key == "Fn::Sub":
                    text = value[0] if isinstance(value, list) else value
                    found.update(_SUB_NAME.findall(text))
                    if isinstance(value, list):
                        walk(value[1:])
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(resources[name].get("Properties", {}))
    return found & set(resources)


def closure(tpl: Rendered, name: str) -> set[str]:
    seen: set[str] = set()
    todo = [name]
    while todo:
        for dep in direct_dependencies(tpl, todo.pop()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


@pytest.mark.parametrize("params", [{}, {"Environment": "prod"}])
def test_first_install_starts_the_s3_rotation_before_app_runner_without_a_cycle(params: dict[str, Any]) -> None:
    tpl = Rendered(**params)
    # REDCap reads S3_USER_SECRET when it first starts; its first key comes from the first rotation.
    assert "S3UserSecretRotationSchedule" in as_list(tpl.resource("AppRunnerService").get("DependsOn", []))
    s3_rotation_needs = closure(tpl, "S3UserSecretRotationSchedule")
    assert {"DbCluster", "DbWriter", "FileBucket", "S3User", "S3UserSecret"} <= s3_rotation_needs  # the walk works
    assert "AppRunnerService" not in s3_rotation_needs, "dependency cycle"
    assert "AppRunnerService" not in closure(tpl, "S3KeyRotationFunction")


def test_the_ses_rotation_cannot_run_before_the_service_exists(tpl: Rendered) -> None:
    # Its StartDeployment needs the service: CloudFormation creates the schedule (and so starts
    # the first rotation) only after AppRunnerService is complete, because the function names it.
    assert "AppRunnerService" in direct_dependencies(tpl, "SesKeyRotationFunction")
    assert "AppRunnerService" in closure(tpl, "SesUserSecretRotationSchedule")
    assert "SesUserSecretRotationSchedule" not in closure(tpl, "AppRunnerService")


def _iam_actions_called(paths: list[Path]) -> set[str]:
    """IAM actions the code calls (``iam.create_access_key`` -> ``iam:CreateAccessKey``)."""
    names = set()
    for path in paths:
        names |= set(re.findall(r"\biam\.([a-z_]+)\b", path.read_text(encoding="utf-8")))
    return {"iam:" + "".join(part.title() for part in name.split("_")) for name in names}


def test_rotation_iam_grants_are_the_calls_the_rotation_makes() -> None:
    # Issue 13, finding 9: iam:UpdateAccessKey was granted to rotation roles that never call it.
    package = ROOT / "layers" / "shared" / "redcap_ctl" / "rotation"
    rotation_files = [p for p in package.glob("*.py") if p.name != "hygiene.py"]
    assert _iam_actions_called(rotation_files) == set(IAM_KEYS)
    assert "iam:UpdateAccessKey" in _iam_actions_called([package / "hygiene.py"])
