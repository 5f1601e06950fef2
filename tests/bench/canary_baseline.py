"""Measure a live site's normal 4xx share, to set ``CanaryClientErrorPercent`` from data.

Run with your own AWS credentials after a pilot on ECS Express; every call is read-only
(CloudFormation DescribeStacks, CloudWatch DescribeAlarms and GetMetricData):

    PYTHONPATH=layers/shared:tests python -m bench.canary_baseline --stack NAME [--region R] [--days 14]
        [--alarm-name NAME ...] [--client-percent 20] [--server-percent 1] [--min-client 5]

The stack's ``ExpressCanaryAlarms`` output (or ``--alarm-name``) names the canary alarm(s) carrying
REDCap's rule, and the target groups come from the alarm's own metrics, so this reads exactly the
counts the rule reads: per minute, r = RequestCount, c = HTTPCode_Target_4XX_Count and
e = HTTPCode_Target_5XX_Count (Sum, 60 s) of each target group, from CloudWatch, which keeps
one-minute data for 15 days.

Why the whole target group is the right baseline: during a deployment the canary serves only about
5 % of the requests, but each of them is a 4xx with the site's normal probability, so the canary's
expected 4xx share per minute is the site's. Its minutes are noisier (fewer requests), which is
what the rule's minimum 4xx count and the factor of two below are for.

Reports the per-minute 4xx share (percentiles over minutes with at least ``MIN_REQUESTS``
requests, so a quiet night's single 404 does not read as a 100 % minute), how many minutes
Express's default rule and REDCap's rule would call a breach, and the value to set: twice the worst
normal minute (p99.9), never below the default 20 and at most 100.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from bench.canary_alarm import EXPRESS_RULE, short_form
from redcap_ctl.express_canary import NAMESPACE, Rule, Scope, load_balancer_scopes

OUTPUT = "ExpressCanaryAlarms"
MAX_DAYS = 15  # CloudWatch keeps one-minute datapoints for 15 days
MIN_REQUESTS = 20
DEFAULT_CLIENT_PERCENT = 20
DEFAULT_SERVER_PERCENT = 1.0
DEFAULT_MIN_CLIENT = 5
SERVER_SHARE_FLAG = 0.1  # percent: a healthy REDCap answers (almost) no 5xx between deployments
PERIOD = 60
# GetMetricData takes at most 500 queries and returns at most 100,800 datapoints a call: a day of
# minutes for three metrics is 4,320, so one-day windows stay far below whatever --days is.
WINDOW = timedelta(days=1)
# Query ids as the alarm's metric math names them.
METRICS = {"r": "RequestCount", "e": "HTTPCode_Target_5XX_Count", "c": "HTTPCode_Target_4XX_Count"}
MARKS = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9, "max": 100.0}
# Errors from an OK answer's results: the data is not all there, and a partial baseline misleads.
_FAILED = ("Forbidden", "InternalError")


@dataclass(frozen=True)
class Minute:
    """One target group's counts in one minute (``at`` = the minute's start)."""

    at: datetime
    requests: int
    client: int
    server: int


@dataclass(frozen=True)
class Summary:
    minutes: int  # distinct minutes in which some target group had a request
    measured: int  # target-group minutes with at least MIN_REQUESTS requests: the percentiles' base
    requests: int
    client: int
    server: int
    percentiles: dict[str, float]  # 4xx share in percent, keyed as MARKS; empty if nothing measured
    express_breaches: int  # minutes in which Express's default rule breaches for some target group
    redcap_breaches: int

    @property
    def client_share(self) -> float:
        return 100 * self.client / self.requests if self.requests else 0.0

    @property
    def server_share(self) -> float:
        return 100 * self.server / self.requests if self.requests else 0.0


class MeasureError(Exception):
    """What to tell the administrator: the message names what is missing."""


# ----- pure analysis


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of non-empty ``values``: always one of the values."""
    if not values:
        raise ValueError("no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is not within 0..100")
    ordered = sorted(values)
    # Rounded before ceil: 99.9 / 100 * 1000 is 999.0000000000001 in floating point, which would
    # make p99.9 of 1000 minutes the maximum instead of the 999th.
    rank = math.ceil(round(q * len(ordered) / 100, 9))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def scopes_from_alarms(alarms: Iterable[Mapping[str, Any]]) -> list[Scope]:
    """The distinct target groups (sorted dimension sets) the alarms watch, chosen as the stack does."""
    alarms = list(alarms)
    chosen = sorted({scope for alarm in alarms for scope in load_balancer_scopes(alarm)})
    if not chosen:
        names = ", ".join(str(a.get("AlarmName")) for a in alarms) or "(none)"
        raise MeasureError(
            f"alarm(s) {names} watch no {NAMESPACE} metric with a TargetGroup or LoadBalancer dimension: "
            "nothing to measure (is this the canary rollback alarm?)"
        )
    return chosen


def minutes_from_results(results: Iterable[Mapping[str, Any]]) -> dict[datetime, Minute]:
    """One target group's GetMetricData results (any number of pages) merged by timestamp.

    A count with no datapoint in a minute is 0 (CloudWatch publishes no ALB datapoint for a
    minute without that response code); minutes without requests are left out.
    """
    counts: dict[datetime, dict[str, float]] = {}
    for result in results:
        # Assignment, not addition: a minute on a window's boundary may come back in both windows.
        for stamp, value in zip(result["Timestamps"], result["Values"], strict=True):
            counts.setdefault(stamp, {})[result["Id"]] = value
    minutes = {
        stamp: Minute(
            at=stamp,
            requests=round(v.get("r", 0)),
            client=round(v.get("c", 0)),
            server=round(v.get("e", 0)),
        )
        for stamp, v in counts.items()
    }
    return {stamp: m for stamp, m in sorted(minutes.items()) if m.requests > 0}


def summarise(minutes: Iterable[Minute], rule: Rule) -> Summary:
    """Totals, 4xx-share percentiles and breach counts over target-group minutes.

    Breaches are counted per minute, not per target group, as the alarm ORs its target groups.
    """
    busy = [m for m in minutes if m.requests > 0]
    shares = [100 * m.client / m.requests for m in busy if m.requests >= MIN_REQUESTS]
    return Summary(
        minutes=len({m.at for m in busy}),
        measured=len(shares),
        requests=sum(m.requests for m in busy),
        client=sum(m.client for m in busy),
        server=sum(m.server for m in busy),
        percentiles={k: percentile(shares, q) for k, q in MARKS.items()} if shares else {},
        express_breaches=len({m.at for m in busy if EXPRESS_RULE.breaches(m.requests, m.client, m.server)}),
        redcap_breaches=len({m.at for m in busy if rule.breaches(m.requests, m.client, m.server)}),
    )


def recommend(summary: Summary) -> int:
    """Twice the worst normal minute (p99.9), never below the default 20, at most 100."""
    worst = summary.percentiles.get("p99.9", 0.0)
    return min(100, max(DEFAULT_CLIENT_PERCENT, math.ceil(2 * worst)))


def rationale(summary: Summary) -> str:
    """The one sentence behind ``recommend``'s value."""
    if not summary.percentiles:
        return (
            f"no minute had {MIN_REQUESTS} requests or more, too little traffic to measure a share: keep the "
            f"default {DEFAULT_CLIENT_PERCENT} and measure again after busier days."
        )
    worst = summary.percentiles["p99.9"]
    doubled = math.ceil(2 * worst)
    if doubled > 100:
        return (
            f"twice the worst normal minute (p99.9 {worst:.2f} %) is above 100, so the 4xx part of the rule "
            "cannot fire at all: find out what answers so many 4xx before relying on the canary for them."
        )
    if doubled <= DEFAULT_CLIENT_PERCENT:
        return (
            f"twice the worst normal minute (p99.9 {worst:.2f} %) is {doubled} %, within the default "
            f"{DEFAULT_CLIENT_PERCENT}, which already leaves a healthy canary that margin."
        )
    return (
        f"twice the worst normal minute (p99.9 {worst:.2f} %), so a canary rolls back on 4xx only when it "
        "answers them at double the rate the site ever did without a deployment."
    )


def render(stack: str, days: int, scopes: Sequence[Scope], summary: Summary, rule: Rule) -> str:
    groups = ", ".join(f"`{dict(s).get('TargetGroup') or dict(s).get('LoadBalancer')}`" for s in scopes)
    per_group = " (target-group minutes)" if len(scopes) > 1 else ""
    lines = [
        f"# Normal 4xx share of {stack}",
        "",
        f"Last {days} day(s) of one-minute datapoints of {groups}.",
        "",
        f"- minutes measured (with at least one request): {summary.minutes}; requests: {summary.requests}",
        f"- 4xx share overall: {summary.client_share:.2f} %; 5xx share overall: {summary.server_share:.3f} %",
    ]
    if summary.percentiles:
        marks = ", ".join(f"{k} {v:.2f} %" for k, v in summary.percentiles.items())
        lines.append(
            f"- 4xx share per minute, over the {summary.measured} minutes{per_group} with at least {MIN_REQUESTS} "
            f"requests (quieter minutes are left out: one 404 alone is not a 100 % minute): {marks}"
        )
    else:
        lines.append(f"- 4xx share per minute: no minute had {MIN_REQUESTS} requests or more")
    lines += [
        f"- minutes that would have breached under Express's default rule ({short_form(EXPRESS_RULE)}): "
        f"{summary.express_breaches}",
        f"- minutes that would have breached under REDCap's rule ({short_form(rule)}): {summary.redcap_breaches}",
        "- (a deployment rolls back when 2 of its 3 one-minute datapoints breach)",
    ]
    if summary.server_share > SERVER_SHARE_FLAG:
        lines += [
            "",
            f"**Warning:** {summary.server_share:.3f} % of requests were answered 5xx, more than "
            f"{SERVER_SHARE_FLAG} %: a deployment is not the only source of server errors here, and any such "
            "minute during a canary can roll a good release back. Investigate them before tuning.",
        ]
    lines += ["", f"**Recommendation:** `CanaryClientErrorPercent={recommend(summary)}`: {rationale(summary)}"]
    return "\n".join(lines)


# ----- AWS reads (clients passed in)


def alarm_names(cloudformation: Any, stack: str) -> list[str]:
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs", [])}
    if OUTPUT not in outputs:
        raise MeasureError(
            f"stack {stack} has no {OUTPUT} output: it runs App Runner, or ECS Express with "
            "CanaryRollbackRule=ExpressDefault (name the alarm with --alarm-name instead)"
        )
    names = [n.strip() for n in outputs[OUTPUT].split(",") if n.strip()]
    if not names:
        raise MeasureError(f"stack {stack}: its {OUTPUT} output is empty (the Express service has no rollback alarm)")
    return names


def describe_alarms(cloudwatch: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    alarms: list[dict[str, Any]] = []
    paginator = cloudwatch.get_paginator("describe_alarms")
    # DescribeAlarms takes at most 100 names a call.
    for i in range(0, len(names), 100):
        for page in paginator.paginate(AlarmNames=list(names[i : i + 100]), AlarmTypes=["MetricAlarm"]):
            alarms += page["MetricAlarms"]
    missing = sorted(set(names) - {a["AlarmName"] for a in alarms})
    if missing:
        raise MeasureError(f"alarm(s) {', '.join(missing)} not found in this account and Region (--region?)")
    return alarms


def fetch(cloudwatch: Any, scope: Scope, start: datetime, end: datetime) -> dict[datetime, Minute]:
    """One target group's one-minute sums over [start, end), a window and a page at a time."""
    dimensions = [{"Name": k, "Value": v} for k, v in scope]
    queries = [
        {
            "Id": key,
            "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": name, "Dimensions": dimensions},
                "Period": PERIOD,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
        for key, name in METRICS.items()
    ]
    results: list[dict[str, Any]] = []
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
                if result.get("StatusCode") in _FAILED:
                    detail = "; ".join(m.get("Value", "") for m in result.get("Messages", []))
                    raise MeasureError(
                        f"GetMetricData {result['Id']} for {dict(scope)}: {result['StatusCode']} {detail}"
                    )
            results += answer["MetricDataResults"]
            token = answer.get("NextToken")
            if not token:
                break
        window = until
    return minutes_from_results(results)


def measure(cloudformation: Any, cloudwatch: Any, args: argparse.Namespace, now: datetime) -> str:
    names = args.alarm_name or alarm_names(cloudformation, args.stack)
    scopes = scopes_from_alarms(describe_alarms(cloudwatch, names))
    # Whole minutes only, so the windows and CloudWatch's periods line up.
    end = now.astimezone(UTC).replace(second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    minutes = [m for scope in scopes for m in fetch(cloudwatch, scope, start, end).values()]
    rule = Rule(
        server_error_percent=args.server_percent,
        client_error_percent=args.client_percent,
        min_client_errors=args.min_client,
    )
    return render(args.stack, args.days, scopes, summarise(minutes, rule), rule)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.canary_baseline", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the REDCap stack's name")
    parser.add_argument("--region", help="its Region (default: your AWS configuration's)")
    parser.add_argument("--days", type=int, default=14, help=f"how far back, 1 to {MAX_DAYS} (default 14)")
    parser.add_argument(
        "--alarm-name", action="append", default=[], help=f"a canary alarm to read, instead of the {OUTPUT} output"
    )
    parser.add_argument(
        "--client-percent",
        type=float,
        default=DEFAULT_CLIENT_PERCENT,
        help=f"the stack's CanaryClientErrorPercent (default {DEFAULT_CLIENT_PERCENT})",
    )
    parser.add_argument(
        "--server-percent",
        type=float,
        default=DEFAULT_SERVER_PERCENT,
        help=f"the stack's CanaryServerErrorPercent (default {DEFAULT_SERVER_PERCENT:g})",
    )
    parser.add_argument(
        "--min-client",
        type=int,
        default=DEFAULT_MIN_CLIENT,
        help=f"4xx a minute needs before its share counts (default {DEFAULT_MIN_CLIENT})",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.days <= MAX_DAYS:
        parser.error(f"--days must be 1 to {MAX_DAYS}: CloudWatch keeps one-minute data for {MAX_DAYS} days")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        session = boto3.session.Session(region_name=args.region)
        report = measure(session.client("cloudformation"), session.client("cloudwatch"), args, datetime.now(UTC))
    except (MeasureError, ClientError, BotoCoreError) as err:
        print(f"bench.canary_baseline: {err}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
