"""``python -m bench.canary_baseline`` against moto: stack output -> alarm -> target group -> metrics -> advice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from bench import canary_baseline
from bench.canary_alarm import REDCAP_RULE
from bench.canary_baseline import MIN_REQUESTS, Minute, percentile, recommend, summarise
from moto import mock_aws

from redcap_ctl.express_canary import Rule, definition
from testkit.emulators.express import ExpressService

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99.9) == 100
    assert percentile([7.0], 99.9) == 7
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_quiet_minutes_count_but_are_not_measured_as_shares() -> None:
    minutes = [Minute(1, 1, 0)] * 3 + [Minute(100, 2, 0)] * 10 + [Minute(0, 0, 0)]
    summary = summarise(minutes, REDCAP_RULE)
    assert (summary.minutes, summary.measured) == (13, 10)
    assert summary.percentiles["max"] == 2  # the lone 404s of quiet minutes are not a 100 % share
    assert summary.express_breaches == 13  # 1 of 1 and 2 of 100 are both above 1 %
    assert summary.redcap_breaches == 0
    assert MIN_REQUESTS == 20


@pytest.mark.parametrize(("worst", "advice"), [(0.0, 20), (4.2, 20), (12.4, 25), (80.0, 100)])
def test_advice_is_twice_the_worst_normal_minute_within_bounds(worst: float, advice: int) -> None:
    summary = summarise([Minute(1000, round(10 * worst), 0)], REDCAP_RULE)
    assert recommend(summary) == advice


@pytest.fixture
def live(aws_sandbox: None) -> Iterator[ExpressService]:
    """An Express service whose canary alarm carries REDCap's rule, a stack output naming it, and traffic."""
    with mock_aws():
        express = ExpressService.create()
        alarm = express.alarm()
        rule = Rule(server_error_percent=1, client_error_percent=20, min_client_errors=5)
        express.cloudwatch.put_metric_alarm(**definition(alarm, rule))
        boto3.client("cloudformation", region_name=express.region).create_stack(
            StackName="redcap",
            TemplateBody=json.dumps(
                {
                    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                    "Outputs": {"ExpressCanaryAlarms": {"Value": express.alarm_name}},
                }
            ),
        )
        # In the order the tool asks for them (sorted by name): moto matches dimension lists in order,
        # where CloudWatch matches them as a set.
        dimensions = [
            {"Name": "LoadBalancer", "Value": express.load_balancer_arn.split("loadbalancer/")[-1]},
            {"Name": "TargetGroup", "Value": express.target_group_arn.split(":")[-1]},
        ]
        # Three hours of minutes: 100 requests each, 3 4xx (10 in the busiest minute), no 5xx.
        data = []
        for minute in range(180):
            stamp = NOW - timedelta(minutes=minute + 1)
            client = 10 if minute == 42 else 3
            for name, value in (("RequestCount", 100), ("HTTPCode_Target_4XX_Count", client)):
                data.append({"MetricName": name, "Dimensions": dimensions, "Timestamp": stamp, "Value": value})
        for i in range(0, len(data), 500):
            express.cloudwatch.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data[i : i + 500])
        yield express


def test_measures_the_live_target_group_and_advises(live: ExpressService, capsys: pytest.CaptureFixture[str]) -> None:
    assert canary_baseline.main(["--stack", "redcap", "--region", live.region, "--days", "1"], now=NOW) == 0
    report = capsys.readouterr().out
    assert "minutes with requests: 180; requests: 18000" in report
    assert "4xx share overall: 3.04 %" in report
    assert "p50 3.00 %" in report
    assert "max 10.00 %" in report
    assert "Express's rule (4xx+5xx > 1 %) would call a breach: 180" in report
    assert "would call a breach: 0" in report.split("REDCap's rule")[1]
    assert "Set CanaryClientErrorPercent=20" in report
    assert "WARNING" not in report


def test_a_stack_without_the_output_is_refused_naming_it(
    live: ExpressService, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("cloudformation", region_name=live.region).create_stack(
        StackName="app-runner", TemplateBody=json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})
    )
    assert canary_baseline.main(["--stack", "app-runner", "--region", live.region], now=NOW) == 2
    assert "no ExpressCanaryAlarms output" in capsys.readouterr().err


def test_more_days_than_cloudwatch_keeps_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        canary_baseline.main(["--stack", "redcap", "--days", "30"])
    assert "15 days" in capsys.readouterr().err
