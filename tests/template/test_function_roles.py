"""Every function runs as its own execution role that may write only to its own log group (issue 13, finding 9).

A SAM-generated role always carries AWSLambdaBasicExecutionRole (logs on every log group of the
account). This test fails for any function that uses one -- including functions added later.
"""

from __future__ import annotations

import pytest

from testkit.template import BASELINE_SIDS, Rendered

# Every condition that adds a function: a custom domain (on each compute), GuardDuty on, dev (the
# cleanup), the image build (RedcapSourceZip) and the ECS Express canary rule.
RENDERINGS = {
    "dev-with-domain": Rendered(DomainName="redcap.example.org", Environment="dev"),
    "prod": Rendered(Environment="prod", SesEmailIdentity="redcap@example.org"),
    "express-zip-domain": Rendered(
        ComputeType="EcsExpress",
        CanaryRollbackRule="RedcapRule",
        DomainName="redcap.example.org",
        RedcapSourceZip="s3://releases-bucket/redcap15.5.1.zip",
        ImageUri="",
        Environment="dev",
    ),
}


def test_the_renderings_reach_every_function_in_the_template() -> None:
    declared = {
        name for name, r in Rendered().template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"
    }
    assert {name for _, name in _functions()} == declared


def _functions() -> list[tuple[str, str]]:
    return [
        (label, name)
        for label, rendered in RENDERINGS.items()
        for name in rendered.of_type("AWS::Serverless::Function")
    ]


@pytest.mark.parametrize(("label", "function"), _functions())
def test_function_has_its_own_role_scoped_to_its_own_log_group(label: str, function: str) -> None:
    rendered = RENDERINGS[label]
    props = rendered.props(function)
    assert "Policies" not in props, "SAM policies would make SAM generate a role with AWSLambdaBasicExecutionRole"
    role = rendered.execution_role(function)
    assert role["Properties"].get("ManagedPolicyArns") is None
    trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]
    # no other function shares the role
    users = [f for f in rendered.of_type("AWS::Serverless::Function") if rendered.props(f).get("Role") == props["Role"]]
    assert users == [function]
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    baseline = {
        s["Sid"]: s for s in rendered.function_statements(function, baseline=True) if s.get("Sid") in BASELINE_SIDS
    }
    assert baseline["OwnLogGroupOnly"]["Resource"] == {"Fn::GetAtt": [log_group, "Arn"]}
    assert sorted(baseline["OwnLogGroupOnly"]["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert baseline["ActiveTracing"]["Resource"] == "*"
    assert sorted(baseline["ActiveTracing"]["Action"]) == ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]
    # nothing else in the role touches CloudWatch Logs
    others = rendered.function_statements(function)
    logs = [a for s in others for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    allowed_extra = {"logs:CreateLogGroup", "logs:AssociateKmsKey", "logs:PutRetentionPolicy"}  # ServiceLogGroups
    assert not [a for a in logs if a.startswith("logs:") and a not in allowed_extra], function
    group = rendered.props(log_group)
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert group["RetentionInDays"] == rendered.params["LogRetentionDays"]
