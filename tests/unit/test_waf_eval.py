"""The evaluator's rule semantics on small hand-written web ACLs (independent of template.yaml)."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.waf_eval import Request, WebAclEvaluator, check_pcre_subset, regex_search

NONE = [{"Priority": 0, "Type": "NONE"}]


class FakeRendered:
    """Just enough of testkit.template.Rendered for the evaluator."""

    def __init__(self, acl: dict[str, Any], resources: dict[str, dict[str, Any]] | None = None) -> None:
        self.params: dict[str, Any] = {}
        self.resources = {"WebAcl": {"Properties": acl}, **(resources or {})}

    def props(self, name: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[name]["Properties"]
        return props


def acl(*rules: dict[str, Any], default: str = "Allow") -> dict[str, Any]:
    return {"DefaultAction": {default: {}}, "Rules": list(rules)}


def rule(name: str, priority: int, statement: dict[str, Any], action: str = "Block", **extra: Any) -> dict[str, Any]:
    return {"Name": name, "Priority": priority, "Action": {action: {}}, "Statement": statement, **extra}


def byte(search: str, constraint: str, field: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "ByteMatchStatement": {
            "SearchString": search,
            "PositionalConstraint": constraint,
            "FieldToMatch": field or {"UriPath": {}},
            "TextTransformations": NONE,
        }
    }


def evaluate(web_acl: dict[str, Any], request: Request, **resources: dict[str, Any]) -> tuple[str, str | None]:
    decision = WebAclEvaluator(FakeRendered(web_acl, resources), secrets={}).evaluate(request)  # type: ignore[arg-type]
    return decision.action, decision.rule


@pytest.mark.parametrize(
    ("constraint", "search", "path", "matches"),
    [
        ("EXACTLY", "/a", "/a", True),
        ("EXACTLY", "/a", "/a/", False),
        ("STARTS_WITH", "/temp/", "/temp/x", True),
        ("STARTS_WITH", "/temp/", "/x/temp/", False),
        ("ENDS_WITH", ".php", "/cron.php", True),
        ("CONTAINS", "cron", "/x/cron.php", True),
        ("CONTAINS_WORD", "cron", "/x/cron.php", True),
        ("CONTAINS_WORD", "cron", "/x/cronjob", False),
        ("CONTAINS_WORD", "cron", "/x/my_cron", False),
    ],
)
def test_byte_match_positional_constraints(constraint, search, path, matches):
    result = evaluate(acl(rule("r", 0, byte(search, constraint))), Request(path))
    assert result == (("BLOCK", "r") if matches else ("ALLOW", None))


def test_priority_order_not_list_order():
    web_acl = acl(rule("block", 5, byte("/a", "EXACTLY")), rule("allow", 1, byte("/a", "EXACTLY"), action="Allow"))
    assert evaluate(web_acl, Request("/a")) == ("ALLOW", "allow")


def test_count_continues_and_labels_feed_later_rules():
    web_acl = acl(
        rule("count", 0, byte("/a", "STARTS_WITH"), action="Count", RuleLabels=[{"Name": "x:seen"}]),
        rule("by-label", 1, {"LabelMatchStatement": {"Scope": "LABEL", "Key": "x:seen"}}),
    )
    assert evaluate(web_acl, Request("/a/b")) == ("BLOCK", "by-label")
    assert evaluate(web_acl, Request("/b")) == ("ALLOW", None)


def test_default_action_block():
    assert evaluate(acl(default="Block"), Request("/")) == ("BLOCK", None)


def test_missing_header_does_not_match_but_its_negation_does():
    header = {"SingleHeader": {"Name": "x-h"}}
    positive = acl(rule("r", 0, byte("v", "EXACTLY", header)))
    negative = acl(rule("r", 0, {"NotStatement": {"Statement": byte("v", "EXACTLY", header)}}))
    assert evaluate(positive, Request("/")) == ("ALLOW", None)
    assert evaluate(negative, Request("/")) == ("BLOCK", "r")
    assert evaluate(positive, Request("/", headers={"X-H": "v"})) == ("BLOCK", "r")  # names are case-insensitive


def test_or_and_ip_sets_and_geo():
    ip_set = {"Properties": {"Addresses": ["10.0.0.0/8"]}}
    statement = {
        "OrStatement": {
            "Statements": [
                {"IPSetReferenceStatement": {"Arn": {"Fn::GetAtt": ["Ips", "Arn"]}}},
                {"GeoMatchStatement": {"CountryCodes": ["FR"]}},
            ]
        }
    }
    web_acl = acl(rule("r", 0, statement))
    assert evaluate(web_acl, Request("/", ip="10.1.2.3"), Ips=ip_set) == ("BLOCK", "r")
    assert evaluate(web_acl, Request("/", country="FR"), Ips=ip_set) == ("BLOCK", "r")
    assert evaluate(web_acl, Request("/", ip="192.0.2.1", country="US"), Ips=ip_set) == ("ALLOW", None)


def test_managed_group_overrides():
    group = {
        "Name": "G",
        "Priority": 0,
        "OverrideAction": {"None": {}},
        "Statement": {
            "ManagedRuleGroupStatement": {
                "VendorName": "AWS",
                "Name": "G",
                "RuleActionOverrides": [{"Name": "soft", "ActionToUse": {"Count": {}}}],
            }
        },
    }
    assert evaluate(acl(group), Request("/", managed=frozenset({("G", "soft")}))) == ("ALLOW", None)
    assert evaluate(acl(group), Request("/", managed=frozenset({("G", "hard")}))) == ("BLOCK", "G")
    counted_group = {**group, "OverrideAction": {"Count": {}}}
    assert evaluate(acl(counted_group), Request("/", managed=frozenset({("G", "hard")}))) == ("ALLOW", None)


def test_a_counted_managed_rule_labels_the_request_for_later_rules():
    common = {
        "Name": "AWSManagedRulesCommonRuleSet",
        "Priority": 0,
        "OverrideAction": {"None": {}},
        "Statement": {
            "ManagedRuleGroupStatement": {
                "VendorName": "AWS",
                "Name": "AWSManagedRulesCommonRuleSet",
                "RuleActionOverrides": [{"Name": "NoUserAgent_HEADER", "ActionToUse": {"Count": {}}}],
            }
        },
    }
    label = {"LabelMatchStatement": {"Scope": "LABEL", "Key": "awswaf:managed:aws:core-rule-set:NoUserAgent_Header"}}
    web_acl = acl(common, rule("by-label", 1, label))
    no_ua = Request("/", managed=frozenset({("AWSManagedRulesCommonRuleSet", "NoUserAgent_HEADER")}))
    assert evaluate(web_acl, no_ua) == ("BLOCK", "by-label")
    assert evaluate(web_acl, Request("/")) == ("ALLOW", None)


def test_unmodelled_statement_raises():
    with pytest.raises(NotImplementedError):
        evaluate(acl(rule("r", 0, {"SizeConstraintStatement": {}})), Request("/"))


# --- regular expressions: only where PCRE (WAF) and Python agree ------------------------
@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("^Ab\\-c_9$", "Ab-c_9", True),  # pattern_for's escaped '-' is a literal '-' in PCRE
        ("^Ab\\-c_9$", "Abxc_9", False),
        ("^\\-_x$", "-_x", True),  # a token_urlsafe value may start with '-' or '_'
        ("^a$", "a\n", True),  # PCRE's $ also matches before a final newline, like Python's
        ("^(?:/\\.\\.)*/(?:temp|edocs)(?:/|$)", "/../temp/x", True),
        ("^(?:/\\.\\.)*/(?:temp|edocs)(?:/|$)", "/temporary", False),
        ("^\\w+$", "caf\u00e9", False),  # \w is ASCII in PCRE without UCP
    ],
)
def test_regex_search_follows_pcre(pattern: str, value: str, matches: bool) -> None:
    assert regex_search(pattern, value) is matches


@pytest.mark.parametrize(
    "pattern",
    ["^a\\Z", "^(?:a)\\1$", "(?P<x>a)", "(?i)a", "(?<=a)b", "(?>a)", "a*+", "a++", "\\Aa", "[]a]"],
)
def test_regex_outside_the_modelled_subset_is_refused(pattern: str) -> None:
    with pytest.raises(NotImplementedError):
        check_pcre_subset(pattern)


def test_pattern_set_entries_go_through_the_pcre_check() -> None:
    web_acl = acl(
        rule(
            "r",
            0,
            {
                "RegexPatternSetReferenceStatement": {
                    "Arn": {"Fn::GetAtt": ["Set", "Arn"]},
                    "FieldToMatch": {"SingleHeader": {"Name": "x-h"}},
                    "TextTransformations": NONE,
                }
            },
        )
    )
    ok = {"Set": {"Properties": {"RegularExpressionList": ["^v\\-1$"]}}}
    assert evaluate(web_acl, Request("/", headers={"x-h": "v-1"}), **ok) == ("BLOCK", "r")
    assert evaluate(web_acl, Request("/", headers={"x-h": "v\\-1"}), **ok) == ("ALLOW", None)
    bad = {"Set": {"Properties": {"RegularExpressionList": ["^v\\Z"]}}}
    with pytest.raises(NotImplementedError):
        evaluate(web_acl, Request("/", headers={"x-h": "v"}), **bad)


@pytest.mark.parametrize("pattern", ["^(a|b)$", "^/(?:x)(y)$"])
def test_capturing_groups_are_refused_as_waf_documents(pattern: str) -> None:
    with pytest.raises(ValueError, match="capturing group"):
        regex_search(pattern, "a")
