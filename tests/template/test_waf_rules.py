"""Request variants against the web ACL exactly as template.yaml writes it.

Each row: which parameters the stack was deployed with, a request (path as
sent on the wire, header, source address, country), and what WAF must do.
The evaluator (``testkit.waf_eval``) applies WAF's documented semantics for
the statements and text transformations the template uses; docs/cron-and-waf.md
"cron.php and WAF" table is the readable form of this one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import pytest

from redcap_ctl.waf import pattern_for
from testkit.template import Rendered
from testkit.waf_eval import Decision, Request, WebAclEvaluator

HEADER = "x-redcap-cron-secret"
CURRENT = "Curr3ntCronValue0123456789abcdefABCDEF01234567"
PENDING = "Pend1ng-Cron_Value0123456789abcdefABCDEF012345"  # token_urlsafe alphabet, as rotation makes
WRONG = "Wr0ngCronValue0123456789abcdefABCDEF0123456789"
# token_urlsafe can start with '-' or '_'; pattern_for escapes every '-' (as backslash-dash).
EDGY = "-_Rot4ted-Value_with-dashes_and_underscores-0"

ALLOWED_NET_IP = "203.0.113.5"  # inside AllowedCidrs
ADMIN_IP = "203.0.113.8"  # AdminCidrs in the "allowlists" profile (inside AllowedCidrs)
OUTSIDE_IP = "192.0.2.77"
OPEN_ADMIN_IP = "198.51.100.20"  # AdminCidrs in the "admin" profile

# The dev profiles keep dev's optional NAT gateway (DevNatGateway=true), whose address the Configuration Check
# exception names; dev without it (the default since issue 19) is test_dev_without_nat_has_no_egress_exception.
DEV_NAT = {"DevNatGateway": "true"}
PROFILES: dict[str, dict[str, Any]] = {
    "open": {**DEV_NAT},
    "admin": {"AdminCidrs": "198.51.100.0/24", **DEV_NAT},
    "allowlists": {
        "AllowedCidrs": "203.0.113.0/24",
        "AllowedCountries": "US,CA",
        "AdminCidrs": "203.0.113.8/32",
        **DEV_NAT,
    },
    "restricted": {"AllowedCidrs": "203.0.113.0/24", "AllowedCountries": "US,CA", "RestrictSurveys": "true", **DEV_NAT},
    "prod": {"Environment": "prod"},  # one NAT gateway (and address) per AZ
    "rate-exempt": {"RateLimitExemptCidrs": "198.51.100.0/24,203.0.113.9/32"},
}
# The NAT gateways' public addresses (Ref of NatEip1/NatEip2): REDCap's own outbound requests come from these.
NAT_ADDRESSES = {"NatEip1": "198.51.100.201", "NatEip2": "198.51.100.202"}
NO_UA = frozenset({("AWSManagedRulesCommonRuleSet", "NoUserAgent_HEADER")})
# What the managed groups match on REDCap's logic (issue 18 item 7; upstream aws-samples/redcap-on-aws #57):
# [a]=1--1 in a query argument, if([x]='', '', '') in a form post.
SQLI_QUERY = frozenset({("AWSManagedRulesSQLiRuleSet", "SQLi_QUERYARGUMENTS")})
SQLI_QUERY_EXTENDED = frozenset({("AWSManagedRulesSQLiRuleSet", "SQLiExtendedPatterns_QUERYARGUMENTS")})
SQLI_BODY = frozenset({("AWSManagedRulesSQLiRuleSet", "SQLi_BODY")})
SQLI_BODY_EXTENDED = frozenset({("AWSManagedRulesSQLiRuleSet", "SQLiExtendedPatterns_BODY")})
LARGE_BODY = frozenset({("AWSManagedRulesCommonRuleSet", "SizeRestrictions_BODY")})
V = "/redcap_v15.7.6"
# REDCap's own requests that carry branching logic and calculations (redcap_v15.7.6/Resources/js/Project.js,
# DesignFields.js, DataQuality.js, Alerts.js post the expression to these, with ?pid= in the query string).
LOGIC_PATHS = [
    f"{V}/Design/logic_validate.php",
    f"{V}/Design/logic_test_record.php",
    f"{V}/Design/logic_calc_test_record.php",
    f"{V}/Design/calculation_equation_validate.php",
    f"{V}/Design/branching_logic_builder.php",
    f"{V}/Design/edit_field.php",
]
# Every other path family REDCap (or a probe) has: SQL injection there stays blocked.
OTHER_PATHS = [
    "/",
    "/index.php",
    "/surveys/",
    "/api/",
    "/ehr.php",
    "/plugins/report.php",
    "/modules/x/index.php",
    "/redcap_connect.php",
    f"{V}/index.php",
    f"{V}/DataEntry/index.php",
    f"{V}/DataEntry/record_home.php",
    f"{V}/DataExport/report_ajax.php",
    f"{V}/ControlCenter/database_query_tool.php",
    f"{V}/Design/online_designer.php",
    f"{V}/Surveys/automated_invitations_check_logic.php",
    f"{V}/ExternalModules/",
    # look-alikes of the logic endpoints
    f"{V}/Design/logic_validate.php.bak",
    f"{V}/Design/logic_validate.php/x",
    f"{V}/Design/logic_validatephp",
    f"{V}/design/logic_validate.php",
    f"{V}/DESIGN/LOGIC_VALIDATE.PHP",
    f"/x{V}/Design/logic_validate.php",
    f"{V}/Design/logic_validate.php/../../index.php",
    f"{V}/Design/logic_validate.php/%2e%2e/%2e%2e/DataEntry/index.php",
    f"{V}/Design/%2e%2e/DataEntry/index.php",
    "/redcap_vX/Design/logic_validate.php",
    "/../redcap_v15.7.6/Design/logic_validate.php",
]
# REDCap's own paths that take uploads and long form posts (over 8 KB), and paths that are not REDCap's.
REDCAP_POST_PATHS = [
    "/",
    "/index.php",
    f"{V}/DataImport/index.php",
    f"{V}/DataEntry/file_upload.php",
    f"{V}/DataEntry/index.php",
    f"{V}/Design/data_dictionary_upload.php",
    f"{V}/Design/edit_field.php",
    f"{V}/index.php",
    "/surveys/",
    "/surveys/index.php",
    "/api/",
]
NOT_REDCAP_POST_PATHS = [
    "/plugins/upload.php",
    "/modules/x/index.php",
    "/hooks/x.php",
    "/languages/x.ini",
    "/cronjob.php",
    "/index.php/x",
    "/index.php.bak",
    "/surveys",
    "/redcap_vX/DataImport/index.php",
    "/surveys/../plugins/upload.php",
    "/surveys/%2e%2e/plugins/upload.php",
    f"{V}/../plugins/upload.php",
    "/../redcap_v15.7.6/DataImport/index.php",
]

# The pattern set: as created (from the template's dynamic reference), during a
# rotation ({AWSCURRENT, AWSPENDING}) and after it ({new AWSCURRENT}).
STATES: dict[str, list[str] | None] = {
    "created": None,
    "rotating": [pattern_for(CURRENT), pattern_for(PENDING)],
    "rotated": [pattern_for(PENDING)],
    "rotated-edgy": [pattern_for(EDGY)],
}


@dataclass(frozen=True)
class Case:
    id: str
    request: Request
    expected: str
    rule: str | None
    profile: str = "open"
    state: str = "created"
    rate_limited: tuple[str, ...] = field(default=())
    # (action, rule) on ECS Express where it differs from App Runner's.
    express: tuple[str, str | None] | None = None


def req(path: str, secret: str | None = None, ip: str = "192.0.2.10", country: str = "US", **kw: Any) -> Request:
    headers = {HEADER: secret} if secret is not None else {}
    return Request(path=path, headers=headers, ip=ip, country=country, **kw)


def out(path: str, secret: str | None = None, **kw: Any) -> Request:
    """From outside both allowlists."""
    return req(path, secret, ip=OUTSIDE_IP, country="FR", **kw)


ALLOW, BLOCK = "ALLOW", "BLOCK"
SQLI_BLOCK, LARGE_BLOCK = "BlockSqlInjectionOutsideLogic", "BlockLargeBodyOutsideRedcap"
RATE_EXEMPT_IP = "198.51.100.77"  # the campus NAT address in the "rate-exempt" profile
CRON_OK, CRON_BLOCK = "AllowCronWithAcceptedHeader", "BlockCron"
ADMIN_BLOCK, DIRS = "BlockInstallUpgrade", "BlockInternalDirectories"

CASES = [
    # --- cron.php: blocked without an accepted header, however it is spelled
    Case("cron", req("/cron.php"), BLOCK, CRON_BLOCK),
    Case("cron upper case", req("/CRON.PHP"), BLOCK, CRON_BLOCK),
    Case("cron %2e", req("/cron%2ephp"), BLOCK, CRON_BLOCK),
    Case("cron %2E", req("/cron%2Ephp"), BLOCK, CRON_BLOCK),
    Case("cron double-encoded %252e", req("/cron%252ephp"), BLOCK, CRON_BLOCK),
    Case("cron encoded letters", req("/%63%72%6f%6e.php"), BLOCK, CRON_BLOCK),
    Case("cron double slash", req("//cron.php"), BLOCK, CRON_BLOCK),
    Case("cron path info", req("/cron.php/x"), BLOCK, CRON_BLOCK),
    Case("cron trailing slash", req("/cron.php/"), BLOCK, CRON_BLOCK),
    Case("cron MultiViews", req("/cron"), BLOCK, CRON_BLOCK),
    Case("cron self-reference", req("/./cron.php"), BLOCK, CRON_BLOCK),
    Case("cron back-reference", req("/surveys/../cron.php"), BLOCK, CRON_BLOCK),
    Case("cron encoded back-reference", req("/x/%2e%2e/cron.php"), BLOCK, CRON_BLOCK),
    Case("cron leading back-reference", req("/../cron.php"), BLOCK, CRON_BLOCK),
    Case("cron backslash", req("/redcap_v14.0.0\\cron.php"), BLOCK, CRON_BLOCK),
    Case("cron with query", req("/cron.php", query="run=1"), BLOCK, CRON_BLOCK),
    Case("cron POST", req("/cron.php", method="POST"), BLOCK, CRON_BLOCK),
    Case("versioned cron", req("/redcap_v14.0.0/cron.php"), BLOCK, CRON_BLOCK),
    Case("versioned cron mangled", req("/redcap_v14.0.0//Cron.php/"), BLOCK, CRON_BLOCK),
    # --- cron.php with the header
    Case("cron + current value", req("/cron.php", CURRENT), ALLOW, CRON_OK),
    Case("versioned cron + current value", req("/redcap_v14.0.0/cron.php", CURRENT), ALLOW, CRON_OK),
    Case("cron + wrong value", req("/cron.php", WRONG), BLOCK, CRON_BLOCK),
    Case("cron + empty value", req("/cron.php", ""), BLOCK, CRON_BLOCK),
    Case("cron + value with suffix", req("/cron.php", CURRENT + "x"), BLOCK, CRON_BLOCK),
    Case("cron + value with prefix", req("/cron.php", "x" + CURRENT), BLOCK, CRON_BLOCK),
    Case("cron + value in other case", req("/cron.php", CURRENT.lower()), BLOCK, CRON_BLOCK),
    Case("cron + value padded", req("/cron.php", f" {CURRENT} "), BLOCK, CRON_BLOCK),
    Case("cron + value in another header", Request("/cron.php", headers={"x-cron-secret": CURRENT}), BLOCK, CRON_BLOCK),
    Case(
        "cron + header name in other case",
        Request("/cron.php", headers={"X-REDCap-Cron-Secret": CURRENT}),
        ALLOW,
        CRON_OK,
    ),
    Case("cron + pending value mid-rotation", req("/cron.php", PENDING), ALLOW, CRON_OK, state="rotating"),
    Case("cron + current value mid-rotation", req("/cron.php", CURRENT), ALLOW, CRON_OK, state="rotating"),
    Case("cron + old value after rotation", req("/cron.php", CURRENT), BLOCK, CRON_BLOCK, state="rotated"),
    Case("cron + new value after rotation", req("/cron.php", PENDING), ALLOW, CRON_OK, state="rotated"),
    # a rotated value with '-' and '_' (first characters too), held as its escaped pattern
    Case("cron + rotated value with - and _", req("/cron.php", EDGY), ALLOW, CRON_OK, state="rotated-edgy"),
    Case(
        "versioned cron + rotated value from outside",
        out("/redcap_v14.0.0/cron.php", EDGY),
        ALLOW,
        CRON_OK,
        profile="allowlists",
        state="rotated-edgy",
    ),
    Case(
        "cron + rotated value, - swapped",
        req("/cron.php", EDGY.replace("-", "x")),
        BLOCK,
        CRON_BLOCK,
        state="rotated-edgy",
    ),
    Case(
        "cron + rotated value, _ swapped",
        req("/cron.php", EDGY.replace("_", "x")),
        BLOCK,
        CRON_BLOCK,
        state="rotated-edgy",
    ),
    Case(
        "cron + the escaped pattern text as value",
        req("/cron.php", EDGY.replace("-", "\\-")),
        BLOCK,
        CRON_BLOCK,
        state="rotated-edgy",
    ),
    Case("cron + pre-rotation value", req("/cron.php", CURRENT), BLOCK, CRON_BLOCK, state="rotated-edgy"),
    Case("rotated value on install.php", req("/install.php", EDGY), BLOCK, ADMIN_BLOCK, state="rotated-edgy"),
    # the caller has no fixed address: an accepted header passes both allowlists and the rate limit
    Case("cron + value from outside allowlists", out("/cron.php", CURRENT), ALLOW, CRON_OK, profile="allowlists"),
    Case("cron + value, surveys restricted", out("/cron.php", CURRENT), ALLOW, CRON_OK, profile="restricted"),
    Case("cron + value from rate-limited IP", req("/cron.php", CURRENT), ALLOW, CRON_OK, rate_limited=("192.0.2.10",)),
    Case(
        "cron + value from bad-reputation IP",
        req(
            "/cron.php",
            CURRENT,
            managed=frozenset({("AWSManagedRulesAmazonIpReputationList", "AWSManagedIPReputationList")}),
        ),
        ALLOW,
        CRON_OK,
    ),
    Case("cron without value from outside", out("/cron.php"), BLOCK, CRON_BLOCK, profile="allowlists"),
    Case("cron from an allowed address", req("/cron.php", ip=ALLOWED_NET_IP), BLOCK, CRON_BLOCK, profile="allowlists"),
    # --- the header opens nothing else
    Case("value on install.php", req("/install.php", CURRENT), BLOCK, ADMIN_BLOCK),
    Case("value on upgrade.php", req("/redcap_v13.1.0/upgrade.php", CURRENT), BLOCK, ADMIN_BLOCK),
    Case("value on /temp/", req("/temp/x", CURRENT), BLOCK, DIRS),
    Case(
        "value on Control Center from outside",
        out("/redcap_v14.0.0/ControlCenter/index.php", CURRENT),
        BLOCK,
        "IpAllowlist",
        profile="allowlists",
    ),
    Case("value on API from outside", out("/api/", CURRENT), BLOCK, "IpAllowlist", profile="allowlists"),
    Case("value on look-alike path", out("/cron.php.bak", CURRENT), BLOCK, "IpAllowlist", profile="allowlists"),
    Case(
        "value on other dir's cron.php", out("/plugins/cron.php", CURRENT), BLOCK, "IpAllowlist", profile="allowlists"
    ),
    Case(
        "wrong value on Control Center from outside",
        out("/redcap_v14.0.0/ControlCenter/", WRONG),
        BLOCK,
        "IpAllowlist",
        profile="allowlists",
    ),
    # --- install.php / upgrade.php
    Case("install", req("/install.php"), BLOCK, ADMIN_BLOCK),
    Case("upgrade", req("/upgrade.php"), BLOCK, ADMIN_BLOCK),
    Case("versioned upgrade", req("/redcap_v13.1.0/upgrade.php"), BLOCK, ADMIN_BLOCK),
    Case("versioned install", req("/redcap_v13.1.0/install.php"), BLOCK, ADMIN_BLOCK),
    Case("install upper case", req("/INSTALL.PHP"), BLOCK, ADMIN_BLOCK),
    Case("install encoded", req("/install%2ephp"), BLOCK, ADMIN_BLOCK),
    Case("upgrade path info", req("/redcap_v13.1.0//Upgrade.php/x"), BLOCK, ADMIN_BLOCK),
    Case("upgrade, AdminCidrs empty, any address", req("/upgrade.php", ip=OPEN_ADMIN_IP), BLOCK, ADMIN_BLOCK),
    Case("upgrade from AdminCidrs", req("/redcap_v13.1.0/upgrade.php", ip=OPEN_ADMIN_IP), ALLOW, None, profile="admin"),
    Case("install from AdminCidrs", req("/install.php", ip=OPEN_ADMIN_IP), ALLOW, None, profile="admin"),
    Case("upgrade from elsewhere", req("/upgrade.php", ip="198.51.99.1"), BLOCK, ADMIN_BLOCK, profile="admin"),
    Case(
        "upgrade from AdminCidrs inside allowlist", req("/upgrade.php", ip=ADMIN_IP), ALLOW, None, profile="allowlists"
    ),
    Case(
        "upgrade from allowlist but not admin",
        req("/upgrade.php", ip=ALLOWED_NET_IP),
        BLOCK,
        ADMIN_BLOCK,
        profile="allowlists",
    ),
    # --- internal directories, never served
    Case("temp", req("/temp/x"), BLOCK, DIRS),
    Case("edocs", req("/edocs/x"), BLOCK, DIRS),
    Case("webtools2", req("/webtools2/x"), BLOCK, DIRS),
    Case("temp bare", req("/temp"), BLOCK, DIRS),
    Case("edocs upper case", req("/EDOCS/x"), BLOCK, DIRS),
    Case("temp encoded", req("/%74emp/x"), BLOCK, DIRS),
    Case("edocs double slash", req("//edocs//x"), BLOCK, DIRS),
    Case("webtools2 back-reference", req("/surveys/../webtools2/ldap/"), BLOCK, DIRS),
    Case("edocs from AdminCidrs", req("/edocs/x", ip=OPEN_ADMIN_IP), BLOCK, DIRS, profile="admin"),
    Case("temporary is not temp", req("/temporary/x"), ALLOW, None),
    Case("cronjob.php is not cron", req("/cronjob.php"), ALLOW, None),
    # --- allowlists and public surveys
    Case("home, open stack", out("/"), ALLOW, None),
    Case("survey from outside", out("/surveys/", query="s=abc"), ALLOW, None, profile="allowlists"),
    Case(
        "survey assets from outside", out("/redcap_v14.0.0/Resources/css/style.css"), ALLOW, None, profile="allowlists"
    ),
    Case("home from outside IP", out("/"), BLOCK, "IpAllowlist", profile="allowlists"),
    Case("login from outside IP", out("/index.php"), BLOCK, "IpAllowlist", profile="allowlists"),
    Case("survey escape to index", out("/surveys/../index.php"), BLOCK, "IpAllowlist", profile="allowlists"),
    Case("survey escape encoded", out("/surveys/%2e%2e/index.php"), BLOCK, "IpAllowlist", profile="allowlists"),
    Case(
        "allowed IP, other country",
        req("/index.php", ip=ALLOWED_NET_IP, country="FR"),
        BLOCK,
        "CountryAllowlist",
        profile="allowlists",
    ),
    Case(
        "allowed IP and country", req("/index.php", ip=ALLOWED_NET_IP, country="CA"), ALLOW, None, profile="allowlists"
    ),
    Case(
        "survey from outside, restricted", out("/surveys/", query="s=abc"), BLOCK, "IpAllowlist", profile="restricted"
    ),
    Case(
        "survey from inside, restricted",
        req("/surveys/", ip=ALLOWED_NET_IP, query="s=abc"),
        ALLOW,
        None,
        profile="restricted",
    ),
    # --- rate limit and managed rule groups
    Case("rate-limited IP", req("/index.php"), BLOCK, "RateLimitPerIp", rate_limited=("192.0.2.10",)),
    Case(
        "bad reputation IP",
        req("/index.php", managed=frozenset({("AWSManagedRulesAmazonIpReputationList", "AWSManagedIPReputationList")})),
        BLOCK,
        "AWSManagedRulesAmazonIpReputationList",
    ),
    Case(
        "large upload counted, not blocked",
        req(
            "/redcap_v14.0.0/DataImport/index.php",
            method="POST",
            managed=frozenset({("AWSManagedRulesCommonRuleSet", "SizeRestrictions_BODY")}),
        ),
        ALLOW,
        None,
    ),
    Case(
        "rich text counted, not blocked",
        req(
            "/redcap_v14.0.0/Design/edit_field.php",
            method="POST",
            managed=frozenset({("AWSManagedRulesCommonRuleSet", "CrossSiteScripting_BODY")}),
        ),
        ALLOW,
        None,
    ),
    Case(
        "sql field counted, not blocked",
        req(
            "/redcap_v14.0.0/Design/edit_field.php",
            method="POST",
            managed=frozenset({("AWSManagedRulesSQLiRuleSet", "SQLi_BODY")}),
        ),
        ALLOW,
        None,
    ),
    Case(
        "SQLi in the query string blocked",
        req("/index.php", query="id=1' OR '1'='1", managed=SQLI_QUERY),
        BLOCK,
        SQLI_BLOCK,
    ),
    Case(
        "XSS in the query string blocked",
        req("/index.php", managed=frozenset({("AWSManagedRulesCommonRuleSet", "CrossSiteScripting_QUERYARGUMENTS")})),
        BLOCK,
        "AWSManagedRulesCommonRuleSet",
    ),
    # --- REDCap's Configuration Check (issue 13, finding 10): it requests the survey endpoint without a
    # User-Agent, from REDCap's own NAT address. Only that passes; every other request without one is blocked.
    Case(
        "config check: survey endpoint, no User-Agent, from REDCap's NAT",
        req("/surveys/index.php", ip="198.51.100.201", managed=NO_UA),
        ALLOW,
        None,
        # No NAT on Express (tasks leave from their own changing addresses): the check stays blocked.
        express=(BLOCK, "BlockNoUserAgent"),
    ),
    Case(
        "config check from the second NAT in prod",
        req("/surveys/", ip="198.51.100.202", managed=NO_UA),
        ALLOW,
        None,
        profile="prod",
        express=(BLOCK, "BlockNoUserAgent"),
    ),
    Case(
        "no User-Agent from the second NAT address in dev (one NAT)",
        req("/surveys/", ip="198.51.100.202", managed=NO_UA),
        BLOCK,
        "BlockNoUserAgent",
    ),
    Case("no User-Agent from anyone else", req("/surveys/index.php", managed=NO_UA), BLOCK, "BlockNoUserAgent"),
    Case(
        "no User-Agent from REDCap's NAT, other page",
        req("/index.php", ip="198.51.100.201", managed=NO_UA),
        BLOCK,
        "BlockNoUserAgent",
    ),
    Case(
        "no User-Agent from REDCap's NAT, survey path escaped",
        req("/surveys/../redcap_v14.0.0/ControlCenter/", ip="198.51.100.201", managed=NO_UA),
        BLOCK,
        "BlockNoUserAgent",
    ),
    Case(
        "config check passes the allowlists' survey exception",
        req("/surveys/index.php", ip="198.51.100.201", country="FR", managed=NO_UA),
        ALLOW,
        None,
        profile="allowlists",
        express=(BLOCK, "BlockNoUserAgent"),
    ),
    Case(
        "Log4j probe blocked",
        req("/index.php", managed=frozenset({("AWSManagedRulesKnownBadInputsRuleSet", "Log4JRCE_HEADER")})),
        BLOCK,
        "AWSManagedRulesKnownBadInputsRuleSet",
    ),
    # --- REDCap's logic (issue 18 item 7): SQLi matches pass only on the logic endpoints
    *[
        Case(f"logic in the query string on {p}", req(p, query="pid=1&logic=[a]=1--1", managed=m), ALLOW, None)
        for p in LOGIC_PATHS
        for m in (SQLI_QUERY, SQLI_QUERY_EXTENDED, SQLI_QUERY | SQLI_QUERY_EXTENDED)
    ],
    *[
        Case(
            f"logic in the form post to {p}",
            req(p, method="POST", query="pid=1", body="logic=if([x]='', '', '')", managed=SQLI_BODY | m),
            ALLOW,
            None,
        )
        for p in LOGIC_PATHS
        for m in (frozenset(), SQLI_BODY_EXTENDED)
    ],
    Case(
        "logic endpoint reached through a back-reference",
        req(f"/surveys/..{V}/Design/logic_validate.php", query="logic=[a]=1--1", managed=SQLI_QUERY),
        ALLOW,
        None,
    ),
    Case(
        "logic endpoint with an encoded letter (Apache decodes it too)",
        req(f"{V}/Design/logic%5fvalidate.php", query="logic=[a]=1--1", managed=SQLI_QUERY),
        ALLOW,
        None,
    ),
    *[
        Case(f"SQLi in the query string on {p}", req(p, query="id=1--1", managed=m), BLOCK, SQLI_BLOCK)
        for p in OTHER_PATHS
        for m in (SQLI_QUERY, SQLI_QUERY_EXTENDED)
    ],
    *[
        Case(
            f"extended SQLi in the form post to {p}",
            req(p, method="POST", managed=SQLI_BODY_EXTENDED),
            BLOCK,
            SQLI_BLOCK,
        )
        for p in OTHER_PATHS
    ],
    Case(
        "SQLi on a logic endpoint from outside the allowlist",
        out(LOGIC_PATHS[0], query="logic=[a]=1--1", managed=SQLI_QUERY),
        BLOCK,
        "IpAllowlist",
        profile="allowlists",
    ),
    Case(
        "SQLi in the cookie on a logic endpoint",
        req(LOGIC_PATHS[0], managed=frozenset({("AWSManagedRulesSQLiRuleSet", "SQLi_COOKIE")})),
        BLOCK,
        "AWSManagedRulesSQLiRuleSet",
    ),
    Case(
        "XSS in the query string on a logic endpoint",
        req(LOGIC_PATHS[0], managed=frozenset({("AWSManagedRulesCommonRuleSet", "CrossSiteScripting_QUERYARGUMENTS")})),
        BLOCK,
        "AWSManagedRulesCommonRuleSet",
    ),
    # --- uploads and long form posts (issue 18 item 2): over 8 KB only on REDCap's own paths
    *[Case(f"large body to {p}", req(p, method="POST", managed=LARGE_BODY), ALLOW, None) for p in REDCAP_POST_PATHS],
    *[
        Case(f"large body to {p}", req(p, method="POST", managed=LARGE_BODY), BLOCK, LARGE_BLOCK)
        for p in NOT_REDCAP_POST_PATHS
    ],
    Case(
        "large upload with rich text and SQL in it",
        req(
            f"{V}/Design/data_dictionary_upload.php",
            method="POST",
            managed=LARGE_BODY | SQLI_BODY | frozenset({("AWSManagedRulesCommonRuleSet", "CrossSiteScripting_BODY")}),
        ),
        ALLOW,
        None,
    ),
    Case(
        "large survey post from outside the allowlist (survey exception)",
        out("/surveys/", method="POST", managed=LARGE_BODY),
        ALLOW,
        None,
        profile="allowlists",
    ),
    # --- rate limit exemption (issue 19 item 4)
    Case(
        "campus NAT over the limit, exempt",
        req("/index.php", ip=RATE_EXEMPT_IP),
        ALLOW,
        None,
        profile="rate-exempt",
        rate_limited=(RATE_EXEMPT_IP,),
    ),
    Case(
        "exempt /32 over the limit",
        req("/index.php", ip="203.0.113.9"),
        ALLOW,
        None,
        profile="rate-exempt",
        rate_limited=("203.0.113.9",),
    ),
    Case(
        "neighbour of the exempt /32 over the limit",
        req("/index.php", ip="203.0.113.10"),
        BLOCK,
        "RateLimitPerIp",
        profile="rate-exempt",
        rate_limited=("203.0.113.10",),
    ),
    Case(
        "other address over the limit, exemption set",
        req("/index.php"),
        BLOCK,
        "RateLimitPerIp",
        profile="rate-exempt",
        rate_limited=("192.0.2.10",),
    ),
    Case(
        "exempt campus still meets the managed rules",
        req("/index.php", ip=RATE_EXEMPT_IP, query="id=1' OR 1=1", managed=SQLI_QUERY),
        BLOCK,
        SQLI_BLOCK,
        profile="rate-exempt",
        rate_limited=(RATE_EXEMPT_IP,),
    ),
    Case(
        "exempt campus still cannot reach install.php",
        req("/install.php", ip=RATE_EXEMPT_IP),
        BLOCK,
        ADMIN_BLOCK,
        profile="rate-exempt",
    ),
    Case(
        "campus NAT over the limit without the exemption",
        req("/index.php", ip=RATE_EXEMPT_IP),
        BLOCK,
        "RateLimitPerIp",
        rate_limited=(RATE_EXEMPT_IP,),
    ),
]


# The same web ACL protects App Runner and the ECS Express load balancer: every case runs on both.
COMPUTE = ["AppRunner", "EcsExpress"]
ENTRY = {
    "AppRunner": {"Fn::GetAtt": ["AppRunnerService", "ServiceArn"]},
    "EcsExpress": {"Fn::GetAtt": ["ExpressService", "ECSManagedResourceArns.IngressPath.LoadBalancerArn"]},
}


@functools.cache
def rendered(profile: str, compute: str = "AppRunner") -> Rendered:
    out = Rendered(**PROFILES[profile], ComputeType=compute)
    association = out.props("WebAclAssociation")
    assert association == {"ResourceArn": ENTRY[compute], "WebACLArn": {"Fn::GetAtt": ["WebAcl", "Arn"]}}
    return out


def evaluator(case: Case, compute: str = "AppRunner") -> WebAclEvaluator:
    pattern_sets = {}
    if STATES[case.state] is not None:
        pattern_sets["CronHeaderPatternSet"] = STATES[case.state]
    return WebAclEvaluator(
        rendered(case.profile, compute),
        secrets={"CronSecret": CURRENT},
        pattern_sets=pattern_sets,
        rate_limited=case.rate_limited,
        addresses=NAT_ADDRESSES,
    )


@pytest.mark.parametrize("compute", COMPUTE)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_request_variant(case: Case, compute: str) -> None:
    decision = evaluator(case, compute).evaluate(case.request)
    expected = case.express if compute == "EcsExpress" and case.express else (case.expected, case.rule)
    assert (decision.action, decision.rule) == expected


NON_CRON_PATHS = [
    "/",
    "/index.php",
    "/surveys/",
    "/api/",
    "/redcap_v14.0.0/ControlCenter/",
    "/install.php",
    "/temp/x",
    "/cron.php.bak",
]


@pytest.mark.parametrize("compute", COMPUTE)
@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("path", NON_CRON_PATHS)
def test_header_changes_nothing_outside_cron(profile: str, path: str, compute: str) -> None:
    ev = WebAclEvaluator(rendered(profile, compute), secrets={"CronSecret": CURRENT})
    for ip, country in (("192.0.2.10", "US"), (OUTSIDE_IP, "FR"), (ALLOWED_NET_IP, "CA")):
        without = ev.evaluate(req(path, ip=ip, country=country))
        for value in (CURRENT, WRONG):
            assert ev.evaluate(req(path, value, ip=ip, country=country)) == without


def test_rotated_states_hold_escaped_patterns() -> None:
    """The table evaluates what rotation writes: the escaped form, not the raw value."""
    for state in ("rotating", "rotated", "rotated-edgy"):
        patterns = STATES[state]
        assert patterns is not None
        assert any("\\-" in p for p in patterns), state
    assert STATES["rotated-edgy"] == ["^\\-_Rot4ted\\-Value_with\\-dashes_and_underscores\\-0$"]


def test_pattern_set_as_created_accepts_exactly_the_secret() -> None:
    ev = WebAclEvaluator(Rendered(), secrets={"CronSecret": CURRENT})
    assert ev._patterns("CronHeaderPatternSet") == [pattern_for(CURRENT)]


def test_template_rewrite_after_a_rotation_still_matches_exactly() -> None:
    """If the pattern set's text ever changes, CloudFormation writes ^AWSCURRENT$ unescaped."""
    ev = WebAclEvaluator(Rendered(), secrets={"CronSecret": EDGY})
    assert ev._patterns("CronHeaderPatternSet") == [f"^{EDGY}$"]  # '-' outside a class: literal
    assert ev.evaluate(req("/cron.php", EDGY)) == Decision(ALLOW, CRON_OK)
    for other in (EDGY.replace("-", "x"), EDGY.replace("_", "x"), EDGY[1:], EDGY + "0"):
        assert ev.evaluate(req("/cron.php", other)) == Decision(BLOCK, CRON_BLOCK)


def test_counted_rules_are_reported() -> None:
    request = req(
        "/redcap_v14.0.0/Design/edit_field.php",
        method="POST",
        managed=frozenset({("AWSManagedRulesCommonRuleSet", "CrossSiteScripting_BODY")}),
    )
    decision: Decision = WebAclEvaluator(Rendered(), secrets={"CronSecret": CURRENT}).evaluate(request)
    assert decision.counted == ("AWSManagedRulesCommonRuleSet:CrossSiteScripting_BODY",)


def test_the_table_depends_on_the_transformations() -> None:
    """Mutation check: without the path transformations the encoded variants would get through."""
    ev = WebAclEvaluator(Rendered(), secrets={"CronSecret": CURRENT})

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ([{"Priority": 0, "Type": "NONE"}] if k == "TextTransformations" else strip(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    ev.acl = strip(ev.acl)
    for path in (
        "/CRON.PHP",
        "/cron%2ephp",
        "//cron.php",
        "/redcap_v14.0.0//Cron.php/",
        "/x/../install.php",
        "/%74emp/x",
    ):
        assert ev.evaluate(req(path)).action == ALLOW, path


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_the_cron_callers_request_reaches_no_sampled_rule(profile: str) -> None:
    # Issue 13, finding 12: sampled requests keep every header, redaction does not apply to them. The
    # request the cron caller sends must end at a rule with sampling off, with no sampled rule before it.
    ev = WebAclEvaluator(rendered(profile), secrets={"CronSecret": CURRENT}, addresses=NAT_ADDRESSES)
    decision = ev.evaluate(req("/cron.php", CURRENT))
    assert (decision.action, decision.rule, decision.counted) == (ALLOW, CRON_OK, ())
    rules = {r["Name"]: r for r in ev.acl["Rules"]}
    assert rules[CRON_OK]["VisibilityConfig"]["SampledRequestsEnabled"] is False


def test_dev_without_nat_has_no_egress_exception() -> None:
    """Issue 19: dev on App Runner without a NAT gateway has no egress address, so no request is excepted.

    (REDCap cannot reach its own public URL then anyway: it has no internet egress; docs/cost.md.)
    """
    dev = Rendered()
    assert dev.props("WafRedcapEgressIpSet")["Addresses"] == []
    ev = WebAclEvaluator(dev, secrets={"CronSecret": CURRENT}, addresses=NAT_ADDRESSES)
    decision = ev.evaluate(req("/surveys/index.php", ip="198.51.100.201", managed=NO_UA))
    assert (decision.action, decision.rule) == (BLOCK, "BlockNoUserAgent")
