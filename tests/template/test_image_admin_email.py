"""The first administrator's e-mail: AdminEmail, else NotificationEmail, refused when both are empty,
and passed to the image as REDCAP_ADMIN_EMAIL by both compute types."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.template import Rendered, defaults, load

RULE = "AdminNeedsAnEmail"
# A deployable baseline apart from the administrator's address.
BASE = {"DomainName": "redcap.example.org", "RedcapSourceZip": "s3://releases/redcap15.5.1.zip"}


def _eval(node: Any, params: dict[str, Any]) -> Any:
    """CloudFormation's rule functions this rule uses (Ref, Equals, Not, Or, And)."""
    if isinstance(node, dict) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return str(params[value])
        if key == "Fn::Equals":
            return str(_eval(value[0], params)) == str(_eval(value[1], params))
        if key == "Fn::Not":
            return not _eval(value[0], params)
        if key == "Fn::Or":
            return any(_eval(v, params) for v in value)
        if key == "Fn::And":
            return all(_eval(v, params) for v in value)
        raise AssertionError(f"unexpected rule function {key}")
    return node


def violations(**overrides: str) -> dict[str, list[str]]:
    """Rule name -> failed assertion descriptions, for defaults + BASE + overrides."""
    params = {**defaults(), **BASE, **overrides}
    failed: dict[str, list[str]] = {}
    for name, rule in load()["Rules"].items():
        if "RuleCondition" in rule and not _eval(rule["RuleCondition"], params):
            continue
        for assertion in rule["Assertions"]:
            try:
                ok = _eval(assertion["Assert"], params)
            except AssertionError:
                continue  # other rules use functions this file does not need (Fn::Contains)
            if not ok:
                failed.setdefault(name, []).append(assertion["AssertDescription"])
    return failed


def compute_envs(r: Rendered) -> dict[str, dict[str, Any]]:
    """Container environment (name -> value) of each compute resource."""
    out: dict[str, dict[str, Any]] = {}
    for name, res in r.resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::AppRunner::Service":
            image = props["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]
            out[name] = {e["Name"]: e["Value"] for e in image["RuntimeEnvironmentVariables"]}
        elif res["Type"] == "AWS::ECS::ExpressGatewayService":
            out[name] = {e["Name"]: e["Value"] for e in props["PrimaryContainer"]["Environment"]}
    return out


def test_no_admin_email_at_all_is_refused_with_a_clear_message() -> None:
    failed = violations(AdminEmail="", NotificationEmail="")
    assert list(failed) == [RULE]
    (message,) = failed[RULE]
    assert "AdminEmail" in message
    assert "NotificationEmail" in message


@pytest.mark.parametrize(
    ("admin", "notification"),
    [("admin@example.org", ""), ("", "ops@example.org"), ("admin@example.org", "ops@example.org")],
)
def test_either_address_is_enough(admin: str, notification: str) -> None:
    assert RULE not in violations(AdminEmail=admin, NotificationEmail=notification)


def test_admin_email_refuses_what_is_not_an_address() -> None:
    import re

    pattern = re.compile(Rendered().template["Parameters"]["AdminEmail"]["AllowedPattern"])
    assert pattern.fullmatch("")
    assert pattern.fullmatch("admin@example.org")
    for bad in ("admin", "admin@example", "a b@example.org", "admin@@example.org"):
        assert not pattern.fullmatch(bad), bad


@pytest.mark.parametrize("compute", ["AppRunner", "EcsExpress"])
@pytest.mark.parametrize(
    ("admin", "notification", "expected"),
    [
        ("admin@example.org", "ops@example.org", "admin@example.org"),
        ("", "ops@example.org", "ops@example.org"),
        ("admin@example.org", "", "admin@example.org"),
    ],
)
def test_both_compute_types_pass_the_admin_email(compute: str, admin: str, notification: str, expected: str) -> None:
    params: dict[str, Any] = {
        "ComputeType": compute,
        "DomainName": "redcap.example.org",
        "AdminEmail": admin,
        "NotificationEmail": notification,
    }
    envs = compute_envs(Rendered(**params))
    assert len(envs) == 1, params
    for resource, env in envs.items():
        assert env["REDCAP_ADMIN_EMAIL"] == expected, resource
