"""The canary alarm's metric math says what REDCap's rule says.

The expression text is evaluated here as CloudWatch reads it (FILL of a count that has a value is
the count; AND/OR; comparisons are 0/1; IF picks 1 or 0) over a grid of one-minute counts, and
compared with the rule written as plain arithmetic, so a wrong operator or threshold in the text
cannot pass.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from bench import canary_alarm

from redcap_ctl.errors import ControlPlaneError
from redcap_ctl.express_canary import EXPRESS_DEFAULT, MAX_SCOPES, Rule, definition, parse_rule
from testkit.template import Rendered

TG = "targetgroup/redcap/0123456789abcdef"
LB = "app/ecs-express-gateway-alb/0123456789abcdef"


def _alarm(*groups: str, namespace: str = "AWS/ApplicationELB") -> dict[str, Any]:
    metrics: list[dict[str, Any]] = [
        {
            "Id": f"m{i}",
            "ReturnData": False,
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace,
                    "MetricName": "HTTPCode_Target_4XX_Count",
                    "Dimensions": [{"Name": "TargetGroup", "Value": group}, {"Name": "LoadBalancer", "Value": LB}],
                },
                "Period": 60,
                "Stat": "Sum",
            },
        }
        for i, group in enumerate(groups)
    ]
    metrics.append({"Id": "rate", "Expression": "m0", "ReturnData": True})
    return {"AlarmName": "canary", "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Metrics": metrics}


def _evaluate(expression: str, counts: dict[str, int]) -> int:
    """One datapoint of the expression, CloudWatch's operators mapped to Python's."""
    match = re.fullmatch(r"IF\((.*), 1, 0\)", expression)
    assert match, expression
    text = re.sub(r"FILL\((\w+), 0\)", r"\1", match.group(1)).replace(" AND ", " and ").replace(" OR ", " or ")
    assert re.fullmatch(r"[\w\s()*+<>=.]+", text), text  # nothing but counts, numbers and operators
    return 1 if eval(text, {"__builtins__": {}}, dict(counts)) else 0  # noqa: S307 -- checked above


def _breaches(rule: Rule, r: int, e: int, c: int) -> bool:
    if rule.combined:
        return (e + c) / r * 100 > rule.server_error_percent if r else False
    if not r:
        return False
    return e / r * 100 > rule.server_error_percent or (
        c >= rule.min_client_errors and c / r * 100 > rule.client_error_percent
    )


RULES = [
    Rule(server_error_percent=1, client_error_percent=20, min_client_errors=5),
    Rule(server_error_percent=0.5, client_error_percent=12.5, min_client_errors=3),
    EXPRESS_DEFAULT,
]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.describe())
def test_the_expression_is_the_rule_for_every_minute(rule: Rule) -> None:
    expression = definition(_alarm(TG), rule)["Metrics"][-1]["Expression"]
    for r, e, c in itertools.product((0, 1, 4, 5, 19, 20, 25, 100, 400, 1000), (0, 1, 2, 5, 10), range(0, 60, 1)):
        if e + c > r:
            continue
        assert _evaluate(expression, {"r0": r, "e0": e, "c0": c}) == _breaches(rule, r, e, c), (r, e, c)


def test_with_two_groups_either_one_breaching_is_enough() -> None:
    rule = RULES[0]
    expression = definition(_alarm(TG, "targetgroup/redcap-b/fedcba9876543210"), rule)["Metrics"][-1]["Expression"]
    quiet = {"r0": 100, "e0": 0, "c0": 2}
    broken = {"r1": 20, "e1": 20, "c1": 0}
    assert _evaluate(expression, {**quiet, "r1": 0, "e1": 0, "c1": 0}) == 0
    assert _evaluate(expression, {**quiet, **broken}) == 1


def test_the_alarm_is_the_rule_the_benchmark_measures() -> None:
    # tests/bench/canary_alarm.py computes rollback odds from its own statement of both rules: the
    # alarm text this module writes must decide every minute the same way.
    template = Rendered(
        ComputeType="EcsExpress",
        CanaryRollbackRule="RedcapRule",
        ImageUri="123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:1",
    )
    props = template.props("ExpressCanaryAlarm")
    ours = parse_rule({k: str(v) for k, v in props.items() if not isinstance(v, dict)})
    pairs = [
        (ours, canary_alarm.REDCAP_RULE),
        (EXPRESS_DEFAULT, canary_alarm.EXPRESS_RULE),
    ]
    for rule, model in pairs:
        expression = definition(_alarm(TG), rule)["Metrics"][-1]["Expression"]
        for r, e, c in itertools.product(range(0, 120, 7), range(0, 4), range(0, 40, 3)):
            if e + c <= r:
                assert _evaluate(expression, {"r0": r, "e0": e, "c0": c}) == model.breaches(r, c, e), (rule, r, e, c)


def test_at_most_three_target_groups_fit_in_an_alarm() -> None:
    groups = [f"targetgroup/g{i}/{i:016x}" for i in range(MAX_SCOPES + 1)]
    assert len(definition(_alarm(*groups[:MAX_SCOPES]), RULES[0])["Metrics"]) == 3 * MAX_SCOPES + 1 <= 10
    with pytest.raises(ControlPlaneError, match="more than the 3"):
        definition(_alarm(*groups), RULES[0])


def test_an_alarm_on_other_metrics_is_refused() -> None:
    with pytest.raises(ControlPlaneError, match="CanaryRollbackRule=ExpressDefault"):
        definition(_alarm(TG, namespace="AWS/ECS"), RULES[0])


@pytest.mark.parametrize(
    ("props", "field"),
    [
        ({"ServerErrorPercent": "0"}, "ServerErrorPercent"),
        ({"ServerErrorPercent": "inf"}, "ServerErrorPercent"),
        ({"ClientErrorPercent": "100.5"}, "ClientErrorPercent"),
        ({"MinClientErrors": "2.5"}, "MinClientErrors"),
        ({"MinClientErrors": "0"}, "MinClientErrors"),
    ],
)
def test_bad_thresholds_name_their_field(props: dict[str, str], field: str) -> None:
    good = {"ServerErrorPercent": "1", "ClientErrorPercent": "20", "MinClientErrors": "5"}
    with pytest.raises(ValueError, match=f"^{field}:"):
        parse_rule({**good, **props})
