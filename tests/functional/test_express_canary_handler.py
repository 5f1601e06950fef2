"""Custom::ExpressCanaryAlarm and the deployment-start path through their real handler.

moto serves ECS (the service's deployment configuration naming the canary alarm) and CloudWatch
(the alarm); the Express layout, with its rollback alarm written the way AWS documents Express's
rule, comes from ``testkit.emulators.express``. Responses to CloudFormation are captured on
127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from redcap_ctl import clients
from redcap_ctl.errors import ControlPlaneError
from redcap_ctl.express_canary import MARK
from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture
from testkit.emulators.express import ExpressService

RULE = "IF((100 * FILL(e0, 0) > 1 * FILL(r0, 0) OR (FILL(c0, 0) >= 5 AND 100 * FILL(c0, 0) > 20 * FILL(r0, 0))), 1, 0)"
EXPRESS_RULE_BACK = "IF(100 * (FILL(e0, 0) + FILL(c0, 0)) > 1 * FILL(r0, 0), 1, 0)"


@pytest.fixture
def express(aws_sandbox: None) -> Iterator[ExpressService]:
    with mock_aws():
        clients.reset()
        yield ExpressService.create()
        clients.reset()


@pytest.fixture
def app(express: ExpressService, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in {
        "EXPRESS_CLUSTER": express.cluster,
        "EXPRESS_SERVICE_ARN": express.service_arn,
        "CANARY_SERVER_ERROR_PERCENT": "1",
        "CANARY_CLIENT_ERROR_PERCENT": "20",
        "CANARY_MIN_CLIENT_ERRORS": "5",
        "EXPRESS_MANAGED_ALARMS": express.alarm_arn,
    }.items():
        monkeypatch.setenv(name, value)
    return load_handler("express_canary")


@pytest.fixture
def writes(app: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the alarms the function writes, in order."""
    written: list[str] = []
    real = app.cloudwatch.put_metric_alarm

    def put(**kwargs: Any) -> Any:
        written.append(kwargs["AlarmName"])
        return real(**kwargs)

    monkeypatch.setattr(app.cloudwatch, "put_metric_alarm", put)
    return written


def _event(name: str, express: ExpressService, capture: ResponseCapture, **props: Any) -> dict[str, Any]:
    event = load_event("express_canary", name)
    event["ResponseURL"] = capture.url()
    for key in ("ResourceProperties", "OldResourceProperties"):
        if key in event:
            event[key].update(
                Cluster=express.cluster, ServiceArn=express.service_arn, ManagedAlarmArns=[express.alarm_arn]
            )
    event["ResourceProperties"].update(props)
    if "PhysicalResourceId" in event:
        event["PhysicalResourceId"] = express.service_arn
    return event


def _invoke(app: ModuleType, event: dict[str, Any], capture: ResponseCapture) -> dict[str, Any]:
    capture.clear()
    app.handler(event, LambdaContext())
    return capture.last


def _expression(alarm: dict[str, Any]) -> str:
    returned = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert len(returned) == 1, alarm["Metrics"]
    return str(returned[0]["Expression"])


def _deployment_started(express: ExpressService) -> dict[str, Any]:
    event = load_event("express_canary", "deployment_started.json")
    event["resources"] = [express.service_arn]
    return event


def test_create_sets_redcaps_rule_and_keeps_what_ecs_relies_on(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture, writes: list[str]
) -> None:
    before = express.alarm()
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == express.service_arn
    assert answer["Data"]["AlarmNames"] == express.alarm_name
    assert "4xx above 20 %" in answer["Data"]["Rule"]
    alarm = express.alarm()
    assert _expression(alarm) == RULE
    assert alarm["AlarmDescription"].startswith(MARK)
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1.0, "GreaterThanOrEqualToThreshold")
    # What ECS and Express's rule set: the same alarm name, datapoints and missing-data treatment.
    for key in ("AlarmName", "EvaluationPeriods", "DatapointsToAlarm", "TreatMissingData", "AlarmActions"):
        assert alarm[key] == before[key], key
    # The same target group and load balancer, one minute, summed.
    express_dims = {tuple(sorted((d["Name"], d["Value"]) for d in m["MetricStat"]["Metric"]["Dimensions"]))
                    for m in before["Metrics"] if "MetricStat" in m}  # fmt: skip
    stats = [m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m]
    assert {s["Metric"]["MetricName"] for s in stats} == {
        "RequestCount",
        "HTTPCode_Target_5XX_Count",
        "HTTPCode_Target_4XX_Count",
    }
    assert {tuple(sorted((d["Name"], d["Value"]) for d in s["Metric"]["Dimensions"])) for s in stats} == express_dims
    assert {(s["Period"], s["Stat"]) for s in stats} == {(60, "Sum")}
    # CloudFormation retries a Create: the alarm already carries the rule, nothing is written again.
    assert _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert writes == [express.alarm_name]


def test_update_applies_new_thresholds_and_puts_the_rule_back_after_express_reset_it(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    express.express_resets_alarm()  # an Express update wrote its own rule again
    answer = _invoke(app, _event("update.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == express.service_arn
    assert _expression(express.alarm()) == RULE.replace("> 20 *", "> 30 *")


def test_a_deployment_start_puts_the_rule_back_before_the_canary_is_judged(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture, writes: list[str]
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    express.express_resets_alarm()
    assert app.handler(_deployment_started(express), LambdaContext()) == {"alarms": [express.alarm_name]}
    assert _expression(express.alarm()) == RULE
    # A second start with the rule in place writes nothing.
    app.handler(_deployment_started(express), LambdaContext())
    assert writes == [express.alarm_name, express.alarm_name]


def test_events_of_other_services_or_states_change_nothing(
    app: ModuleType, express: ExpressService, writes: list[str]
) -> None:
    other = _deployment_started(express)
    other["resources"] = [express.service_arn.replace("/redcap", "/someone-else")]
    completed = _deployment_started(express)
    completed["detail"]["eventName"] = "SERVICE_DEPLOYMENT_COMPLETED"
    for event in (other, completed):
        assert app.handler(event, LambdaContext()) == {"alarms": []}
    assert writes == []
    assert _expression(express.alarm()) == "100 * (m4xx + m5xx) / requests"


def test_delete_puts_expresss_documented_rule_back_and_is_safe_twice(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    for _ in range(2):
        answer = _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)
        assert answer["Status"] == "SUCCESS", answer
        alarm = express.alarm()
        assert _expression(alarm) == EXPRESS_RULE_BACK
        assert "documented rule" in alarm["AlarmDescription"]


def test_delete_leaves_an_alarm_it_never_rewrote_and_a_deleted_service_alone(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture, writes: list[str]
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    express.express_resets_alarm()  # Express's own rule again: not ours to rewrite on Delete
    assert _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert _expression(express.alarm()) == "100 * (m4xx + m5xx) / requests"
    express.ecs.delete_service(cluster=express.cluster, service=express.service_arn, force=True)
    for _ in range(2):
        assert _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert writes == [express.alarm_name]


def test_two_target_groups_each_count_on_their_own(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture
) -> None:
    # A canary on a second target group (blue/green pair): either group breaching rolls back.
    alarm = express.alarm()
    second = [
        {**m, "Id": m["Id"] + "_b", "MetricStat": {**m["MetricStat"], "Metric": {**m["MetricStat"]["Metric"]}}}
        for m in alarm["Metrics"]
        if "MetricStat" in m
    ]
    for m in second:
        m["MetricStat"]["Metric"]["Dimensions"] = [
            {"Name": "TargetGroup", "Value": "targetgroup/redcap-b/0123456789abcdef"},
            {"Name": "LoadBalancer", "Value": express.load_balancer_arn.split("loadbalancer/")[-1]},
        ]
    express.cloudwatch.put_metric_alarm(
        AlarmName=express.alarm_name,
        EvaluationPeriods=3,
        DatapointsToAlarm=2,
        Threshold=1.0,
        ComparisonOperator="GreaterThanThreshold",
        Metrics=[m for m in alarm["Metrics"] if "MetricStat" in m]
        + second
        + [{"Id": "rate", "Expression": "MAX([100 * (m4xx + m5xx) / requests, m4xx_b])", "ReturnData": True}],
    )
    assert _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    rewritten = express.alarm()
    expression = _expression(rewritten)
    assert expression.count("FILL(r0, 0)") == 2
    assert expression.count("FILL(r1, 0)") == 2
    assert " OR (100 * FILL(e1, 0)" in expression
    assert len(rewritten["Metrics"]) == 7


def test_a_service_without_deployment_alarms_is_left_alone(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture, writes: list[str]
) -> None:
    express.ecs.update_service(
        cluster=express.cluster,
        service=express.service_arn,
        deploymentConfiguration={"alarms": {"alarmNames": [], "enable": False, "rollback": False}},
    )
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["Data"]["AlarmNames"] == ""
    assert writes == []


@pytest.mark.parametrize(
    ("breakage", "reason"),
    [
        ("missing-alarm", "does not exist in CloudWatch"),
        ("not-elb", "CanaryRollbackRule=ExpressDefault"),
        ("missing-service", "not found"),
    ],
)
def test_what_cannot_be_set_fails_with_a_reason(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture, breakage: str, reason: str
) -> None:
    if breakage == "missing-alarm":
        express.cloudwatch.delete_alarms(AlarmNames=[express.alarm_name])
    elif breakage == "not-elb":
        express.put_cpu_alarm(express.alarm_name)
    else:
        express.ecs.delete_service(cluster=express.cluster, service=express.service_arn, force=True)
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]
    # The failed Create's Delete (crhelper's generated id) touches nothing and succeeds.
    delete = _event("delete.json", express, cfn_responses)
    delete["PhysicalResourceId"] = answer["PhysicalResourceId"]
    assert _invoke(app, delete, cfn_responses)["Status"] == "SUCCESS"


def test_an_alarm_express_does_not_manage_for_the_service_is_never_written(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture, writes: list[str]
) -> None:
    """Issue 17 item 5: only the alarms in ECSManagedResourceArns.MetricAlarms, as the IAM policy allows."""
    other = "another-teams-alarm"
    express.express_resets_alarm()
    express.cloudwatch.put_metric_alarm(**{**_put_args(express.alarm()), "AlarmName": other})
    express.ecs.update_service(
        cluster=express.cluster,
        service=express.service_arn,
        deploymentConfiguration={
            "alarms": {"alarmNames": [express.alarm_name, other], "enable": True, "rollback": True}
        },
    )
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "FAILED"
    assert other in answer["Reason"]
    assert "ECSManagedResourceArns.MetricAlarms" in answer["Reason"]
    assert writes == []
    # The deployment-start path refuses the same way (its list comes from the environment).
    with pytest.raises(ControlPlaneError, match=other):
        app.handler(_deployment_started(express), LambdaContext())
    assert writes == []


def _put_args(alarm: dict[str, Any]) -> dict[str, Any]:
    keys = ("AlarmName", "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "Metrics")
    return {k: alarm[k] for k in keys if k in alarm}


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"ManagedAlarmArns": []}, "ManagedAlarmArns"),
        ({"ManagedAlarmArns": ["arn:aws:sns:us-east-1:123456789012:topic"]}, "ManagedAlarmArns"),
    ],
)
def test_managed_alarms_must_be_alarm_arns(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture, props: dict[str, Any], field: str
) -> None:
    event = _event("create.json", express, cfn_responses)
    event["ResourceProperties"].update(props)
    answer = _invoke(app, event, cfn_responses)
    assert answer["Status"] == "FAILED"
    assert field in answer["Reason"]


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"ClientErrorPercent": "0"}, "ClientErrorPercent"),
        ({"ClientErrorPercent": "twenty"}, "ClientErrorPercent"),
        ({"ServerErrorPercent": "150"}, "ServerErrorPercent"),
        ({"ServerErrorPercent": "nan"}, "ServerErrorPercent"),
        ({"MinClientErrors": "-1"}, "MinClientErrors"),
        ({"ServiceArn": "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/app/x/y"}, "ServiceArn"),
        ({"Cluster": ""}, "Cluster"),
    ],
)
def test_bad_properties_fail_naming_the_field(
    app: ModuleType,
    express: ExpressService,
    cfn_responses: ResponseCapture,
    writes: list[str],
    props: dict[str, Any],
    field: str,
) -> None:
    event = _event("create.json", express, cfn_responses)
    event["ResourceProperties"].update(props)
    answer = _invoke(app, event, cfn_responses)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(f"{field}:") or f" {field}:" in answer["Reason"], answer["Reason"]
    assert writes == []


def test_a_bad_environment_fails_the_deployment_path_naming_the_variable(
    app: ModuleType, express: ExpressService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redcap_ctl.errors import InputError

    monkeypatch.setenv("CANARY_CLIENT_ERROR_PERCENT", "")
    with pytest.raises(InputError, match="^CANARY_CLIENT_ERROR_PERCENT:"):
        app.handler(_deployment_started(express), LambdaContext())
