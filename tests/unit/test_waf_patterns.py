from __future__ import annotations

import secrets
from typing import Any

import boto3
import pytest
from moto import mock_aws

from redcap_ctl import waf
from redcap_ctl.errors import ControlPlaneError, InputError
from testkit.waf_eval import check_pcre_subset, regex_search


def test_pattern_matches_only_its_value():
    value = "Ab-_9" * 8
    pattern = waf.pattern_for(value)
    assert waf.accepts([pattern], value)
    assert not waf.accepts([pattern], value + "x")
    assert not waf.accepts([pattern], "x" + value)
    assert not waf.accepts([pattern], value.lower())


def test_arn_parsing_names_the_field():
    ref = waf.PatternSetRef.from_arn(
        "arn:aws:wafv2:us-east-1:123456789012:regional/regexpatternset/cron/0b6e6c3e-1111-2222-3333-444455556666"
    )
    assert (ref.name, ref.scope) == ("cron", "REGIONAL")
    with pytest.raises(InputError, match="^CRON_PATTERN_SET_ARN:"):
        waf.PatternSetRef.from_arn("arn:aws:s3:::bucket")


@mock_aws
def test_accept_only_replaces_and_refuses_empty():
    client = boto3.client("wafv2", region_name="us-east-1")
    summary = client.create_regex_pattern_set(
        Name="cron", Scope="REGIONAL", RegularExpressionList=[{"RegexString": "^old$"}]
    )["Summary"]
    ref = waf.PatternSetRef.from_arn(summary["ARN"])
    waf.accept_only(client, ref, ["current-value", "pending-value"])
    assert waf.accepted(client, ref, "pending-value")
    assert not waf.accepted(client, ref, "old")
    with pytest.raises(ControlPlaneError):
        waf.accept_only(client, ref, [])


def test_rotated_values_make_patterns_waf_accepts_and_evaluates_literally():
    # What rotation writes: token_urlsafe values (43 characters of [A-Za-z0-9_-]), escaped.
    values = [secrets.token_urlsafe(32) for _ in range(200)] + ["-" * 43, "_" * 43, "-_" * 21 + "-"]
    for value in values:
        pattern = waf.pattern_for(value)
        assert len(pattern) <= 200  # WAF's RegexString limit
        check_pcre_subset(pattern)  # only backslash + non-alphanumeric: a literal in PCRE
        assert regex_search(pattern, value)
        assert not regex_search(pattern, value[:-1])
        assert not regex_search(pattern, value + "A")
        if "-" in value:  # the escape is not part of the value
            assert not regex_search(pattern, value.replace("-", "\\-", 1))


@mock_aws
def test_updates_keep_the_description(monkeypatch: pytest.MonkeyPatch) -> None:
    # Issue 13, finding 8: AWS's UpdateRegexPatternSet replaces the whole mutable spec, so an update
    # without Description clears it (drift after every rotation). moto keeps it, so moto is made to
    # behave as AWS does here, and the request itself is checked too.
    from moto.wafv2 import models

    original = models.FakeRegexPatternSet.update

    def aws_update(self: Any, description: str | None, regular_expressions: Any) -> None:
        original(self, description, regular_expressions)
        self.description = description

    monkeypatch.setattr(models.FakeRegexPatternSet, "update", aws_update)
    client = boto3.client("wafv2", region_name="us-east-1")
    summary = client.create_regex_pattern_set(
        Name="cron",
        Scope="REGIONAL",
        Description="Anchored cron header values WAF accepts - the key rotation function owns the list",
        RegularExpressionList=[{"RegexString": "^old$"}],
    )["Summary"]
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "before-parameter-build.wafv2.UpdateRegexPatternSet", lambda params, **_: sent.append(dict(params))
    )
    ref = waf.PatternSetRef.from_arn(summary["ARN"])
    waf.accept_only(client, ref, ["current-value", "pending-value"])
    waf.accept_only(client, ref, ["pending-value"])
    assert [s.get("Description") for s in sent] == [summary["Description"]] * 2
    got = client.get_regex_pattern_set(Name="cron", Scope="REGIONAL", Id=ref.id)["RegexPatternSet"]
    assert got["Description"] == summary["Description"]
