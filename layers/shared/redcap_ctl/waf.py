"""The WAF regex pattern set that holds the cron header values WAF accepts.

The cron rule in ``template.yaml`` blocks ``cron.php`` unless the secret header
matches one of the patterns in this set. The rotation function widens it to
{AWSCURRENT, AWSPENDING} before the switch and narrows it afterwards; the local
REDCap stand-in reads it to decide 200 or 403. Each value is stored as an
anchored, escaped pattern so that a value can never match more than itself.

Values are secret: nothing here logs them or puts them in exception text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from redcap_ctl.errors import ControlPlaneError, InputError

if TYPE_CHECKING:
    from mypy_boto3_wafv2 import WAFV2Client

# WAF regex pattern sets hold at most 10 patterns; two are ever needed.
MAX_PATTERNS = 10
LOCK_RETRIES = 5

_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:(?P<scope>regional|global)/regexpatternset/"
    r"(?P<name>[A-Za-z0-9_-]{1,128})/(?P<id>[a-f0-9-]{36})$"
)


@dataclass(frozen=True)
class PatternSetRef:
    name: str
    id: str
    scope: Literal["REGIONAL", "CLOUDFRONT"]

    @classmethod
    def from_arn(cls, arn: str, field: str = "CRON_PATTERN_SET_ARN") -> PatternSetRef:
        match = _ARN_RE.match(arn.strip())
        if not match:
            raise InputError(field, "must be a WAFv2 regex pattern set ARN")
        scope: Literal["REGIONAL", "CLOUDFRONT"] = "REGIONAL" if match["scope"] == "regional" else "CLOUDFRONT"
        return cls(name=match["name"], id=match["id"], scope=scope)


def pattern_for(value: str) -> str:
    """The anchored pattern that matches exactly ``value``."""
    return "^" + re.escape(value) + "$"


def accepts(patterns: Iterable[str], value: str) -> bool:
    """True if ``value`` matches one of ``patterns`` as WAF would evaluate them."""
    return any(re.search(p, value) for p in patterns)


def _read(waf: WAFV2Client, ref: PatternSetRef) -> tuple[list[str], str, str | None]:
    """(patterns, lock token, description) of the pattern set."""
    resp = waf.get_regex_pattern_set(Name=ref.name, Scope=ref.scope, Id=ref.id)
    patterns = [r["RegexString"] for r in resp["RegexPatternSet"].get("RegularExpressionList", [])]
    return patterns, resp["LockToken"], resp["RegexPatternSet"].get("Description")


def get_patterns(waf: WAFV2Client, ref: PatternSetRef) -> tuple[list[str], str]:
    patterns, token, _description = _read(waf, ref)
    return patterns, token


def accepted(waf: WAFV2Client, ref: PatternSetRef, value: str) -> bool:
    patterns, _ = get_patterns(waf, ref)
    return accepts(patterns, value)


def update_patterns(
    waf: WAFV2Client,
    ref: PatternSetRef,
    change: Callable[[list[str]], list[str]],
    *,
    retries: int = LOCK_RETRIES,
) -> list[str]:
    """Apply ``change`` to the current pattern list under WAF's optimistic lock.

    ``WAFOptimisticLockException`` means someone else wrote in between: read
    again and re-apply ``change`` to what is there now.
    """
    for _attempt in range(retries):
        current, token, description = _read(waf, ref)
        wanted = change(list(current))
        if not wanted:
            raise ControlPlaneError("refusing to empty the cron header pattern set")
        if len(wanted) > MAX_PATTERNS:
            raise ControlPlaneError(f"cron header pattern set would exceed {MAX_PATTERNS} patterns")
        if wanted == current:
            return current
        # UpdateRegexPatternSet replaces the whole mutable spec: a Description left out is cleared,
        # which CloudFormation then reports as drift. Send back the one the set has.
        extra = {"Description": description} if description else {}
        try:
            waf.update_regex_pattern_set(
                Name=ref.name,
                Scope=ref.scope,
                Id=ref.id,
                RegularExpressionList=[{"RegexString": p} for p in wanted],
                LockToken=token,
                **extra,
            )
            return wanted
        except ClientError as err:
            if _error_code(err) != "WAFOptimisticLockException":
                raise
    raise ControlPlaneError(f"cron header pattern set kept changing; gave up after {retries} attempts")


def accept_only(waf: WAFV2Client, ref: PatternSetRef, values: Iterable[str]) -> list[str]:
    """Make the set accept exactly ``values`` (order kept, duplicates dropped)."""
    wanted = list(dict.fromkeys(pattern_for(v) for v in values))
    return update_patterns(waf, ref, lambda _current: wanted)


def _error_code(err: ClientError) -> str:
    response: Any = err.response
    return str(response.get("Error", {}).get("Code", ""))
