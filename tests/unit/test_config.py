from __future__ import annotations

import pytest

from redcap_ctl.config import parse_bool, parse_int, require_env, require_str
from redcap_ctl.errors import InputError


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("FALSE", False), (" True ", True), (True, True)])
def test_parse_bool_accepts_exact_words(raw, expected):
    assert parse_bool(raw, "Field") is expected


@pytest.mark.parametrize("raw", ["", "yes", "1", "t", "truee"])
def test_parse_bool_rejects_anything_else_naming_the_field(raw):
    with pytest.raises(InputError, match="^EnableWWWSubdomain: "):
        parse_bool(raw, "EnableWWWSubdomain")


def test_parse_bool_default_applies_only_to_missing():
    assert parse_bool(None, "F", default=False) is False
    assert parse_bool("", "F", default=True) is True


def test_parse_int_bounds():
    assert parse_int("30", "T", minimum=1, maximum=110) == 30
    with pytest.raises(InputError, match="T: must be at most 110"):
        parse_int("300", "T", maximum=110)
    with pytest.raises(InputError, match="T: must be an integer"):
        parse_int("x", "T")


def test_require_env_fails_fast_naming_the_variable():
    with pytest.raises(InputError, match="^CRON_URL: environment variable is required$"):
        require_env("CRON_URL", {})
    assert require_env("CRON_URL", {"CRON_URL": " https://x "}) == "https://x"


def test_require_str():
    with pytest.raises(InputError, match="^DomainName: is required$"):
        require_str({"DomainName": "  "}, "DomainName")


def test_properties_from_the_environment_name_the_variable_not_the_property() -> None:
    from redcap_ctl.config import parse_from_env

    def parse(props: dict[str, str]) -> str:
        if not props["ServiceArn"]:
            raise InputError("ServiceArn", "required")
        return props["ServiceArn"]

    fields = {"ServiceArn": "EXPRESS_SERVICE_ARN"}
    assert parse_from_env({"EXPRESS_SERVICE_ARN": "arn:x"}, fields, parse) == "arn:x"
    with pytest.raises(InputError) as err:
        parse_from_env({}, fields, parse)
    assert err.value.field == "EXPRESS_SERVICE_ARN"
