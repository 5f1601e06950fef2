"""Issue 17, item 9: bad parameter values are refused by CloudFormation before any AWS service sees them.

CloudFormation applies a String parameter's AllowedPattern to the whole value (the CIDR and country lists
are Strings, so each pattern spells out the list). These tests compile each pattern with Python's re, whose
syntax for these patterns (alternation, classes, counted repeats) is the same as the Java regular
expressions CloudFormation uses, and feed it good and bad lists.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import string
from pathlib import Path

import pytest

from testkit.template import load

PARAMETERS = load()["Parameters"]
CIDR_LISTS = [name for name in PARAMETERS if "Cidr" in name]

# ISO 3166-1 alpha-2, the officially assigned codes: the public-domain table iso3166.tab of the IANA
# time zone database ("current as of ISO/TC 46 N1108 (2023-04-05)"), column 1, 249 codes.
ISO_3166_ALPHA2 = frozenset(
    " ".join(
        (
            "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL",
            "BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV",
            "CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD",
            "GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM",
            "IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK",
            "LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW",
            "MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR",
            "PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS",
            "ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY",
            "UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW",
        )
    ).split(" ")
)
TZ_TABLE = Path("/usr/share/zoneinfo/iso3166.tab")


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(PARAMETERS[name]["AllowedPattern"])


def _accepts(name: str, value: str) -> bool:
    return _pattern(name).fullmatch(value) is not None


def test_every_cidr_list_parameter_is_covered() -> None:
    # A new CIDR parameter must get the same pattern (and these tests).
    assert CIDR_LISTS == ["LdapCidrs", "AdminCidrs", "AllowedCidrs", "RateLimitExemptCidrs"]
    # LdapCidrs is the same list, capped at three ranges (one security group rule per range and port).
    assert len({_unbounded(PARAMETERS[name]["AllowedPattern"]) for name in CIDR_LISTS}) == 1
    assert PARAMETERS["LdapCidrs"]["AllowedPattern"].endswith("){0,2}$")


def _unbounded(pattern: str) -> str:
    return pattern.replace("){0,2}$", ")*$")


def test_ldap_cidrs_take_at_most_three_ranges() -> None:
    three = "10.0.0.0/24,10.0.1.0/24,192.0.2.5/32"
    assert _accepts("LdapCidrs", three)
    assert not _accepts("LdapCidrs", three + ",198.51.100.0/24")
    assert _accepts("AllowedCidrs", three + ",198.51.100.0/24")


@pytest.mark.parametrize("name", CIDR_LISTS)
@pytest.mark.parametrize(
    "value",
    [
        "999.1.1.1/99",  # issue 17: the old pattern took it
        "10.0.0.0/33",
        "256.0.0.0/8",
        "10.0.0.0/0",  # WAF IP sets take every IPv4 range except /0
        "10.0.0/8",
        "10.0.0.0",
        "10.0.0.0/08",
        "010.0.0.0/8",
        "10.0.0.0/8,",
        "10.0.0.0/8, 192.0.2.0/24",  # no spaces: WAF receives each piece as it is
        "10.0.0.0/8,,192.0.2.0/24",
        "2001:db8::/32",
        " ",
    ],
)
def test_cidr_lists_refuse_invalid_ranges(name: str, value: str) -> None:
    assert not _accepts(name, value)


@pytest.mark.parametrize("name", CIDR_LISTS)
@pytest.mark.parametrize(
    "value",
    [
        "",
        "203.0.113.0/24",
        "203.0.113.0/24,198.51.100.7/32",
        "0.0.0.0/1,128.0.0.0/1",
        "255.255.255.255/32",
        "10.0.0.0/8",
    ],
)
def test_cidr_lists_accept_valid_ranges(name: str, value: str) -> None:
    assert _accepts(name, value)
    for cidr in filter(None, value.split(",")):
        ipaddress.IPv4Network(cidr, strict=False)  # what the pattern accepts, Python parses too


def test_cidr_pattern_matches_exactly_octets_0_to_255_and_prefixes_1_to_32() -> None:
    name = CIDR_LISTS[0]
    octets = [str(n) for n in range(300)] + ["00", "01", "001"]
    accepted = {o for o in octets if _accepts(name, f"{o}.0.0.0/8")}
    assert accepted == {str(n) for n in range(256)}
    prefixes = [str(n) for n in range(40)] + ["01", "032"]
    assert {p for p in prefixes if _accepts(name, f"10.0.0.0/{p}")} == {str(n) for n in range(1, 33)}


def test_country_codes_are_exactly_iso_3166_alpha2() -> None:
    assert len(ISO_3166_ALPHA2) == 249
    pairs = {a + b for a, b in itertools.product(string.ascii_uppercase, repeat=2)}
    assert {code for code in pairs if _accepts("AllowedCountries", code)} == ISO_3166_ALPHA2


def test_vendored_list_is_the_tz_table_where_the_system_has_one() -> None:
    if not TZ_TABLE.exists():
        pytest.skip("no tz database table on this machine")
    lines = TZ_TABLE.read_text(encoding="utf-8").splitlines()
    assert {line.split("\t")[0] for line in lines if line and not line.startswith("#")} == ISO_3166_ALPHA2


@pytest.mark.parametrize("value", ["UK", "US,UK", "us", "USA", "US CA", "US,", "EU", "XK"])
def test_country_lists_refuse_non_iso_codes(value: str) -> None:
    assert not _accepts("AllowedCountries", value)


@pytest.mark.parametrize("value", ["", "GB", "US,CA", "GB,IE,DE", "AX"])
def test_country_lists_accept_iso_codes(value: str) -> None:
    assert _accepts("AllowedCountries", value)


def test_uk_is_refused_with_a_hint_to_gb() -> None:
    description = PARAMETERS["AllowedCountries"]["ConstraintDescription"]
    assert "GB" in description
    assert "UK is not an ISO 3166-1 code" in description
