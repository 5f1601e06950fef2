"""``python -m bench.canary_baseline``: the analysis on its own, then against moto end to end
(stack output -> alarm -> target group -> one-minute metrics -> advice)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from bench import canary_baseline
from bench.canary_alarm import REDCAP_RULE
from bench.canary_baseline import (
    MeasureError,
    Minute,
    fetch,
    minutes_from_results,
    percentile,
    recommend,
    render,
    scopes_from_alarms,
    summarise,
)
from moto import mock_aws

from redcap_ctl.express_canary import Rule, definition
from testkit.emulators.express import ExpressService

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
NAMESPACE = "AWS/ApplicationELB"
GROUP = (("LoadBalancer", "app/alb/1"), ("TargetGroup", "targetgroup/redcap/1"))


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


# ----- percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99.9) == 100
    assert percentile(values, 0) == 1
    assert percentile(values, 100) == 100
    assert percentile(list(reversed(values)), 50) == 50  # order of the input does not matter
    assert percentile([7.0], 99.9) == 7


def test_percentile_999_of_a_thousand_is_not_the_maximum() -> None:
    # 99.9 / 100 * 1000 is 999.0000000000001 in floating point: a plain ceil would pick the 1000th.
    values = [float(v) for v in range(1, 1001)]
    assert percentile(values, 99.9) == 999


@pytest.mark.parametrize("q", [-1, 100.1])
def test_percentile_refuses_what_is_not_a_percentile(q: float) -> None:
    with pytest.raises(ValueError, match="within 0..100"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


# ----- summarise: shares and breach counting


def test_quiet_minutes_count_but_are_not_measured_as_shares() -> None:
    minutes = [Minute(at(i), 1, 1, 0) for i in range(3)] + [Minute(at(3 + i), 100, 2, 0) for i in range(10)]
    summary = summarise([*minutes, Minute(at(20), 0, 0, 0)], REDCAP_RULE)
    assert (summary.minutes, summary.measured, summary.requests, summary.client) == (13, 10, 1003, 23)
    assert summary.percentiles["max"] == 2  # the lone 404s of quiet minutes are not a 100 % share
    assert summary.express_breaches == 13  # 1 of 1 and 2 of 100 are both above 1 %
    assert summary.redcap_breaches == 0


@pytest.mark.parametrize(
    ("requests", "client", "server", "express", "redcap"),
    [
        (100, 1, 0, False, False),  # 1 % is not above 1 %
        (100, 2, 0, True, False),
        (100, 0, 1, False, False),
        (100, 0, 2, True, True),  # 5xx above 1 %
        (100, 20, 0, True, False),  # 20 % is not above 20 %
        (100, 21, 0, True, True),
        (10, 4, 0, True, False),  # 40 %, but fewer than 5 4xx
        (20, 5, 0, True, True),  # 25 % with 5 4xx
    ],
)
def test_breaches_follow_each_rule_at_its_boundary(
    requests: int, client: int, server: int, express: bool, redcap: bool
) -> None:
    summary = summarise([Minute(T0, requests, client, server)], REDCAP_RULE)
    assert (summary.express_breaches, summary.redcap_breaches) == (int(express), int(redcap))


def test_a_minute_breaching_in_two_target_groups_is_one_breach() -> None:
    # The alarm ORs its target groups into one datapoint a minute.
    minutes = [Minute(at(0), 100, 30, 0), Minute(at(0), 100, 40, 0), Minute(at(1), 100, 30, 0)]
    summary = summarise(minutes, REDCAP_RULE)
    assert (summary.minutes, summary.measured, summary.redcap_breaches) == (2, 3, 2)


def test_the_rule_under_test_is_the_one_given() -> None:
    minutes = [Minute(at(0), 100, 15, 0)]
    assert summarise(minutes, REDCAP_RULE).redcap_breaches == 0
    assert (
        summarise(minutes, Rule(server_error_percent=1, client_error_percent=10, min_client_errors=5)).redcap_breaches
        == 1
    )


# ----- recommendation


@pytest.mark.parametrize(
    ("worst", "advice"),
    [(0.0, 20), (4.2, 20), (10.0, 20), (10.1, 21), (12.4, 25), (14.0, 28), (50.0, 100), (80.0, 100)],
)
def test_advice_is_twice_the_worst_normal_minute_within_bounds(worst: float, advice: int) -> None:
    summary = summarise([Minute(T0, 1000, round(10 * worst), 0)], REDCAP_RULE)
    assert recommend(summary) == advice


def test_advice_without_a_busy_minute_is_the_default_and_says_why() -> None:
    summary = summarise([Minute(T0, 5, 1, 0)], REDCAP_RULE)
    assert recommend(summary) == 20
    report = render("s", 1, [GROUP], summary, REDCAP_RULE)
    assert "`CanaryClientErrorPercent=20`: no minute had 20 requests or more" in report


def test_advice_capped_at_100_says_the_4xx_part_cannot_fire() -> None:
    summary = summarise([Minute(T0, 100, 60, 0)], REDCAP_RULE)
    assert "`CanaryClientErrorPercent=100`: twice the worst normal minute (p99.9 60.00 %)" in render(
        "s", 1, [GROUP], summary, REDCAP_RULE
    )


@pytest.mark.parametrize(("server", "flagged"), [(0, False), (10, False), (11, True)])
def test_server_errors_above_a_tenth_of_a_percent_are_flagged(server: int, flagged: bool) -> None:
    summary = summarise([Minute(T0, 10_000, 100, server)], REDCAP_RULE)
    report = render("s", 1, [GROUP], summary, REDCAP_RULE)
    assert ("a deployment is not the only source of server errors" in report) is flagged


# ----- scopes from alarms


def _stat(name: str, dimensions: list[dict[str, str]], namespace: str = NAMESPACE) -> dict[str, Any]:
    metric = {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions}
    return {"Id": name.lower(), "MetricStat": {"Metric": metric, "Period": 60, "Stat": "Sum"}}


def _dims(group: str, lb: str = "app/alb/1", *, group_first: bool = False) -> list[dict[str, str]]:
    dims = [{"Name": "LoadBalancer", "Value": lb}, {"Name": "TargetGroup", "Value": group}]
    return dims[::-1] if group_first else dims


def test_scopes_are_the_distinct_sorted_dimension_sets_of_all_alarms() -> None:
    first = {
        "AlarmName": "a",
        "Metrics": [
            _stat("RequestCount", _dims("targetgroup/b/2")),
            _stat("HTTPCode_Target_4XX_Count", _dims("targetgroup/b/2", group_first=True)),
            _stat("RequestCount", _dims("targetgroup/a/1")),
            {"Id": "breach", "Expression": "IF(r0 > 0, 1, 0)"},
        ],
    }
    second = {"AlarmName": "b", "Metrics": [_stat("RequestCount", _dims("targetgroup/a/1", group_first=True))]}
    assert scopes_from_alarms([first, second]) == [
        (("LoadBalancer", "app/alb/1"), ("TargetGroup", "targetgroup/a/1")),
        (("LoadBalancer", "app/alb/1"), ("TargetGroup", "targetgroup/b/2")),
    ]


def test_load_balancer_totals_count_only_when_no_target_group_is_named() -> None:
    lb_only = [{"Name": "LoadBalancer", "Value": "app/alb/1"}]
    with_group = {"AlarmName": "a", "Metrics": [_stat("RequestCount", lb_only), _stat("X", _dims("tg/a/1"))]}
    assert scopes_from_alarms([with_group]) == [(("LoadBalancer", "app/alb/1"), ("TargetGroup", "tg/a/1"))]
    plain = {"AlarmName": "p", "Namespace": NAMESPACE, "MetricName": "RequestCount", "Dimensions": lb_only}
    assert scopes_from_alarms([plain]) == [(("LoadBalancer", "app/alb/1"),)]


def test_an_alarm_without_load_balancer_metrics_is_refused_naming_it() -> None:
    other = {"AlarmName": "cpu", "Metrics": [_stat("CPUUtilization", _dims("x"), namespace="AWS/ECS")]}
    with pytest.raises(MeasureError, match="alarm\\(s\\) cpu watch no AWS/ApplicationELB metric"):
        scopes_from_alarms([other])


# ----- merging GetMetricData results


def test_results_merge_by_minute_missing_counts_are_zero_and_idle_minutes_are_skipped() -> None:
    results = [
        {"Id": "r", "Timestamps": [at(2), at(0), at(1)], "Values": [50.0, 100.0, 0.0]},
        {"Id": "c", "Timestamps": [at(0)], "Values": [3.0]},
        {"Id": "e", "Timestamps": [at(2)], "Values": [1.0]},
        # The next page, or the next window repeating its boundary minute: the same value again.
        {"Id": "r", "Timestamps": [at(0)], "Values": [100.0]},
    ]
    assert list(minutes_from_results(results).values()) == [Minute(at(0), 100, 3, 0), Minute(at(2), 50, 0, 1)]


class StubCloudWatch:
    """GetMetricData answering in two pages per call, recording what it was asked."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        start = request["StartTime"]
        if "NextToken" not in request:
            return {
                "MetricDataResults": [
                    {"Id": "r", "Timestamps": [start], "Values": [40.0], "StatusCode": "PartialData"}
                ],
                "NextToken": "page-2",
            }
        return {
            "MetricDataResults": [
                {"Id": "c", "Timestamps": [start], "Values": [4.0], "StatusCode": "Complete"},
                {"Id": "e", "Timestamps": [], "Values": [], "StatusCode": "Complete"},
            ]
        }


def test_fetch_walks_one_day_windows_and_every_page() -> None:
    stub = StubCloudWatch()
    minutes = fetch(stub, GROUP, T0 - timedelta(days=2, hours=12), T0)
    windows = [(c["StartTime"], c["EndTime"]) for c in stub.calls if "NextToken" not in c]
    assert windows == [
        (T0 - timedelta(days=2, hours=12), T0 - timedelta(days=1, hours=12)),
        (T0 - timedelta(days=1, hours=12), T0 - timedelta(hours=12)),
        (T0 - timedelta(hours=12), T0),
    ]
    assert [c.get("NextToken") for c in stub.calls] == [None, "page-2"] * 3
    assert list(minutes.values()) == [Minute(start, 40, 4, 0) for start, _ in windows]
    query = stub.calls[0]["MetricDataQueries"]
    assert {q["Id"]: q["MetricStat"]["Metric"]["MetricName"] for q in query} == {
        "r": "RequestCount",
        "e": "HTTPCode_Target_5XX_Count",
        "c": "HTTPCode_Target_4XX_Count",
    }
    assert {(q["MetricStat"]["Period"], q["MetricStat"]["Stat"]) for q in query} == {(60, "Sum")}
    assert query[0]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "LoadBalancer", "Value": "app/alb/1"},
        {"Name": "TargetGroup", "Value": "targetgroup/redcap/1"},
    ]


def test_fetch_refuses_a_baseline_with_data_it_was_not_allowed_to_read() -> None:
    class Forbidden:
        def get_metric_data(self, **_: Any) -> dict[str, Any]:
            result = {"Id": "r", "Timestamps": [], "Values": [], "StatusCode": "Forbidden"}
            return {"MetricDataResults": [{**result, "Messages": [{"Code": "x", "Value": "denied"}]}]}

    with pytest.raises(MeasureError, match="Forbidden denied"):
        fetch(Forbidden(), GROUP, T0 - timedelta(hours=1), T0)


# ----- end to end, in moto


def _put(cloudwatch: Any, data: list[dict[str, Any]]) -> None:
    for i in range(0, len(data), 500):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[i : i + 500])


@pytest.fixture
def live(aws_sandbox: None) -> Iterator[ExpressService]:
    """An Express service whose canary alarm carries REDCap's rule, a stack output naming it, and traffic.

    Per minute of the last three hours: 100 requests to the service's target group, sent as 60 and
    40 in the same minute (so the test sees moto sum within a period), 3 4xx, except one minute
    with 14 4xx and one with 2 5xx; then ten quiet minutes of 5 requests and one 404 each. A second
    service on the same load balancer answers 90 % 4xx and must not be counted.
    """
    with mock_aws():
        express = ExpressService.create()
        rule = Rule(server_error_percent=1, client_error_percent=20, min_client_errors=5)
        # The alarm as the stack rewrites it (the project's own code), so the tool reads the real shape.
        express.cloudwatch.put_metric_alarm(**definition(express.alarm(), rule))
        boto3.client("cloudformation", region_name=express.region).create_stack(
            StackName="redcap",
            TemplateBody=json.dumps(
                {
                    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                    "Outputs": {"ExpressCanaryAlarms": {"Value": express.alarm_name}},
                }
            ),
        )
        load_balancer = express.load_balancer_arn.split("loadbalancer/")[-1]
        # moto only: its Dimension.__lt__ is not an ordering, so the sorted() it compares dimension
        # lists with keeps their given order, and a metric matches only a query naming its
        # dimensions in the same order. CloudWatch matches them as a set. Put them in the order the
        # tool asks for them (sorted by name, as the alarm holds them).
        ours = [
            {"Name": "LoadBalancer", "Value": load_balancer},
            {"Name": "TargetGroup", "Value": express.target_group_arn.split(":")[-1]},
        ]
        other = [
            {"Name": "LoadBalancer", "Value": load_balancer},
            {"Name": "TargetGroup", "Value": "targetgroup/other-service/0123456789abcdef"},
        ]
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        data: list[dict[str, Any]] = []

        def count(name: str, dimensions: list[dict[str, str]], minute: datetime, value: int) -> None:
            data.append({"MetricName": name, "Dimensions": dimensions, "Timestamp": minute, "Value": value})

        for i in range(180):
            minute = now - timedelta(minutes=i + 1)
            count("RequestCount", ours, minute + timedelta(seconds=5), 60)
            count("RequestCount", ours, minute + timedelta(seconds=35), 40)
            count("HTTPCode_Target_4XX_Count", ours, minute + timedelta(seconds=10), 14 if i == 42 else 3)
            if i == 100:
                count("HTTPCode_Target_5XX_Count", ours, minute + timedelta(seconds=20), 2)
            if i < 10:
                count("RequestCount", other, minute, 100)
                count("HTTPCode_Target_4XX_Count", other, minute, 90)
        for i in range(180, 190):
            minute = now - timedelta(minutes=i + 1)
            count("RequestCount", ours, minute, 5)
            count("HTTPCode_Target_4XX_Count", ours, minute, 1)
        _put(express.cloudwatch, data)
        yield express


def test_measures_the_live_target_group_and_advises(live: ExpressService, capsys: pytest.CaptureFixture[str]) -> None:
    assert canary_baseline.main(["--stack", "redcap", "--region", live.region, "--days", "1"]) == 0
    report = capsys.readouterr().out
    # 180 busy minutes of 100 requests (60 + 40 summed per minute) and 10 quiet ones of 5.
    assert "minutes measured (with at least one request): 190; requests: 18050" in report
    # (179 * 3 + 14 + 10) / 18050 and 2 / 18050.
    assert "4xx share overall: 3.11 %; 5xx share overall: 0.011 %" in report
    assert "over the 180 minutes with at least 20 requests" in report
    assert "p50 3.00 %, p90 3.00 %, p99 3.00 %, p99.9 14.00 %, max 14.00 %" in report
    assert "Express's default rule (4xx+5xx > 1 %): 190" in report
    # Only the 5xx minute: 14 % of 4xx is within 20 %, and the quiet minutes have one 4xx each.
    assert "REDCap's rule (5xx > 1 %, or at least 5 4xx > 20 %): 1" in report
    assert "**Recommendation:** `CanaryClientErrorPercent=28`: twice the worst normal minute (p99.9 14.00 %)" in (
        report
    )
    assert "Warning" not in report
    assert "targetgroup/redcap/" in report
    assert "other-service" not in report


def test_the_current_limits_come_from_the_command_line(
    live: ExpressService, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--stack", "redcap", "--region", live.region, "--days", "1", "--client-percent", "10"]
    assert canary_baseline.main(argv) == 0
    # The 14 % minute now breaches too.
    assert "REDCap's rule (5xx > 1 %, or at least 5 4xx > 10 %): 2" in capsys.readouterr().out


def test_alarm_names_on_the_command_line_need_no_stack_output(
    live: ExpressService, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--stack", "not-described", "--region", live.region, "--days", "1", "--alarm-name", live.alarm_name]
    assert canary_baseline.main(argv) == 0
    assert "`CanaryClientErrorPercent=28`" in capsys.readouterr().out


def test_a_stack_without_the_output_is_refused_naming_it(
    live: ExpressService, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("cloudformation", region_name=live.region).create_stack(
        StackName="app-runner", TemplateBody=json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})
    )
    assert canary_baseline.main(["--stack", "app-runner", "--region", live.region]) == 2
    assert "stack app-runner has no ExpressCanaryAlarms output" in capsys.readouterr().err


def test_a_missing_stack_or_alarm_is_an_error_not_a_traceback(
    live: ExpressService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert canary_baseline.main(["--stack", "nowhere", "--region", live.region]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert canary_baseline.main(["--stack", "redcap", "--region", live.region, "--alarm-name", "gone"]) == 2
    assert "alarm(s) gone not found" in capsys.readouterr().err


def test_an_alarm_that_watches_no_target_group_is_refused(
    live: ExpressService, capsys: pytest.CaptureFixture[str]
) -> None:
    live.put_cpu_alarm("cpu")
    assert canary_baseline.main(["--stack", "redcap", "--region", live.region, "--alarm-name", "cpu"]) == 2
    assert "watch no AWS/ApplicationELB metric" in capsys.readouterr().err


@pytest.mark.parametrize("days", ["0", "16", "30"])
def test_days_beyond_what_cloudwatch_keeps_are_refused(days: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        canary_baseline.main(["--stack", "redcap", "--days", days])
    assert "CloudWatch keeps one-minute data for 15 days" in capsys.readouterr().err
