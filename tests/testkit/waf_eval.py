"""Evaluate the web ACL in ``template.yaml`` the way AWS WAF documents it.

The rules are read as written (through :class:`testkit.template.Rendered`, so
Conditions and ``Fn::If`` are resolved for the parameters under test), and a
request is run through them:

* Rules in ``Priority`` order. ``Allow``/``Block`` terminate; ``Count`` records
  the match (and its labels) and goes on; no terminating match -> the web ACL's
  ``DefaultAction``.
* A statement that inspects a component the request does not have (a missing
  header) does not match; ``NotStatement`` of it does.
* Text transformations run in ``Priority`` order before the match, with the
  semantics of the WAF Developer Guide (which follow ModSecurity's ``t:``
  functions): ``URL_DECODE`` decodes ``%XX`` (an invalid escape stays as it is)
  and ``+`` to a space; ``URL_DECODE_UNI`` also ``%uXXXX`` (full-width
  FF01-FF5E mapped to ASCII, otherwise only the lower byte kept);
  ``NORMALIZE_PATH`` removes multiple slashes, ``.`` segments and ``..``
  back-references that are not at the beginning; ``NORMALIZE_PATH_WIN`` first
  turns ``\\`` into ``/``; ``LOWERCASE`` only A-Z; ``COMPRESS_WHITE_SPACE``
  turns \\f \\t \\n \\r \\v and NBSP (160) into spaces and collapses runs of
  spaces. Anything else raises, so a template change cannot silently be
  evaluated wrong.
* Managed rule groups are opaque: a request says which of their rules would
  match it (``Request.managed``); ``RuleActionOverrides`` and ``OverrideAction``
  are then applied as WAF does, and each matching rule listed in
  ``MANAGED_LABELS`` adds its documented label for the rules after it, counted
  or not (a rule the web ACL matches labels of must be listed there). Rate-based rules match when the request's
  address is in ``Request.rate_limited``-style state given to the evaluator.

Regular expressions (``RegexString`` and pattern-set entries) are PCRE in WAF.
Each one is first checked to stay inside the subset where PCRE and Python's
``re`` (run with ``re.ASCII``, as PCRE without UCP) mean the same thing: a
backslash before a non-alphanumeric character is that character literally in
both (which is all ``redcap_ctl.waf.pattern_for`` produces: backslash-dash for
the ``-`` of a ``secrets.token_urlsafe`` value), backslash d/w/s/b and their
negations agree, and ``$`` matches at the end or before a final newline in
both. Anything else (``(?...)`` groups, other letter escapes, backreferences,
possessive quantifiers, which WAF also refuses) raises instead of being guessed at;
capturing groups raise too, since WAF documents them as unsupported.

Values WAF keeps outside the template are supplied by the test: the secrets
that ``{{resolve:secretsmanager:...}}`` references stand for, and the current
content of a regex pattern set after a rotation changed it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from testkit.template import Rendered

_DYNAMIC_REF = re.compile(r"\{\{resolve:secretsmanager:\x00([A-Za-z0-9]+)\x00\}\}")
_SUB_VAR = re.compile(r"\$\{([^}!]+)\}")
_HEX = "0123456789abcdefABCDEF"


# Labels the AWS managed rules add when they match (AWS WAF Developer Guide, managed rule groups list).
MANAGED_LABELS: dict[tuple[str, str], str] = {
    ("AWSManagedRulesAmazonIpReputationList", "AWSManagedIPReputationList"): (
        "awswaf:managed:aws:amazon-ip-list:AWSManagedIPReputationList"
    ),
    ("AWSManagedRulesCommonRuleSet", "NoUserAgent_HEADER"): "awswaf:managed:aws:core-rule-set:NoUserAgent_Header",
    ("AWSManagedRulesCommonRuleSet", "SizeRestrictions_BODY"): "awswaf:managed:aws:core-rule-set:SizeRestrictions_Body",
    ("AWSManagedRulesCommonRuleSet", "CrossSiteScripting_BODY"): (
        "awswaf:managed:aws:core-rule-set:CrossSiteScripting_Body"
    ),
    ("AWSManagedRulesCommonRuleSet", "CrossSiteScripting_QUERYARGUMENTS"): (
        "awswaf:managed:aws:core-rule-set:CrossSiteScripting_QueryArguments"
    ),
    ("AWSManagedRulesCommonRuleSet", "GenericRFI_BODY"): "awswaf:managed:aws:core-rule-set:GenericRFI_Body",
    ("AWSManagedRulesKnownBadInputsRuleSet", "Log4JRCE_HEADER"): (
        "awswaf:managed:aws:known-bad-inputs:Log4JRCE_Header"
    ),
    ("AWSManagedRulesSQLiRuleSet", "SQLi_BODY"): "awswaf:managed:aws:sql-database:SQLi_Body",
    ("AWSManagedRulesSQLiRuleSet", "SQLi_QUERYARGUMENTS"): "awswaf:managed:aws:sql-database:SQLi_QueryArguments",
    ("AWSManagedRulesSQLiRuleSet", "SQLiExtendedPatterns_QUERYARGUMENTS"): (
        "awswaf:managed:aws:sql-database:SQLiExtendedPatterns_QueryArguments"
    ),
    ("AWSManagedRulesSQLiRuleSet", "SQLiExtendedPatterns_BODY"): (
        "awswaf:managed:aws:sql-database:SQLiExtendedPatterns_Body"
    ),
}


@dataclass(frozen=True)
class Request:
    path: str
    query: str = ""
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    ip: str = "192.0.2.10"
    country: str = "US"
    body: str = ""
    # (group name, rule name) pairs the AWS managed rule groups would match.
    managed: frozenset[tuple[str, str]] = frozenset()

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class Decision:
    action: str  # "ALLOW" or "BLOCK"
    rule: str | None  # terminating rule, None for the default action
    counted: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


# --- text transformations ---------------------------------------------------
def url_decode(value: str, *, unicode: bool = False) -> str:
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch == "%":
            if unicode and i + 6 <= n and value[i + 1] in "uU" and all(c in _HEX for c in value[i + 2 : i + 6]):
                code = int(value[i + 2 : i + 6], 16)
                if 0xFF01 <= code <= 0xFF5E:
                    out.append(chr((code & 0xFF) + 0x20))
                else:
                    out.append(chr(code & 0xFF))
                i += 6
                continue
            if i + 3 <= n and value[i + 1] in _HEX and value[i + 2] in _HEX:
                out.append(chr(int(value[i + 1 : i + 3], 16)))
                i += 3
                continue
            out.append(ch)
        elif ch == "+":
            out.append(" ")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def normalize_path(value: str, *, windows: bool = False) -> str:
    if windows:
        value = value.replace("\\", "/")
    if not value:
        return value
    absolute = value.startswith("/")
    trailing = value.endswith("/") or value.endswith("/.") or value.endswith("/..")
    out: list[str] = []
    for segment in value.split("/"):
        if segment in ("", "."):
            continue  # multiple slashes and self-references
        if segment == ".." and out and out[-1] != "..":
            out.pop()  # a back-reference that is not at the beginning
            continue
        out.append(segment)
    text = "/".join(out)
    if absolute:
        text = "/" + text
    if trailing and text and not text.endswith("/"):
        text += "/"
    return text


def lowercase(value: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in value)


def compress_white_space(value: str) -> str:
    value = re.sub("[\f\t\n\r\v\xa0]", " ", value)
    return re.sub(" {2,}", " ", value)


TRANSFORMS = {
    "NONE": lambda v: v,
    "URL_DECODE": url_decode,
    "URL_DECODE_UNI": lambda v: url_decode(v, unicode=True),
    "NORMALIZE_PATH": normalize_path,
    "NORMALIZE_PATH_WIN": lambda v: normalize_path(v, windows=True),
    "LOWERCASE": lowercase,
    "COMPRESS_WHITE_SPACE": compress_white_space,
    "REMOVE_NULLS": lambda v: v.replace("\x00", ""),
    "REPLACE_NULLS": lambda v: v.replace("\x00", " "),
}


def transform(value: str, transformations: Sequence[Mapping[str, Any]]) -> str:
    for step in sorted(transformations, key=lambda t: int(t["Priority"])):
        kind = str(step["Type"])
        if kind not in TRANSFORMS:
            raise NotImplementedError(f"text transformation {kind} is not modelled; add it to waf_eval")
        value = TRANSFORMS[kind](value)
    return value


# --- regular expressions -------------------------------------------------------
_SAFE_LETTER_ESCAPES = frozenset("dDsSwWbB")


def check_pcre_subset(pattern: str) -> None:
    """Raise unless ``pattern`` means the same in WAF's PCRE and in Python's ``re``."""
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise ValueError(f"pattern ends with a lone backslash: {pattern!r}")
            nxt = pattern[i + 1]
            if nxt.isascii() and nxt.isalnum() and nxt not in _SAFE_LETTER_ESCAPES:
                raise NotImplementedError(f"escape \\{nxt} is not modelled (PCRE and Python may differ)")
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "]" or pattern[i + 1 : i + 3] == "^]":
                raise NotImplementedError("a ] first in a class is not modelled")
        elif ch == "(" and pattern[i + 1 : i + 2] != "?":
            # WAF documents capturing subexpressions as unsupported: the API
            # may refuse the pattern at deploy time, so the template must use (?:...).
            raise ValueError(f"capturing group in {pattern!r}: WAF does not support them, use (?:...)")
        elif ch == "(" and pattern[i + 2 : i + 3] != ":":
            raise NotImplementedError(f"group syntax (?{pattern[i + 2 : i + 3]} is not modelled")
        elif ch in "*+?}" and pattern[i + 1 : i + 2] == "+":
            raise NotImplementedError("possessive quantifiers are refused by WAF")
        i += 1
    if in_class:
        raise ValueError(f"unterminated character class: {pattern!r}")


def regex_search(pattern: str, value: str) -> bool:
    """True if ``pattern`` matches somewhere in ``value``, as WAF's PCRE would decide."""
    check_pcre_subset(pattern)
    return re.search(pattern, value, re.ASCII) is not None


# --- the evaluator ------------------------------------------------------------
class WebAclEvaluator:
    def __init__(
        self,
        rendered: Rendered,
        *,
        secrets: Mapping[str, str],
        pattern_sets: Mapping[str, Sequence[str]] | None = None,
        rate_limited: Collection[str] = (),
        addresses: Mapping[str, str] | None = None,
        web_acl: str = "WebAcl",
    ) -> None:
        self.rendered = rendered
        self.secrets = dict(secrets)
        # What Ref gives for resources the template names in strings (an EIP's public address).
        self.addresses = dict(addresses or {})
        self.pattern_sets = dict(pattern_sets or {})
        self.rate_limited = set(rate_limited)
        # Resolved once: Rendered.resources re-resolves the whole template on every access.
        self.resources: dict[str, dict[str, Any]] = rendered.resources
        self.acl: dict[str, Any] = self._props(web_acl)

    # --- references into the rest of the template -------------------------
    def _props(self, logical: str) -> dict[str, Any]:
        if logical not in self.resources:
            raise LookupError(f"{logical} does not exist with these parameters")
        props: dict[str, Any] = self.resources[logical].get("Properties", {})
        return props

    def _ref_target(self, arn: Any) -> str:
        if isinstance(arn, dict) and "Fn::GetAtt" in arn:
            target = arn["Fn::GetAtt"]
            logical = target[0] if isinstance(target, list) else str(target).split(".")[0]
            if logical not in self.resources:
                raise LookupError(f"{logical} is referenced by the web ACL but does not exist with these parameters")
            return str(logical)
        raise ValueError(f"unsupported ARN reference {arn!r}")

    def _list(self, node: Any) -> list[str]:
        if isinstance(node, dict) and "Fn::Split" in node:
            sep, text = node["Fn::Split"]
            return str(text).split(sep)
        if isinstance(node, list):
            return [self._string(v) for v in node]
        raise ValueError(f"unsupported list {node!r}")

    def _string(self, node: Any) -> str:
        if isinstance(node, str):
            return self._dynamic(node)
        if isinstance(node, dict) and "Fn::Sub" in node:
            text = node["Fn::Sub"]
            assert isinstance(text, str), node

            def sub(match: re.Match[str]) -> str:
                name = match.group(1)
                if name in self.rendered.params:
                    return str(self.rendered.params[name])
                if name in self.addresses:
                    return self.addresses[name]
                return "\x00" + name + "\x00"  # a resource reference: resolved below if it is a secret

            return self._dynamic(_SUB_VAR.sub(sub, text))
        raise ValueError(f"unsupported string {node!r}")

    def _dynamic(self, text: str) -> str:
        def resolve(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref not in self.secrets:
                raise LookupError(f"no value given for the dynamic reference to {ref}")
            return self.secrets[ref]

        resolved = _DYNAMIC_REF.sub(resolve, text)
        if "{{resolve:" in resolved:
            raise NotImplementedError(f"dynamic reference form not modelled: {text!r}")
        return resolved

    def _patterns(self, logical: str) -> list[str]:
        if logical in self.pattern_sets:
            return list(self.pattern_sets[logical])
        props = self._props(logical)
        return [self._string(p) for p in props["RegularExpressionList"]]

    # --- statements -------------------------------------------------------
    def _component(self, field_to_match: Mapping[str, Any], request: Request) -> str | None:
        ((kind, spec),) = field_to_match.items()
        if kind == "UriPath":
            return request.path
        if kind == "QueryString":
            return request.query
        if kind == "Method":
            return request.method
        if kind == "Body":
            return request.body
        if kind == "SingleHeader":
            return request.header(self._string(spec["Name"]))
        raise NotImplementedError(f"FieldToMatch {kind} is not modelled")

    def _inspect(self, statement: Mapping[str, Any], request: Request) -> str | None:
        value = self._component(statement["FieldToMatch"], request)
        if value is None:
            return None
        return transform(value, statement["TextTransformations"])

    def matches(self, statement: Mapping[str, Any], request: Request, labels: set[str]) -> bool:
        ((kind, spec),) = statement.items()
        if kind == "AndStatement":
            return all(self.matches(s, request, labels) for s in spec["Statements"])
        if kind == "OrStatement":
            return any(self.matches(s, request, labels) for s in spec["Statements"])
        if kind == "NotStatement":
            return not self.matches(spec["Statement"], request, labels)
        if kind == "ByteMatchStatement":
            value = self._inspect(spec, request)
            if value is None:
                return False
            needle = self._string(spec["SearchString"])
            return _positional(value, needle, str(spec["PositionalConstraint"]))
        if kind == "RegexMatchStatement":
            value = self._inspect(spec, request)
            return value is not None and regex_search(self._string(spec["RegexString"]), value)
        if kind == "RegexPatternSetReferenceStatement":
            value = self._inspect(spec, request)
            if value is None:
                return False
            return any(regex_search(p, value) for p in self._patterns(self._ref_target(spec["Arn"])))
        if kind == "IPSetReferenceStatement":
            props = self._props(self._ref_target(spec["Arn"]))
            address = ipaddress.ip_address(request.ip)
            return any(address in ipaddress.ip_network(cidr, strict=False) for cidr in self._list(props["Addresses"]))
        if kind == "GeoMatchStatement":
            return request.country in self._list(spec["CountryCodes"])
        if kind == "LabelMatchStatement":
            key = str(spec["Key"])
            if spec["Scope"] == "LABEL":
                return key in labels
            return any(label.startswith(key) for label in labels)
        if kind == "RateBasedStatement":
            scope = spec.get("ScopeDownStatement")
            in_scope = scope is None or self.matches(scope, request, labels)
            return in_scope and request.ip in self.rate_limited
        raise NotImplementedError(f"statement {kind} is not modelled")

    # --- the web ACL ------------------------------------------------------
    def evaluate(self, request: Request) -> Decision:
        labels: set[str] = set()
        counted: list[str] = []
        for rule in sorted(self.acl["Rules"], key=lambda r: int(r["Priority"])):
            name = str(rule["Name"])
            statement = rule["Statement"]
            if "ManagedRuleGroupStatement" in statement:
                outcome = self._managed(rule, request, counted, labels)
                if outcome is not None:
                    return Decision(outcome, name, tuple(counted), tuple(sorted(labels)))
                continue
            if not self.matches(statement, request, labels):
                continue
            labels.update(str(label["Name"]) for label in rule.get("RuleLabels", []))
            ((action, _),) = rule["Action"].items()
            if action == "Count":
                counted.append(name)
                continue
            if action in ("Allow", "Block"):
                return Decision(action.upper(), name, tuple(counted), tuple(sorted(labels)))
            raise NotImplementedError(f"rule action {action} is not modelled")
        ((default, _),) = self.acl["DefaultAction"].items()
        return Decision(default.upper(), None, tuple(counted), tuple(sorted(labels)))

    def _managed(self, rule: Mapping[str, Any], request: Request, counted: list[str], labels: set[str]) -> str | None:
        group = rule["Statement"]["ManagedRuleGroupStatement"]
        group_name = str(group["Name"])
        overrides = {str(o["Name"]): next(iter(o["ActionToUse"])) for o in group.get("RuleActionOverrides", [])}
        hits = sorted(r for g, r in request.managed if g == group_name)
        group_count = "Count" in rule.get("OverrideAction", {})
        for hit in hits:
            if (group_name, hit) in MANAGED_LABELS:
                labels.add(MANAGED_LABELS[(group_name, hit)])
            action = overrides.get(hit, "Block")
            if group_count or action == "Count":
                counted.append(f"{group_name}:{hit}")
                continue
            return str(action).upper()
        return None


def _positional(value: str, needle: str, constraint: str) -> bool:
    if constraint == "EXACTLY":
        return value == needle
    if constraint == "STARTS_WITH":
        return value.startswith(needle)
    if constraint == "ENDS_WITH":
        return value.endswith(needle)
    if constraint == "CONTAINS":
        return needle in value
    if constraint == "CONTAINS_WORD":
        return re.search(r"(?<![A-Za-z0-9_])" + re.escape(needle) + r"(?![A-Za-z0-9_])", value) is not None
    raise NotImplementedError(f"positional constraint {constraint}")
