"""docs/cron-and-waf.md says what the web ACL's scope-down rules do; these tests tie the claims to template.yaml."""

from __future__ import annotations

import re
from typing import Any

from testkit import ROOT
from testkit.template import Rendered, defaults

DOC = (ROOT / "docs" / "cron-and-waf.md").read_text(encoding="utf-8")


def _rules() -> dict[str, dict[str, Any]]:
    return {r["Name"]: r for r in Rendered().props("WebAcl")["Rules"]}


def _exception_regex(rule: str) -> str:
    statements = _rules()[rule]["Statement"]["AndStatement"]["Statements"]
    (negated,) = [s["NotStatement"]["Statement"] for s in statements if "NotStatement" in s]
    return str(negated["RegexMatchStatement"]["RegexString"])


def test_the_documented_logic_endpoints_are_exactly_the_exception() -> None:
    regex = _exception_regex("BlockSqlInjectionOutsideLogic")
    match = re.search(r"Design/\(\?:([a-z_|]+)\)", regex)
    assert match, regex
    in_template = {f"Design/{name}.php" for name in match.group(1).split("|")}
    section = DOC.split("### REDCap's logic", 1)[1].split("\n### ", 1)[0]
    in_docs = set(re.findall(r"`(Design/[a-z_]+\.php)`", section))
    assert in_docs == in_template
    assert len(in_template) == 6


def test_the_documented_rate_limit_default_is_the_template_default() -> None:
    default = defaults()["WafRateLimit"]
    assert f"default **{default}** per 5 minutes" in DOC
    assert f"| `WafRateLimit` | `{default}` |" in DOC
    assert "| `RateLimitExemptCidrs` | empty |" in DOC


def test_the_documented_size_limit_is_the_managed_rule_and_its_label() -> None:
    statements = _rules()["BlockLargeBodyOutsideRedcap"]["Statement"]["AndStatement"]["Statements"]
    label = statements[0]["LabelMatchStatement"]["Key"]
    assert label == "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body"
    assert f"`{label}`" in DOC
    assert "8 KB\n(8,192 bytes" in DOC or "(8,192 bytes" in DOC
