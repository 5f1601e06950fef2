"""Measure a live site's normal 4xx share, to set ``CanaryClientErrorPercent`` from data.

Run with your own AWS credentials after a pilot on ECS Express (read-only calls: CloudFormation
DescribeStacks, CloudWatch DescribeAlarms and GetMetricData):

    PYTHONPATH=layers/shared:tests python -m bench.canary_baseline --stack NAME [--region R] [--days 14]

The stack's ``ExpressCanaryAlarms`` output names the canary alarm(s) carrying REDCap's rule; the
target groups come from the alarm's own metrics (``redcap_ctl.express_canary.scopes``), so this
reads exactly what the rule counts. A canary sees about 5 % of the requests, but each of them is
a 4xx with the site's normal probability, so the whole target group's share per minute is the
baseline the canary's limit must clear. CloudWatch keeps one-minute data for 15 days.

Reports the per-minute 4xx share (minutes with at least ``MIN_REQUESTS`` requests, so a quiet
night's single 404 does not read as 100 %), how many minutes Express's and REDCap's rules would
call a breach, and the value to set: twice the worst normal minute (p99.9), never below the
default 20 %.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from bench.canary_alarm import EXPRESS_RULE, Rule
from redcap_ctl.express_canary import NAMESPACE, Scope, scopes

OUTPUT = "ExpressCanaryAlarms"
MAX_DAYS = 15
MIN_REQUESTS = 20
DEFAULT_CLIENT_PERCENT = 20
# GetMetricData returns at most 100,800 datapoints a call: one day of minutes for three metrics fits.
WINDOW = timedelta(days=1)
METRICS = {"r": "RequestCount", "c": "HTTPCode_Target_4XX_Count", "e": "HTTPCode_Target_5XX_Count"}


@dataclass(frozen=True)
class Minute:
    requests: int
    client: int
    server: int


@dataclass(frozen=True)
class Summary:
    minutes: int  # minutes with at least one request
    measured: int  # of those, minutes with at least MIN_REQUESTS requests (the percentiles' base)
    requests: int
    client: int
    server: int
    percentiles: dict[str, float]  # 4xx share in percent: p50, p90, p99, p99.9, max
    express_breaches: int
    redcap_breaches: int

    @property
    def client_share(self) -> float:
        return 100 * self.client / self.requests if self.requests else 0.0

    @property
    def server_share(self) -> float:
        return 100 * self.server / self.requests if self.requests else 0.0


class MeasureError(Exception):
    """What to tell the administrator: the message names what is missing."""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of non-empty ``values``."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarise(minutes: Iterable[Minute], rule: Rule) -> Summary:
    busy = [m for m in minutes if m.requests > 0]
    measured = [100 * m.client / m.requests for m in busy if m.requests >= MIN_REQUESTS]
    marks = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9, "max": 100.0}
    return Summary(
        minutes=len(busy),
        measured=len(measured),
        requests=sum(m.requests for m in busy),
        client=sum(m.client for m in busy),
        server=sum(m.server for m in busy),
        percentiles={k: percentile(measured, q) for k, q in marks.items()} if measured else {},
        express_breaches=sum(EXPRESS_RULE.breaches(m.requests, m.client, m.server) for m in busy),
        redcap_breaches=sum(rule.breaches(m.requests, m.client, m.server) for m in busy),
    )


def recommend(summary: Summary) -> int:
    """Twice the worst normal minute (p99.9), never below the default, at most 100."""
    worst = summary.percentiles.get("p99.9", 0.0)
    return min(100, max(DEFAULT_CLIENT_PERCENT, math.ceil(2 * worst)))


def alarm_names(cloudformation: Any, stack: str) -> list[str]:
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs", [])}
    if OUTPUT not in outputs:
        raise MeasureError(
            f"stack {stack} has no {OUTPUT} output: it runs App Runner, or CanaryRollbackRule=ExpressDefault"
        )
    names = [n.strip() for n in outputs[OUTPUT].split(",") if n.strip()]
    if not names:
        raise MeasureError(f"stack {stack}: {OUTPUT} is empty (the Express service has no deployment alarm)")
    return names


def alarm_scopes(cloudwatch: Any, names: Sequence[str]) -> list[Scope]:
    alarms = cloudwatch.describe_alarms(AlarmNames=list(names), AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    missing = sorted(set(names) - {a["AlarmName"] for a in alarms})
    if missing:
        raise MeasureError(f"alarm {', '.join(missing)} not found in this account and Region")
    found: list[Scope] = []
    for alarm in alarms:
        found += [s for s in scopes(alarm) if s not in found]
    return found


def fetch(cloudwatch: Any, scope: Scope, start: datetime, end: datetime) -> dict[datetime, Minute]:
    """One-minute sums of the three counts over [start, end), missing counts as 0."""
    dimensions = [{"Name": k, "Value": v} for k, v in scope]
    queries = [
        {
            "Id": key,
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions},
                "Period": 60,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
        for key, name in METRICS.items()
    ]
    counts: dict[datetime, dict[str, float]] = {}
    window = start
    while window < end:
        until = min(end, window + WINDOW)
        token: str | None = None
        while True:
            request: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": window, "EndTime": until}
            if token:
                request["NextToken"] = token
            answer = cloudwatch.get_metric_data(**request)
            for result in answer["MetricDataResults"]:
                for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
                    counts.setdefault(stamp, {})[result["Id"]] = value
            token = answer.get("NextToken")
            if not token:
                break
        window = until
    return {
        stamp: Minute(requests=int(v.get("r", 0)), client=int(v.get("c", 0)), server=int(v.get("e", 0)))
        for stamp, v in counts.items()
    }


def render(stack: str, days: int, scope_count: int, summary: Summary, rule: Rule) -> str:
    lines = [
        f"# Normal 4xx share of {stack} (last {days} days, {scope_count} target group(s))",
        "",
        f"- minutes with requests: {summary.minutes}; requests: {summary.requests}",
        f"- 4xx share overall: {summary.client_share:.2f} %; 5xx share overall: {summary.server_share:.3f} %",
    ]
    if summary.percentiles:
        marks = ", ".join(f"{k} {v:.2f} %" for k, v in summary.percentiles.items())
        lines.append(
            f"- 4xx share per minute (the {summary.measured} minutes with >= {MIN_REQUESTS} requests): {marks}"
        )
    else:
        lines.append(f"- no minute had {MIN_REQUESTS} requests or more: too little traffic to measure a share")
    lines += [
        f"- minutes Express's rule ({EXPRESS_RULE.label()}) would call a breach: {summary.express_breaches}",
        f"- minutes REDCap's rule ({rule.label()}) would call a breach: {summary.redcap_breaches}",
    ]
    if summary.server_share > 0.1:
        lines.append(
            "- WARNING: more than 0.1 % of requests answered 5xx with no deployment under way: find out why "
            "before tuning the canary (each such minute can roll a good release back)"
        )
    value = recommend(summary)
    lines += [
        "",
        f"Set CanaryClientErrorPercent={value}: twice the worst normal minute (p99.9), never below the "
        f"default {DEFAULT_CLIENT_PERCENT}.",
    ]
    return "\n".join(lines)


def measure(cloudformation: Any, cloudwatch: Any, args: argparse.Namespace, now: datetime) -> str:
    names = args.alarm_name or alarm_names(cloudformation, args.stack)
    found = alarm_scopes(cloudwatch, names)
    end = now.replace(second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    minutes: list[Minute] = []
    for scope in found:
        minutes += fetch(cloudwatch, scope, start, end).values()
    rule = Rule(server_pct=args.server_percent, client_pct=args.client_percent, min_client=args.min_client)
    return render(args.stack, args.days, len(found), summarise(minutes, rule), rule)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.canary_baseline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the REDCap stack's name")
    parser.add_argument("--region", help="its Region (default: your AWS configuration's)")
    parser.add_argument("--days", type=int, default=14, help=f"how far back, 1 to {MAX_DAYS} (default 14)")
    parser.add_argument("--alarm-name", action="append", default=[], help=f"instead of the {OUTPUT} output")
    parser.add_argument("--client-percent", type=float, default=DEFAULT_CLIENT_PERCENT)
    parser.add_argument("--server-percent", type=float, default=1.0)
    parser.add_argument("--min-client", type=int, default=5)
    args = parser.parse_args(argv)
    if not 1 <= args.days <= MAX_DAYS:
        parser.error(f"--days must be 1 to {MAX_DAYS}: CloudWatch keeps one-minute data for {MAX_DAYS} days")
    return args


def main(argv: Sequence[str] | None = None, *, now: datetime | None = None) -> int:
    args = parse_args(argv)
    session = boto3.session.Session(region_name=args.region)
    try:
        report = measure(session.client("cloudformation"), session.client("cloudwatch"), args, now or datetime.now(UTC))
    except MeasureError as err:
        print(f"bench.canary_baseline: {err}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
