"""The operations dashboard and alarms: what they show, and that they match what the code emits."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from testkit.template import Rendered

PARAMS = {"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:1", "DomainName": "redcap.example.org"}
_SUB_RE = re.compile(r"\$\{(!?)([^}]+)\}")


@pytest.fixture(scope="module")
def rendered() -> Rendered:
    return Rendered(**PARAMS)


def _sub_text(value: Any) -> tuple[str, dict[str, Any]]:
    sub = value["Fn::Sub"]
    return (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])


def _fill(text: str, variables: dict[str, Any]) -> str:
    """Substitute like Fn::Sub: variables by name, anything else as <Name>, ${!x} as ${x}.

    A variable that is itself an Fn::Sub (the compute widgets) is filled the same way.
    """

    def repl(match: re.Match[str]) -> str:
        bang, name = match.groups()
        if bang:
            return "${" + name + "}"
        value = variables.get(name)
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and "Fn::Sub" in value:
            return _fill(*_sub_text(value))
        if name == "DbMaxCapacity":
            return "8"
        return f"<{name}>"

    return _SUB_RE.sub(repl, text)


def _body(rendered: Rendered) -> dict[str, Any]:
    boards = rendered.of_type("AWS::CloudWatch::Dashboard")
    assert list(boards) == ["OperationsDashboard"]
    text, variables = _sub_text(boards["OperationsDashboard"]["Properties"]["DashboardBody"])
    body: dict[str, Any] = json.loads(_fill(text, variables))
    return body


@pytest.fixture(scope="module")
def dashboard(rendered: Rendered) -> dict[str, Any]:
    return _body(rendered)


@pytest.fixture(scope="module")
def express() -> Rendered:
    return Rendered(**PARAMS, ComputeType="EcsExpress", CanaryRollbackRule="RedcapRule")


@pytest.fixture(scope="module")
def dashboard_vars(rendered: Rendered) -> dict[str, Any]:
    _text, variables = _sub_text(rendered.props("OperationsDashboard")["DashboardBody"])
    return variables


def _metric_rows(body: dict[str, Any]) -> list[list[Any]]:
    """Every metric row with '.'/'...' shorthand expanded, as CloudWatch reads them."""
    rows: list[list[Any]] = []
    for widget in body["widgets"]:
        previous: list[Any] = []
        for row in widget.get("properties", {}).get("metrics", []):
            plain = [c for c in row if not isinstance(c, dict)]
            if plain[:1] == ["..."]:
                plain = previous + plain[1:]
            else:
                plain = [previous[i] if c == "." and i < len(previous) else c for i, c in enumerate(plain)]
            if plain:
                previous = plain
                rows.append(plain)
    return rows


def _expressions(body: dict[str, Any]) -> list[str]:
    found = []
    for widget in body["widgets"]:
        for row in widget.get("properties", {}).get("metrics", []):
            found += [c["expression"] for c in row if isinstance(c, dict) and "expression" in c]
    return found


def _limits(body: dict[str, Any]) -> dict[str, float]:
    """The canary limits drawn on the Express widget: label -> value."""
    return {
        line["label"]: line["value"]
        for widget in body["widgets"]
        for line in widget.get("properties", {}).get("annotations", {}).get("horizontal", [])
        if "canary" in line["label"]
    }


def _dims(row: list[Any]) -> dict[str, Any]:
    return dict(zip(row[2::2], row[3::2], strict=False))


def test_cron_outcomes_and_latency_use_the_cron_functions_service_name(
    rendered: Rendered, dashboard: dict[str, Any], dashboard_vars: dict[str, Any]
) -> None:
    service = rendered.props("CronCallerFunction")["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
    assert dashboard_vars["CronService"] == service
    rows = {r[1]: r for r in _metric_rows(dashboard) if r[0] == "REDCap/<AWS::StackName>"}
    for name in ("CronSuccess", "CronFailure", "CronTimeout", "CronLatency"):
        assert name in rows, name
        assert _dims(rows[name]) == {"service": service}


@pytest.mark.parametrize("metric", ["SecretAgeDays", "RotationSucceeded", "RotationFailed", "PreviousKeyInUse"])
def test_rotation_metrics_are_shown_per_secret_kind(dashboard: dict[str, Any], metric: str) -> None:
    matching = [e for e in _expressions(dashboard) if f'MetricName="{metric}"' in e]
    assert matching, metric
    assert all('{"REDCap/<AWS::StackName>",SecretKind,service}' in e for e in matching)


def test_rotation_due_line_follows_the_rotation_schedule(rendered: Rendered, dashboard: dict[str, Any]) -> None:
    raw = rendered.template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][1]
    assert raw["RotationDays"] == {"Ref": "RotationDays"}
    lines = [
        a["value"]
        for w in dashboard["widgets"]
        for a in w.get("properties", {}).get("annotations", {}).get("horizontal", [])
    ]
    assert rendered.params["RotationDays"] in lines


def _web_acl_rules(rendered: Rendered) -> tuple[Any, dict[str, dict[str, Any]]]:
    acl = rendered.props("WebAcl")
    rules = {r["VisibilityConfig"]["MetricName"]: r for r in acl["Rules"]}
    return acl["VisibilityConfig"]["MetricName"], rules


def _waf_rows(dashboard: dict[str, Any], rule: str) -> set[str]:
    return {r[1] for r in _metric_rows(dashboard) if r[0] == "AWS/WAFV2" and _dims(r).get("Rule") == rule}


def test_waf_widgets_show_cron_and_admin_rules_separately(
    rendered: Rendered, dashboard: dict[str, Any], dashboard_vars: dict[str, Any]
) -> None:
    acl_metric, rules = _web_acl_rules(rendered)
    assert dashboard_vars["WebAclMetric"] == acl_metric
    allow, block, admin = (dashboard_vars[k] for k in ("CronAllowRuleMetric", "CronBlockRuleMetric", "AdminRuleMetric"))
    # Each shown rule exists, and its metric is the one its action produces.
    assert "Allow" in rules[allow]["Action"]
    assert "Block" in rules[block]["Action"]
    assert "Block" in rules[admin]["Action"]
    assert "cron" in str(rules[allow]["Statement"])
    assert "cron" in str(rules[block]["Statement"])
    assert "install|upgrade" in str(rules[admin]["Statement"])
    assert _waf_rows(dashboard, allow) == {"AllowedRequests"}
    assert _waf_rows(dashboard, block) == {"BlockedRequests"}
    assert _waf_rows(dashboard, admin) == {"BlockedRequests"}
    assert _waf_rows(dashboard, "ALL") == {"AllowedRequests", "BlockedRequests"}
    assert all(set(_dims(r)) == {"WebACL", "Rule", "Region"} for r in _metric_rows(dashboard) if r[0] == "AWS/WAFV2")


def test_app_runner_requests_latency_and_5xx(dashboard: dict[str, Any], dashboard_vars: dict[str, Any]) -> None:
    rows = [r for r in _metric_rows(dashboard) if r[0] == "AWS/AppRunner"]
    assert {"Requests", "RequestLatency", "5xxStatusResponses"} <= {r[1] for r in rows}
    assert all(set(_dims(r)) == {"ServiceName", "ServiceID"} for r in rows)
    _text, compute_vars = _sub_text(dashboard_vars["ComputeWidgets"])
    assert compute_vars["AppRunnerServiceId"] == {"Fn::GetAtt": ["AppRunnerService", "ServiceId"]}
    assert not [r for r in _metric_rows(dashboard) if r[0] in {"AWS/ApplicationELB", "AWS/ECS"}]


def test_express_dashboard_shows_tasks_cpu_5xx_latency_and_rollbacks(express: Rendered) -> None:
    body = _body(express)
    rows = _metric_rows(body)
    assert not [r for r in rows if r[0] == "AWS/AppRunner"]
    shown = {(r[0], r[1]) for r in rows}
    assert {
        ("AWS/ApplicationELB", "RequestCount"),
        ("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"),
        ("AWS/ApplicationELB", "TargetResponseTime"),
        ("AWS/ApplicationELB", "HTTPCode_Target_4XX_Count"),
        ("ECS/ContainerInsights", "RunningTaskCount"),
        ("AWS/ECS", "CPUUtilization"),
        ("AWS/Events", "MatchedEvents"),
    } <= shown
    _text, variables = _sub_text(express.props("OperationsDashboard")["DashboardBody"])
    _inner, compute_vars = _sub_text(variables["ComputeWidgets"])
    # The 4xx and 5xx shares are shown against the limits the canary alarm applies (REDCap's rule, or
    # Express's 1 % on both together), so an administrator sees how close normal traffic comes.
    expressions = _expressions(body)
    assert any("t4" in e and "t5" not in e and "requests" in e for e in expressions)
    assert any("t5" in e and "t4" not in e and "requests" in e for e in expressions)
    assert _limits(body) == {"canary rollback: 4xx above (%)": 20, "canary rollback: 5xx above (%)": 1}
    express_default = Rendered(
        ComputeType="EcsExpress", ImageUri=express.params["ImageUri"], CanaryRollbackRule="ExpressDefault"
    )
    assert _limits(_body(express_default)) == {"canary rollback: 4xx + 5xx together above (%)": 1}
    # The rollback count is the rule that matches exactly the failed (rolled-back) deployments.
    assert compute_vars["RollbackRule"] == {"Ref": "ExpressRollbackEventsRule"}
    rule = express.props("ExpressRollbackEventsRule")["EventPattern"]
    assert rule["detail"] == {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]}
    assert compute_vars["ClusterName"] == {"Ref": "EcsExpressCluster"}
    # Container Insights is on, or RunningTaskCount would not exist.
    assert express.props("EcsExpressCluster")["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enabled"}]


def test_express_5xx_rate_alarm_matches_the_app_runner_one(rendered: Rendered, express: Rendered) -> None:
    app_runner = _alarms(rendered)["AppRunner5xxRateAlarm"]
    alarm = _alarms(express)["Express5xxRateAlarm"]
    assert "AppRunner5xxRateAlarm" not in _alarms(express)
    assert "Express5xxRateAlarm" not in _alarms(rendered)
    for key in ("Threshold", "EvaluationPeriods", "DatapointsToAlarm", "ComparisonOperator", "AlarmActions"):
        assert alarm[key] == app_runner[key], key
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    assert by_id["rate"]["Expression"] == {m["Id"]: m for m in app_runner["Metrics"]}["rate"]["Expression"]
    assert by_id["errors"]["MetricStat"]["Metric"]["MetricName"] == "HTTPCode_Target_5XX_Count"
    assert by_id["requests"]["MetricStat"]["Metric"]["MetricName"] == "RequestCount"


def test_aurora_capacity(dashboard: dict[str, Any]) -> None:
    rows = [r for r in _metric_rows(dashboard) if r[0] == "AWS/RDS"]
    assert {"ServerlessDatabaseCapacity", "ACUUtilization"} <= {r[1] for r in rows}
    assert all(_dims(r) == {"DBClusterIdentifier": "<DbCluster>"} for r in rows)


def _alarms(rendered: Rendered) -> dict[str, dict[str, Any]]:
    return {n: r["Properties"] for n, r in rendered.of_type("AWS::CloudWatch::Alarm").items()}


def test_app_runner_5xx_rate_alarm_is_metric_math(rendered: Rendered) -> None:
    alarm = _alarms(rendered)["AppRunner5xxRateAlarm"]
    by_id = {m["Id"]: m for m in alarm["Metrics"]}
    expression = [m for m in alarm["Metrics"] if "Expression" in m]
    assert len(expression) == 1
    assert expression[0]["ReturnData"] is True
    assert "errors" in expression[0]["Expression"]
    assert "requests" in expression[0]["Expression"]
    assert by_id["errors"]["MetricStat"]["Metric"]["MetricName"] == "5xxStatusResponses"
    assert by_id["requests"]["MetricStat"]["Metric"]["MetricName"] == "Requests"
    assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]


def test_aurora_alarm_fires_at_the_configured_maximum(rendered: Rendered) -> None:
    alarm = _alarms(rendered)["AuroraCapacityAtMaxAlarm"]
    assert alarm["MetricName"] == "ServerlessDatabaseCapacity"
    # Follows the parameter (Rendered fills in its value): raising DbMaxCapacity moves the alarm.
    raw = rendered.template["Resources"]["AuroraCapacityAtMaxAlarm"]["Properties"]
    assert raw["Threshold"] == {"Ref": "DbMaxCapacity"}
    assert alarm["Threshold"] == rendered.params["DbMaxCapacity"]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]


def test_every_alarm_notifies_the_topic(rendered: Rendered) -> None:
    alarms = _alarms(rendered)
    assert alarms
    for name, alarm in alarms.items():
        assert {"Ref": "NotificationTopic"} in alarm.get("AlarmActions", []), name


def _alarmed_on(alarm: dict[str, Any], metric: str) -> list[Any]:
    """Dimension values of every ``metric`` the alarm watches (plain or inside metric math)."""
    found = []
    if alarm.get("MetricName") == metric:
        found += [d["Value"] for d in alarm.get("Dimensions", [])]
    for m in alarm.get("Metrics", []):
        inner = m.get("MetricStat", {}).get("Metric", {})
        if inner.get("MetricName") == metric:
            found += [d["Value"] for d in inner.get("Dimensions", [])]
    return found


# App Runner with an ImageUri (the fixture) and the other branches that add functions: ECS Express
# with a domain (host header, canary rule) and the image build from RedcapSourceZip.
EXPRESS_ZIP = {
    "ComputeType": "EcsExpress",
    "DomainName": "redcap.example.org",
    "RedcapSourceZip": "s3://releases-bucket/redcap15.5.1.zip",
    "ImageUri": "",
}


@pytest.mark.parametrize("variant", ["app-runner", "express-zip"])
def test_every_function_has_an_errors_alarm(rendered: Rendered, variant: str) -> None:
    """Whoever owns it, every Lambda's failures reach someone."""
    if variant == "express-zip":
        rendered = Rendered(**{**PARAMS, **EXPRESS_ZIP})
    functions = [n for n, r in rendered.resources.items() if r["Type"] == "AWS::Serverless::Function"]
    assert functions
    watched: list[Any] = []
    for alarm in _alarms(rendered).values():
        watched += _alarmed_on(alarm, "Errors")
    # DevStackCleanupFunction runs only while a dev stack is deleted, when its alarm and the topic are
    # being deleted too: its failures reach whoever deletes the stack as DELETE_FAILED with the reason.
    deleting_only = {"DevStackCleanupFunction"}
    missing = [f for f in functions if {"Ref": f} not in watched and f not in deleting_only]
    assert not missing, f"no Errors alarm for {missing}"


def test_every_queue_has_a_depth_alarm(rendered: Rendered) -> None:
    queues = list(rendered.of_type("AWS::SQS::Queue"))
    watched: list[Any] = []
    for alarm in _alarms(rendered).values():
        watched += _alarmed_on(alarm, "ApproximateNumberOfMessagesVisible")
    missing = [q for q in queues if {"Fn::GetAtt": ["" + q, "QueueName"]} not in watched]
    assert not missing, f"no depth alarm for {missing}"
