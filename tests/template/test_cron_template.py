"""The cron caller, its schedule, the cron secret and WAF logging as template.yaml declares them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from redcap_ctl import cron
from testkit import load_event
from testkit.template import Rendered, load


def getatt(logical: str, attr: str = "Arn") -> dict[str, Any]:
    return {"Fn::GetAtt": [logical, attr]}


# --- schedule -------------------------------------------------------------------
def test_schedule_every_minute_without_retries_and_with_a_dlq() -> None:
    props = Rendered().props("CronSchedule")

    assert props["ScheduleExpression"] == "rate(1 minute)"
    assert props["State"] == "ENABLED"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = props["Target"]
    assert target["Arn"] == getatt("CronCallerFunction")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    assert target["DeadLetterConfig"]["Arn"] == getatt("CronDeadLetterQueue")
    assert target["RoleArn"] == getatt("CronSchedulerRole")


@pytest.mark.parametrize(("minutes", "expression"), [(2, "rate(2 minutes)"), (15, "rate(15 minutes)")])
def test_schedule_follows_cron_minutes(minutes: int, expression: str) -> None:
    props = Rendered(CronMinutes=minutes).props("CronSchedule")
    rendered = props["ScheduleExpression"]
    assert rendered == {"Fn::Sub": "rate(${CronMinutes} minutes)"}
    assert rendered["Fn::Sub"].replace("${CronMinutes}", str(minutes)) == expression
    assert props["State"] == "ENABLED"


def test_cron_minutes_zero_disables_the_schedule() -> None:
    props = Rendered(CronMinutes=0).props("CronSchedule")
    assert props["State"] == "DISABLED"
    assert props["ScheduleExpression"] == "rate(1 minute)"  # still valid, so the update succeeds


def test_schedule_input_is_what_the_event_file_holds() -> None:
    template_input = json.loads(Rendered().props("CronSchedule")["Target"]["Input"])
    event = load_event("cron_caller", "scheduled.json")
    assert set(template_input) == set(event)
    assert template_input["scheduledTime"] == "<aws.scheduler.scheduled-time>"


def test_schedule_waits_for_the_log_group() -> None:
    assert "CronCallerLogGroup" in str(Rendered().resource("CronSchedule").get("DependsOn"))


# --- function ---------------------------------------------------------------------
def test_function_never_retries_and_reserves_concurrency_only_when_asked() -> None:
    # Issue 13, finding 6: a reservation fails deploys in accounts at the unreserved minimum (new accounts).
    assert "ReservedConcurrentExecutions" not in Rendered().props("CronCallerFunction")
    assert Rendered(CronReservedConcurrency="true").props("CronCallerFunction")["ReservedConcurrentExecutions"] == 1
    props = Rendered().props("CronCallerFunction")
    assert props["CodeUri"] == "functions/cron_caller/"
    assert props["Handler"] == "app.handler"
    assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    # throttled (overlapping) ticks are dropped, not queued for hours
    assert props["EventInvokeConfig"]["MaximumEventAgeInSeconds"] <= 120


def test_function_environment() -> None:
    variables = Rendered().props("CronCallerFunction")["Environment"]["Variables"]
    assert variables["CRON_URL"] == {"Fn::Sub": "https://${AppRunnerService.ServiceUrl}/cron.php"}
    assert variables["CRON_SECRET_ARN"] == {"Ref": "CronSecret"}
    assert variables["CRON_HEADER_NAME"] == "x-redcap-cron-secret"
    assert variables["CRON_TIMEOUT_SECONDS"] == 100
    assert variables["POWERTOOLS_SERVICE_NAME"] == "cron-caller"
    # what the template writes is what the code accepts
    assert cron.parse_cron_url("https://abc.us-east-1.awsapprunner.com/cron.php")


def test_timeouts_fit_app_runner_and_the_lambda() -> None:
    template = load()
    timeout_param = template["Parameters"]["CronTimeoutSeconds"]
    assert timeout_param["MaxValue"] < 120
    assert timeout_param["MaxValue"] == cron.MAX_TIMEOUT_SECONDS
    assert cron.parse_timeout(str(timeout_param["MaxValue"])) == timeout_param["MaxValue"]
    function_timeout = Rendered().props("CronCallerFunction")["Timeout"]
    # a 403, a fresh secret and one retry that waits the full client timeout
    worst = 2 * (timeout_param["MaxValue"] + cron.CONNECT_TIMEOUT_SECONDS) + 10
    assert function_timeout >= worst


def test_function_reads_only_its_own_secret() -> None:
    statements = Rendered().function_statements("CronCallerFunction")
    secret = [s for s in statements if "secretsmanager:GetSecretValue" in str(s["Action"])]
    assert [s["Resource"] for s in secret] == [{"Ref": "CronSecret"}]
    assert all(s["Resource"] != "*" for s in statements)


def test_function_log_group_has_retention_and_kms() -> None:
    props = Rendered().props("CronCallerLogGroup")
    # Its own name (not /aws/lambda/<function>): the execution role writes only here (issue 13, finding 9).
    assert props["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}/CronCallerFunction"}
    assert Rendered().props("CronCallerFunction")["LoggingConfig"] == {"LogGroup": {"Ref": "CronCallerLogGroup"}}
    assert props["RetentionInDays"] == 365
    assert props["KmsKeyId"] == getatt("KmsKey")


# --- dead-letter queue and alarms -------------------------------------------------
def test_dead_letter_queue_is_encrypted_and_writable_by_the_scheduler_only() -> None:
    rendered = Rendered()
    assert rendered.props("CronDeadLetterQueue")["KmsMasterKeyId"] == getatt("KmsKey")
    statements = rendered.props("CronSchedulerRole")["Policies"][0]["PolicyDocument"]["Statement"]
    send = [s for s in statements if s["Action"] == "sqs:SendMessage"]
    assert [s["Resource"] for s in send] == [getatt("CronDeadLetterQueue")]


def test_failure_alarm_three_of_five_ticks_to_the_topic() -> None:
    props = Rendered().props("CronFailureAlarm")
    assert (props["Namespace"], props["MetricName"]) == ("AWS/Lambda", "Errors")
    assert props["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "CronCallerFunction"}}]
    assert (props["DatapointsToAlarm"], props["EvaluationPeriods"]) == (3, 5)
    assert props["Threshold"] == 1
    assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert props["AlarmActions"] == [{"Ref": "NotificationTopic"}]
    assert period_seconds(Rendered()) == 60
    assert period_seconds(Rendered(CronMinutes=15)) == 900  # still "3 of the last 5 calls"


def period_seconds(rendered: Rendered) -> int:
    mapping_name, key, attr = rendered.props("CronFailureAlarm")["Period"]["Fn::FindInMap"]
    return int(rendered.template["Mappings"][mapping_name][str(key)][attr])


def test_alarm_period_is_one_tick_for_every_allowed_cron_minutes() -> None:
    template = load()
    mapping = template["Mappings"]["CronAlarmPeriod"]
    for minutes in template["Parameters"]["CronMinutes"]["AllowedValues"]:
        assert mapping[str(minutes)]["Seconds"] == 60 * max(1, int(minutes))


def test_dead_letter_alarm() -> None:
    props = Rendered().props("CronDeadLetterAlarm")
    assert props["Dimensions"] == [{"Name": "QueueName", "Value": getatt("CronDeadLetterQueue", "QueueName")}]
    assert props["AlarmActions"] == [{"Ref": "NotificationTopic"}]


# --- secret and pattern set -----------------------------------------------------
def test_cron_secret_is_generated_url_safe_and_encrypted() -> None:
    props = Rendered().props("CronSecret")
    generate = props["GenerateSecretString"]
    assert generate["PasswordLength"] >= 32
    assert generate["ExcludePunctuation"] is True
    assert generate.get("IncludeSpace") is False
    assert "SecretStringTemplate" not in generate  # the whole SecretString is the header value
    assert "SecretString" not in props
    assert props["KmsKeyId"] == getatt("KmsKey")
    assert "CronSecret" not in load()["Parameters"]  # nobody types it


def test_pattern_set_starts_from_the_secret_by_reference() -> None:
    props = Rendered().props("CronHeaderPatternSet")
    assert props["Scope"] == "REGIONAL"
    assert props["RegularExpressionList"] == [{"Fn::Sub": "^{{resolve:secretsmanager:${CronSecret}}}$"}]


# --- WAF association and logging ----------------------------------------------------
def test_web_acl_is_regional_and_associated_with_the_service() -> None:
    rendered = Rendered()
    assert rendered.props("WebAcl")["Scope"] == "REGIONAL"
    assoc = rendered.props("WebAclAssociation")
    assert assoc == {"ResourceArn": getatt("AppRunnerService", "ServiceArn"), "WebACLArn": getatt("WebAcl")}


def test_waf_logging_redacts_secret_bearing_headers() -> None:
    rendered = Rendered()
    logging_props = rendered.props("WafLogging")
    assert logging_props["ResourceArn"] == getatt("WebAcl")
    redacted = [f["SingleHeader"]["Name"] for f in logging_props["RedactedFields"]]
    assert sorted(redacted) == ["authorization", "cookie", "x-redcap-cron-secret"]
    assert all(name == name.lower() for name in redacted)  # WAF matches header names in lower case
    (destination,) = logging_props["LogDestinationConfigs"]
    assert destination["Fn::Sub"].endswith(":log-group:${WafLogGroup}")
    group = rendered.props("WafLogGroup")
    assert group["LogGroupName"] == {"Fn::Sub": "aws-waf-logs-${AWS::StackName}"}
    assert group["KmsKeyId"] == getatt("KmsKey")


def test_redaction_follows_a_custom_header_name() -> None:
    rendered = Rendered(CronHeaderName="x-other-cron")
    redacted = [f["SingleHeader"]["Name"] for f in rendered.props("WafLogging")["RedactedFields"]]
    assert sorted(redacted) == ["authorization", "cookie", "x-other-cron"]
    assert rendered.props("CronCallerFunction")["Environment"]["Variables"]["CRON_HEADER_NAME"] == "x-other-cron"
    # the header WAF checks is the header whose value is redacted
    rules = {r["Name"]: r for r in rendered.props("WebAcl")["Rules"]}
    statements = rules["AllowCronWithAcceptedHeader"]["Statement"]["AndStatement"]["Statements"]
    (checked,) = [s for s in statements if "RegexPatternSetReferenceStatement" in s]
    field = checked["RegexPatternSetReferenceStatement"]["FieldToMatch"]
    assert field == {"SingleHeader": {"Name": "x-other-cron"}}


def test_redaction_is_written_from_the_parameter() -> None:
    raw = load()["Resources"]["WafLogging"]["Properties"]["RedactedFields"]
    assert {"SingleHeader": {"Name": {"Ref": "CronHeaderName"}}} in raw


def test_requests_carrying_the_secret_are_not_sampled() -> None:
    """Sampled requests keep all headers; the logging redaction does not apply to them."""
    rules = {r["Name"]: r for r in Rendered().props("WebAcl")["Rules"]}
    for name in ("AllowCronWithAcceptedHeader", "BlockCron"):
        visibility = rules[name]["VisibilityConfig"]
        assert visibility["SampledRequestsEnabled"] is False, name
        assert visibility["CloudWatchMetricsEnabled"] is True, name  # counts stay visible


# --- exactly one caller ----------------------------------------------------------------
def refers_to(node: Any, logical: str) -> bool:
    if isinstance(node, dict):
        if node.get("Ref") == logical or node.get("Fn::GetAtt", [None])[0] == logical:
            return True
        return any(refers_to(v, logical) for v in node.values())
    if isinstance(node, list):
        return any(refers_to(v, logical) for v in node)
    return False


@pytest.mark.parametrize("minutes", [0, 1, 5])
def test_exactly_one_caller_however_many_instances_run(minutes: int) -> None:
    rendered = Rendered(CronMinutes=minutes)
    resources = rendered.resources
    # one schedule invokes the function, nothing else triggers it
    triggers = [
        name
        for name, res in resources.items()
        if res["Type"] in ("AWS::Scheduler::Schedule", "AWS::Events::Rule", "AWS::Lambda::EventSourceMapping")
        and refers_to(res.get("Properties", {}), "CronCallerFunction")
    ]
    assert triggers == ["CronSchedule"]
    assert not rendered.props("CronCallerFunction").get("Events")
    permissions = [
        res
        for res in resources.values()
        if res["Type"] == "AWS::Lambda::Permission" and refers_to(res.get("Properties", {}), "CronCallerFunction")
    ]
    assert permissions == []  # the scheduler uses its role, nobody gets a resource-policy grant
    # No retries and a short event age: a tick is never run late. One execution at a time is
    # certain only with CronReservedConcurrency=true (then an overlapping tick is throttled and
    # dropped); without it REDCap's cron.php keeps jobs apart itself (docs/cron-and-waf.md).
    props = rendered.props("CronCallerFunction")
    assert (
        Rendered(CronMinutes=minutes, CronReservedConcurrency="true").props("CronCallerFunction")[
            "ReservedConcurrentExecutions"
        ]
        == 1
    )
    assert props["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    assert rendered.props("CronSchedule")["Target"]["RetryPolicy"]["MaximumRetryAttempts"] == 0
    # not the old API-destination approach, and nothing in the REDCap service calls cron itself
    assert not [
        n for n, r in resources.items() if r["Type"] in ("AWS::Events::ApiDestination", "AWS::Events::Connection")
    ]
    cron_urls = re.compile(r"https?://[^\"]*/cron\.php")
    callers = [n for n, r in resources.items() if cron_urls.search(json.dumps(r.get("Properties", {})))]
    assert callers == ["CronCallerFunction"]


# --- web ACL shape per parameters -----------------------------------------------------
def rule_names(rendered: Rendered) -> list[str]:
    return [r["Name"] for r in rendered.props("WebAcl")["Rules"]]


def test_allowlists_off_by_default() -> None:
    rendered = Rendered()
    assert "IpAllowlist" not in rule_names(rendered)
    assert "CountryAllowlist" not in rule_names(rendered)
    # only REDCap's own NAT addresses (its Configuration Check, issue 13 finding 10)
    assert set(rendered.of_type("AWS::WAFv2::IPSet")) == {"WafRedcapEgressIpSet"}


def test_allowlists_on() -> None:
    rendered = Rendered(AllowedCidrs="203.0.113.0/24", AllowedCountries="US", AdminCidrs="198.51.100.0/24")
    assert {"IpAllowlist", "CountryAllowlist"} <= set(rule_names(rendered))
    assert set(rendered.of_type("AWS::WAFv2::IPSet")) == {"WafAdminIpSet", "WafAllowedIpSet", "WafRedcapEgressIpSet"}
    assert rendered.props("WafAllowedIpSet")["Addresses"] == {"Fn::Split": [",", "203.0.113.0/24"]}


def test_rule_priorities_are_unique_and_cron_allow_precedes_allowlists() -> None:
    rules = Rendered(AllowedCidrs="203.0.113.0/24", AllowedCountries="US").props("WebAcl")["Rules"]
    priorities = {r["Name"]: r["Priority"] for r in rules}
    assert len(set(priorities.values())) == len(rules)
    assert priorities["AllowCronWithAcceptedHeader"] < priorities["BlockCron"]
    for later in ("RateLimitPerIp", "IpAllowlist", "CountryAllowlist", "AWSManagedRulesAmazonIpReputationList"):
        assert priorities["AllowCronWithAcceptedHeader"] < priorities[later]


def test_managed_groups_and_the_rules_set_to_count() -> None:
    rules = Rendered().props("WebAcl")["Rules"]
    groups = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"]: r["Statement"]["ManagedRuleGroupStatement"]
        for r in rules
        if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert set(groups) == {
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
    }
    counted = {
        (name, o["Name"])
        for name, g in groups.items()
        for o in g.get("RuleActionOverrides", [])
        if "Count" in o["ActionToUse"]
    }
    assert counted == {
        ("AWSManagedRulesCommonRuleSet", "SizeRestrictions_BODY"),
        ("AWSManagedRulesCommonRuleSet", "CrossSiteScripting_BODY"),
        ("AWSManagedRulesCommonRuleSet", "GenericRFI_BODY"),
        ("AWSManagedRulesSQLiRuleSet", "SQLi_BODY"),
        # counted, and enforced by BlockNoUserAgent on its label (REDCap's Configuration Check excepted)
        ("AWSManagedRulesCommonRuleSet", "NoUserAgent_HEADER"),
        # counted, and enforced by BlockSqlInjectionOutsideLogic on their labels (REDCap's logic endpoints
        # excepted; issue 18 item 7)
        ("AWSManagedRulesSQLiRuleSet", "SQLi_QUERYARGUMENTS"),
        ("AWSManagedRulesSQLiRuleSet", "SQLiExtendedPatterns_QUERYARGUMENTS"),
        ("AWSManagedRulesSQLiRuleSet", "SQLiExtendedPatterns_BODY"),
    }
    by_name = {r["Name"]: r for r in rules}
    label = by_name["BlockNoUserAgent"]["Statement"]["AndStatement"]["Statements"][0]["LabelMatchStatement"]
    assert label == {"Scope": "LABEL", "Key": "awswaf:managed:aws:core-rule-set:NoUserAgent_Header"}
    assert by_name["BlockNoUserAgent"]["Priority"] > by_name["AWSManagedRulesCommonRuleSet"]["Priority"]
    # group overrides stay None: a whole group never silently becomes Count
    assert all(r["OverrideAction"] == {"None": {}} for r in rules if "ManagedRuleGroupStatement" in r["Statement"])


def test_rate_rule_uses_the_parameter() -> None:
    rules = {r["Name"]: r for r in Rendered(WafRateLimit=500).props("WebAcl")["Rules"]}
    statement = rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]
    assert statement == {"Limit": 500, "EvaluationWindowSec": 300, "AggregateKeyType": "IP"}


def test_rate_limit_exemption_is_a_scope_down_on_its_own_ip_set() -> None:
    # Issue 19 item 4: a campus behind one NAT address can be exempted from the per-IP limit only.
    assert "WafRateExemptIpSet" not in Rendered().resources
    rendered = Rendered(RateLimitExemptCidrs="198.51.100.0/24,203.0.113.9/32")
    ip_set = rendered.props("WafRateExemptIpSet")
    assert ip_set["Addresses"] == {"Fn::Split": [",", "198.51.100.0/24,203.0.113.9/32"]}
    assert (ip_set["Scope"], ip_set["IPAddressVersion"]) == ("REGIONAL", "IPV4")
    rules = {r["Name"]: r for r in rendered.props("WebAcl")["Rules"]}
    statement = rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]
    assert statement["ScopeDownStatement"] == {
        "NotStatement": {"Statement": {"IPSetReferenceStatement": {"Arn": getatt("WafRateExemptIpSet")}}}
    }
    # The exemption is only in the rate rule: no other rule references the set.
    others = [r for name, r in rules.items() if name != "RateLimitPerIp"]
    assert "WafRateExemptIpSet" not in json.dumps(others)


def test_scope_down_rules_follow_the_groups_whose_labels_they_read() -> None:
    rules = {r["Name"]: r for r in Rendered().props("WebAcl")["Rules"]}
    for rule, group in (
        ("BlockSqlInjectionOutsideLogic", "AWSManagedRulesSQLiRuleSet"),
        ("BlockLargeBodyOutsideRedcap", "AWSManagedRulesCommonRuleSet"),
    ):
        # A rule only sees labels added by rules evaluated before it (WAF Developer Guide, "Web request labeling").
        assert rules[rule]["Priority"] > rules[group]["Priority"], rule
        assert rules[rule]["Action"] == {"Block": {}}
