"""Key rotation in template.yaml: schedules, per-kind least privilege, hygiene, alarms."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.template import Rendered

ROTATION = {
    "S3UserSecret": ("S3KeyRotationFunction", "s3-access-key", "S3UserSecretRotationSchedule"),
    "SesUserSecret": ("SesKeyRotationFunction", "ses-smtp", "SesUserSecretRotationSchedule"),
    "CronSecret": ("CronHeaderRotationFunction", "cron-header", "CronSecretRotationSchedule"),
}


@pytest.fixture(scope="module")
def tpl() -> Rendered:
    return Rendered()


def statements(props: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for policy in props.get("Policies", []):
        out.extend(policy.get("Statement", []))
    return out


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


@pytest.mark.parametrize("secret", sorted(ROTATION))
def test_rotation_policies_are_scoped_to_this_kinds_resources(tpl: Rendered, secret: str) -> None:
    function, kind, _ = ROTATION[secret]
    stmts = statements(tpl.props(function))
    actions: dict[str, list[Any]] = {}
    for st in stmts:
        assert st["Effect"] == "Allow"
        for action in as_list(st["Action"]):
            assert "*" not in action
            actions.setdefault(action, []).extend(as_list(st["Resource"]))
    for resources in actions.values():
        assert "*" not in resources
    assert actions["secretsmanager:PutSecretValue"] == [{"Ref": secret}]
    assert actions["secretsmanager:UpdateSecretVersionStage"] == [{"Ref": secret}]
    assert actions["kms:Decrypt"] == [{"Fn::GetAtt": ["KmsKey", "Arn"]}]
    services = {a.split(":")[0] for a in actions}
    if kind == "s3-access-key":
        assert actions["iam:CreateAccessKey"] == [{"Fn::GetAtt": ["S3User", "Arn"]}]
        assert actions["iam:GetAccessKeyLastUsed"] == [{"Fn::GetAtt": ["S3User", "Arn"]}]
        assert actions["rds-data:ExecuteStatement"] == [{"Fn::GetAtt": ["DbCluster", "DBClusterArn"]}]
        assert {"Fn::GetAtt": ["DbCluster", "MasterUserSecret.SecretArn"]} in actions["secretsmanager:GetSecretValue"]
        assert services == {"secretsmanager", "iam", "rds-data", "kms"}
    elif kind == "ses-smtp":
        assert actions["iam:CreateAccessKey"] == [{"Fn::GetAtt": ["SesUser", "Arn"]}]
        assert actions["apprunner:StartDeployment"] == [{"Fn::GetAtt": ["AppRunnerService", "ServiceArn"]}]
        assert services == {"secretsmanager", "iam", "apprunner", "kms"}
    else:
        assert actions["wafv2:UpdateRegexPatternSet"] == [{"Fn::GetAtt": ["CronHeaderPatternSet", "Arn"]}]
        assert services == {"secretsmanager", "wafv2", "kms"}


def test_kind_specific_environment(tpl: Rendered) -> None:
    s3 = tpl.props("S3KeyRotationFunction")["Environment"]["Variables"]
    assert s3["FILE_BUCKET"] == {"Ref": "FileBucket"}
    assert s3["DB_CLUSTER_ARN"] == {"Fn::GetAtt": ["DbCluster", "DBClusterArn"]}
    assert s3["DB_SECRET_ARN"] == {"Fn::GetAtt": ["DbCluster", "MasterUserSecret.SecretArn"]}
    assert s3["DB_NAME"] == tpl.props("DbCluster")["DatabaseName"]
    ses = tpl.props("SesKeyRotationFunction")["Environment"]["Variables"]
    assert ses["SMTP_HOST"] == {"Fn::Sub": "email-smtp.${AWS::Region}.amazonaws.com"}
    assert ses["SMTP_PORT"] == "587"
    assert ses["APP_RUNNER_SERVICE_ARN"] == {"Fn::GetAtt": ["AppRunnerService", "ServiceArn"]}
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
            if r["Properties"].get("LogGroupName") == {"Fn::Sub": f"/aws/lambda/${{{function}}}"}
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
    iam = [st for st in statements(fn) if any(a.startswith("iam:") for a in as_list(st["Action"]))]
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
