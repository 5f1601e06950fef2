"""The evaluator's text transformations against the WAF Developer Guide's descriptions."""

from __future__ import annotations

import pytest

from testkit.waf_eval import compress_white_space, lowercase, normalize_path, transform, url_decode


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("/cron%2ephp", "/cron.php"),
        ("/cron%2Ephp", "/cron.php"),
        ("/cron%252ephp", "/cron%2ephp"),  # one level per URL_DECODE
        ("/a+b", "/a b"),
        ("/100%", "/100%"),  # an invalid escape stays as it is
        ("/%zz", "/%zz"),
        ("/%2", "/%2"),
    ],
)
def test_url_decode(raw, decoded):
    assert url_decode(raw) == decoded


def test_url_decode_uni_handles_ms_percent_u():
    assert url_decode("/cron%u002ephp", unicode=True) == "/cron.php"
    assert url_decode("/%uFF43ron.php", unicode=True) == "/cron.php"  # full-width c
    assert url_decode("/cron%u002ephp") == "/cron%u002ephp"  # plain URL_DECODE does not


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("//cron.php", "/cron.php"),
        ("/redcap_v14.0.0//Cron.php/", "/redcap_v14.0.0/Cron.php/"),
        ("/./cron.php", "/cron.php"),
        ("/x/../cron.php", "/cron.php"),
        ("/x/y/../../cron.php", "/cron.php"),
        ("/../cron.php", "/../cron.php"),  # a back-reference at the beginning stays
        ("/a/b/", "/a/b/"),
    ],
)
def test_normalize_path(raw, normal):
    assert normalize_path(raw) == normal


def test_normalize_path_win_turns_backslashes_first():
    assert normalize_path("\\redcap_v1\\..\\cron.php", windows=True) == "/cron.php"
    assert normalize_path("\\cron.php") == "\\cron.php"


def test_lowercase_and_white_space():
    assert lowercase("/CRON.PHP-Ä") == "/cron.php-Ä"  # only A-Z
    assert compress_white_space("a\t\n  b\xa0c") == "a b c"


def test_transformations_run_in_priority_order():
    steps = [{"Priority": 5, "Type": "LOWERCASE"}, {"Priority": 1, "Type": "URL_DECODE"}]
    assert transform("/CRON%2EPHP", steps) == "/cron.php"
    with pytest.raises(NotImplementedError):
        transform("x", [{"Priority": 0, "Type": "BASE64_DECODE"}])
