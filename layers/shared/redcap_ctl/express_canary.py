"""REDCap's rule on the alarm that rolls back ECS Express canaries (Custom::ExpressCanaryAlarm).

Every ECS Express update is a canary: about 5 % of requests go to the new revision's target group
and a CloudWatch alarm, named in the service's ``deploymentConfiguration.alarms``, rolls the
deployment back. AWS documents Express's rule as 4xx + 5xx above 1 % of the canary's requests in 2
of 3 one-minute datapoints. REDCap answers 4xx in normal use (scanners asking for paths that do
not exist, expired links, API calls with a revoked token, WAF blocks), so at a canary's traffic
one such response in a minute breaches and healthy deployments roll back
(``tests/bench/canary-results.md`` has the probabilities, ``make bench-canary`` recomputes them).

REDCap's rule, per datapoint of the alarm's own period, for each target group the alarm watches
(r = requests, e = target 5xx, c = target 4xx):

    breach  iff  100 * e > ServerErrorPercent * r
            or   (c >= MinClientErrors and 100 * c > ClientErrorPercent * r)

Server errors keep Express's sensitivity (REDCap answers none when it is healthy; the image
answers 503 on every page when its configuration or database is wrong). Client errors count only
in a volume and share that REDCap's normal traffic does not reach (``ClientErrorPercent`` is set
from a pilot's measurement, ``python -m bench.canary_baseline``), so a release that breaks
routing (404 on every asset) still rolls back. The datapoints-to-alarm, evaluation periods,
missing-data treatment, actions and name of Express's alarm are kept: ECS keeps watching the same
alarm, only its metric math changes.

The alarm is Express's, so it is rewritten in place (``PutMetricAlarm`` on its name) rather than
replaced in the service's deployment configuration: CloudWatch is the one API certain to accept
the change on an Express-managed service. Express may put its own rule back when it updates the
service, so the rule is applied again after every CloudFormation update of the service (the
resource's ``ServiceRevision`` follows it) and when any deployment of the service starts (an
EventBridge rule invokes the same function within seconds, before the canary's first datapoint).
Delete puts Express's documented rule back on the alarms this resource rewrote. Every call is
safe to repeat: an alarm that already carries the wanted definition is not written.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.config import parse_from_env
from redcap_ctl.errors import ControlPlaneError, InputError

# No mypy_boto3 stubs for ECS and CloudWatch are pinned (requirements/dev.in): the clients are Any.
EcsClient = Any
CloudWatchClient = Any

logger = Logger(child=True)

NAMESPACE = "AWS/ApplicationELB"
# Written at the start of every description this module sets: how an alarm is known to be ours.
MARK = "redcap-ctl canary rule"
# Three metrics per target group and one expression: CloudWatch takes at most 10 items in an
# alarm's metric math, so at most three target groups.
MAX_SCOPES = 3
_GONE = ("ServiceNotFoundException", "ClusterNotFoundException")

Scope = tuple[tuple[str, str], ...]
# Metric-math ids and the target-group metrics they read: requests, server errors, client errors.
_COUNTS = (("r", "RequestCount"), ("e", "HTTPCode_Target_5XX_Count"), ("c", "HTTPCode_Target_4XX_Count"))


@dataclass(frozen=True)
class Rule:
    """When one datapoint of a canary breaches."""

    server_error_percent: float
    client_error_percent: float
    min_client_errors: int
    # Express's documented rule: 4xx and 5xx together against server_error_percent.
    combined: bool = False

    def breaches(self, requests: int, client: int, server: int) -> bool:
        """One datapoint's counts against the rule, in the alarm's own integer form (``condition``)."""
        if self.combined:
            return 100 * (server + client) > self.server_error_percent * requests
        return 100 * server > self.server_error_percent * requests or (
            client >= self.min_client_errors and 100 * client > self.client_error_percent * requests
        )

    def describe(self) -> str:
        if self.combined:
            return f"4xx + 5xx above {self.server_error_percent:g} % of requests"
        return (
            f"5xx above {self.server_error_percent:g} % of requests, or at least {self.min_client_errors} 4xx "
            f"above {self.client_error_percent:g} %"
        )


# What Express documents and what Delete puts back.
EXPRESS_DEFAULT = Rule(server_error_percent=1, client_error_percent=1, min_client_errors=0, combined=True)


@dataclass(frozen=True)
class Props:
    cluster: str
    service_arn: str
    rule: Rule
    # Names of the alarms Express manages for this service (ECSManagedResourceArns.MetricAlarms):
    # the only alarms this resource may write, in IAM and here.
    managed_alarms: frozenset[str] = frozenset()


def _percent(props: Mapping[str, Any], field: str) -> float:
    raw = props.get(field)
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise InputError(field, "must be a number of percent (0 < value <= 100)") from None
    if not math.isfinite(value) or not 0 < value <= 100:
        raise InputError(field, "must be a number of percent (0 < value <= 100)")
    return value


def parse_rule(props: Mapping[str, Any]) -> Rule:
    raw = str(props.get("MinClientErrors", "")).strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        raise InputError("MinClientErrors", "must be a whole number of responses from 1 to 10000")
    return Rule(
        server_error_percent=_percent(props, "ServerErrorPercent"),
        client_error_percent=_percent(props, "ClientErrorPercent"),
        min_client_errors=int(raw),
    )


def parse_managed_alarms(raw: Any) -> frozenset[str]:
    """``ManagedAlarmArns`` (a list, or comma-separated as in the environment) -> alarm names."""
    items = raw if isinstance(raw, list) else str(raw or "").split(",")
    names = set()
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        parts = item.split(":", 6)
        if len(parts) != 7 or parts[0] != "arn" or parts[2] != "cloudwatch" or parts[5] != "alarm" or not parts[6]:
            raise InputError("ManagedAlarmArns", "must list CloudWatch alarm ARNs (arn:...:cloudwatch:...:alarm:NAME)")
        names.add(parts[6])
    if not names:
        raise InputError("ManagedAlarmArns", "must list the alarms Express manages for the service (none given)")
    return frozenset(names)


def parse_props(props: Mapping[str, Any]) -> Props:
    cluster = str(props.get("Cluster", "")).strip()
    if not cluster:
        raise InputError("Cluster", "must name the ECS cluster of the Express service")
    service = str(props.get("ServiceArn", "")).strip()
    if not service.startswith("arn:") or ":ecs:" not in service or ":service/" not in service:
        raise InputError("ServiceArn", "must be an ECS service ARN")
    return Props(
        cluster=cluster,
        service_arn=service,
        rule=parse_rule(props),
        managed_alarms=parse_managed_alarms(props.get("ManagedAlarmArns")),
    )


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def deployment_alarm_names(ecs: EcsClient, cluster: str, service_arn: str) -> list[str] | None:
    """The alarms that roll back this service's deployments; None when the service is gone."""
    try:
        described = ecs.describe_services(cluster=cluster, services=[service_arn])
    except ClientError as err:
        if _code(err) in _GONE:
            return None
        raise
    services = [s for s in described.get("services", []) if s.get("status") != "INACTIVE"]
    if not services:
        return None
    alarms = services[0].get("deploymentConfiguration", {}).get("alarms") or {}
    if not alarms.get("enable"):
        return []
    return [str(n) for n in alarms.get("alarmNames", []) if n]


def _describe(cloudwatch: CloudWatchClient, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    pages = cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=list(names), AlarmTypes=["MetricAlarm"])
    for page in pages:
        for alarm in page.get("MetricAlarms", []):
            found[str(alarm["AlarmName"])] = alarm
    return found


def _scope(dimensions: Sequence[Mapping[str, Any]]) -> Scope:
    return tuple(sorted((str(d["Name"]), str(d["Value"])) for d in dimensions))


def load_balancer_scopes(alarm: Mapping[str, Any]) -> list[Scope]:
    """The load-balancer scopes an alarm's metrics watch: its target groups, else its load balancers.

    A load balancer's totals count only when no target group is named: Express shares one load
    balancer between the services of a VPC, so its totals are not this site's alone.
    """
    found: list[Scope] = []
    if alarm.get("Namespace") == NAMESPACE:
        found.append(_scope(alarm.get("Dimensions", [])))
    for item in alarm.get("Metrics", []):
        metric = item.get("MetricStat", {}).get("Metric", {})
        if metric.get("Namespace") == NAMESPACE:
            found.append(_scope(metric.get("Dimensions", [])))
    unique = sorted(set(found))
    with_group = [s for s in unique if any(name == "TargetGroup" for name, _ in s)]
    return with_group or [s for s in unique if any(name == "LoadBalancer" for name, _ in s)]


def scopes(alarm: Mapping[str, Any]) -> list[Scope]:
    """``load_balancer_scopes``, refused when there are none or more than an alarm's math holds."""
    chosen = load_balancer_scopes(alarm)
    if not chosen:
        raise ControlPlaneError(
            f"alarm {alarm.get('AlarmName')}: watches no Application Load Balancer metric, so REDCap's rule "
            "has nothing to count; set CanaryRollbackRule=ExpressDefault to leave Express's alarm alone"
        )
    if len(chosen) > MAX_SCOPES:
        raise ControlPlaneError(
            f"alarm {alarm.get('AlarmName')}: watches {len(chosen)} target groups, more than the {MAX_SCOPES} "
            "an alarm's metric math can hold; set CanaryRollbackRule=ExpressDefault to leave it alone"
        )
    return chosen


def _period(alarm: Mapping[str, Any]) -> int:
    for item in alarm.get("Metrics", []):
        period = item.get("MetricStat", {}).get("Period")
        if period:
            return int(period)
    return int(alarm.get("Period") or 60)


def _number(value: float) -> str:
    return f"{value:g}"


def condition(rule: Rule, index: int) -> str:
    """One target group's breach, written without division (no datapoint is lost to r = 0)."""
    r, e, c = f"FILL(r{index}, 0)", f"FILL(e{index}, 0)", f"FILL(c{index}, 0)"
    if rule.combined:
        return f"100 * ({e} + {c}) > {_number(rule.server_error_percent)} * {r}"
    return (
        f"(100 * {e} > {_number(rule.server_error_percent)} * {r} OR "
        f"({c} >= {rule.min_client_errors} AND 100 * {c} > {_number(rule.client_error_percent)} * {r}))"
    )


def definition(alarm: Mapping[str, Any], rule: Rule) -> dict[str, Any]:
    """``PutMetricAlarm`` arguments: ``alarm`` with ``rule`` as its metric math, all else kept."""
    watched = scopes(alarm)
    period = _period(alarm)
    metrics: list[dict[str, Any]] = []
    for index, scope in enumerate(watched):
        for prefix, name in _COUNTS:
            metrics.append(
                {
                    "Id": f"{prefix}{index}",
                    "ReturnData": False,
                    "MetricStat": {
                        "Metric": {
                            "Namespace": NAMESPACE,
                            "MetricName": name,
                            "Dimensions": [{"Name": k, "Value": v} for k, v in scope],
                        },
                        "Period": period,
                        "Stat": "Sum",
                    },
                }
            )
    breach = " OR ".join(condition(rule, i) for i in range(len(watched)))
    metrics.append(
        {"Id": "breach", "Expression": f"IF({breach}, 1, 0)", "Label": "canary breaches (1 = yes)", "ReturnData": True}
    )
    origin = "ECS Express's documented rule, put back by" if rule.combined else "REDCap's rule, set by"
    return {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": f"{MARK}: {origin} the REDCap stack. A datapoint breaches on {rule.describe()}.",
        "ActionsEnabled": bool(alarm.get("ActionsEnabled", True)),
        "OKActions": list(alarm.get("OKActions", [])),
        "AlarmActions": list(alarm.get("AlarmActions", [])),
        "InsufficientDataActions": list(alarm.get("InsufficientDataActions", [])),
        "EvaluationPeriods": int(alarm.get("EvaluationPeriods") or 3),
        "DatapointsToAlarm": int(alarm.get("DatapointsToAlarm") or alarm.get("EvaluationPeriods") or 2),
        "Threshold": 1.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": str(alarm.get("TreatMissingData") or "notBreaching"),
        "Metrics": metrics,
    }


def _current(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """The same fields as ``definition`` returns, as DescribeAlarms reports them."""
    keys = (
        "AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions",
        "EvaluationPeriods", "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData",
    )  # fmt: skip
    current = {k: alarm.get(k) for k in keys}
    current["Metrics"] = [
        {k: v for k, v in item.items() if k in ("Id", "ReturnData", "MetricStat", "Expression", "Label")}
        for item in alarm.get("Metrics", [])
    ]
    return current


def is_ours(alarm: Mapping[str, Any]) -> bool:
    return str(alarm.get("AlarmDescription", "")).startswith(MARK)


def _put(cloudwatch: CloudWatchClient, alarms: Mapping[str, Mapping[str, Any]], rule: Rule) -> None:
    for name, alarm in alarms.items():
        wanted = definition(alarm, rule)
        if _current(alarm) == wanted:
            logger.info("Canary alarm already carries the rule", extra={"alarm": name, "rule": rule.describe()})
            continue
        if not is_ours(alarm):
            # Express's own definition, kept in the log: Delete puts back its documented rule.
            logger.info("Canary alarm before the change", extra={"alarm": name, "definition": _current(alarm)})
        cloudwatch.put_metric_alarm(**wanted)
        logger.info("Canary alarm rule set", extra={"alarm": name, "rule": rule.describe()})


def apply(
    ecs: EcsClient,
    cloudwatch: CloudWatchClient,
    cluster: str,
    service_arn: str,
    rule: Rule,
    managed: Collection[str],
) -> list[str]:
    """Give every deployment alarm of the service ``rule``; returns their names.

    Only alarms Express manages for this service (``managed``, from the service's
    ``ECSManagedResourceArns.MetricAlarms``) are written: the IAM policy allows no other, and an
    alarm outside that list fails here with the reason instead of AccessDenied.
    """
    names = deployment_alarm_names(ecs, cluster, service_arn)
    if names is None:
        raise ControlPlaneError(f"ECS service {service_arn} not found in cluster {cluster}")
    if not names:
        # Nothing rolls this service back on an alarm, so nothing can trip on REDCap's 4xx.
        logger.warning("The service has no deployment alarm: nothing to set", extra={"service": service_arn})
        return []
    foreign = [n for n in names if n not in managed]
    if foreign:
        raise ControlPlaneError(
            f"rollback alarm {', '.join(foreign)} is not in the service's ECSManagedResourceArns.MetricAlarms, "
            "so the stack may not change it (CanaryRollbackRule=ExpressDefault keeps Express's rule)"
        )
    alarms = _describe(cloudwatch, names)
    missing = [n for n in names if n not in alarms]
    if missing:
        raise ControlPlaneError(f"deployment alarm {', '.join(missing)} of {service_arn} does not exist in CloudWatch")
    _put(cloudwatch, alarms, rule)
    return names


def restore(
    ecs: EcsClient, cloudwatch: CloudWatchClient, cluster: str, service_arn: str, managed: Collection[str]
) -> list[str]:
    """Put Express's documented rule back on the alarms that carry ours. A service that is gone is done."""
    names = [n for n in deployment_alarm_names(ecs, cluster, service_arn) or [] if n in managed]
    if not names:
        logger.info("Nothing to put back: the service or its alarms are gone", extra={"service": service_arn})
        return []
    ours = {name: alarm for name, alarm in _describe(cloudwatch, names).items() if is_ours(alarm)}
    _put(cloudwatch, ours, EXPRESS_DEFAULT)
    return sorted(ours)


# The function's environment carries the same rule for deployments that start outside CloudFormation.
ENV_FIELDS = {
    "Cluster": "EXPRESS_CLUSTER",
    "ServiceArn": "EXPRESS_SERVICE_ARN",
    "ServerErrorPercent": "CANARY_SERVER_ERROR_PERCENT",
    "ClientErrorPercent": "CANARY_CLIENT_ERROR_PERCENT",
    "MinClientErrors": "CANARY_MIN_CLIENT_ERRORS",
}


# A list in the custom resource's properties, comma-joined in the environment.
MANAGED_ALARMS_ENV = "EXPRESS_MANAGED_ALARMS"


def props_from_env(environ: Mapping[str, str]) -> Props:
    return parse_from_env(environ, {**ENV_FIELDS, "ManagedAlarmArns": MANAGED_ALARMS_ENV}, parse_props)
