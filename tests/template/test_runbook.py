"""docs/runbook.md says only what the code has: make targets, stack outputs, template names, samconfig keys.

The runbook is the one page an administrator follows with their own AWS account; a command that
names an output the stack does not have, or a make target that does not exist, fails there, in
front of them. These tests read the page and compare every such name with Makefile,
template.yaml and samconfig.toml. The `make X` check covers the README and every docs/ page too.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from testkit import ROOT
from testkit.template import load

RUNBOOK = ROOT / "docs" / "runbook.md"
MAKEFILE = ROOT / "Makefile"
SAMCONFIG = ROOT / "samconfig.toml"
PLACEHOLDER = "CHANGE_ME"
DEPLOY_ENVS = ["dev", "prod", "dev-express", "prod-express"]

# CamelCase words in the runbook's code spans that are not template names, and why.
NOT_TEMPLATE_NAMES = {
    "PendingConfirmation": "SNS's SubscriptionArn of an unconfirmed subscription",
}
# snake_case words in code spans that are not samconfig.toml keys, and why.
NOT_SAMCONFIG_KEYS = {
    "site_admin": "the first REDCap administrator's user name",
}


def _text() -> str:
    return RUNBOOK.read_text(encoding="utf-8")


def _code_spans(text: str) -> list[str]:
    """Inline code spans (fenced blocks removed first, so their lines are not paired up)."""
    return re.findall(r"`([^`\n]+)`", re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.M | re.S))


def _code_blocks(text: str) -> str:
    # Fenced blocks, also those indented under a list item.
    return "\n".join(re.findall(r"^[ \t]*```[a-z]*\n(.*?)^[ \t]*```", text, flags=re.M | re.S))


def _make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z0-9-]*):(?!=)", MAKEFILE.read_text(encoding="utf-8"), flags=re.M))


def _make_commands(text: str) -> list[str]:
    """`make X` in code spans and at the start of command lines in code blocks."""
    spans = [m for s in _code_spans(text) for m in re.findall(r"^make ([a-z][a-z0-9-]*)", s)]
    blocks = re.findall(r"^\s*make ([a-z][a-z0-9-]*)", _code_blocks(text), flags=re.M)
    return spans + blocks


def _samconfig() -> dict[str, Any]:
    return tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))


def _overrides(env: str) -> dict[str, str]:
    text = _samconfig()[env]["deploy"]["parameters"]["parameter_overrides"]
    return dict(item.split("=", 1) for item in shlex.split(text))


def _section_table(heading_prefix: str) -> list[list[str]]:
    """Rows (cells) of the first table under the ``## <heading_prefix>...`` section."""
    match = re.search(rf"^## {re.escape(heading_prefix)}.*?\n(.*?)(?=^## |\Z)", _text(), flags=re.M | re.S)
    assert match, f"docs/runbook.md has no section starting '## {heading_prefix}'"
    rows = []
    for line in match.group(1).splitlines():
        if line.startswith("|") and not re.match(r"^\|\s*-+", line):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    assert len(rows) > 1, f"no table under '## {heading_prefix}'"
    return rows[1:]  # without the header


# ----- make targets -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_every_make_command_in_the_docs_is_a_makefile_target(page: Path) -> None:
    targets = _make_targets()
    named = set(_make_commands(page.read_text(encoding="utf-8")))
    assert sorted(named - targets) == [], f"{page.name} names make targets the Makefile does not have"


def test_the_runbook_names_the_deploy_targets() -> None:
    named = set(_make_commands(_text()))
    assert {"deploy-tools", "deploy", "smoke"} <= named


def test_make_deploy_in_the_runbook_uses_a_samconfig_environment() -> None:
    for env in re.findall(r"make deploy ENV=(\S+)", _text()):
        assert env == "$CONFIG_ENV" or env in DEPLOY_ENVS, env
    choice = re.search(r"^CONFIG_ENV=(\S+)", _code_blocks(_text()), flags=re.M)
    assert choice
    assert choice.group(1) in DEPLOY_ENVS


def test_the_runbook_checks_the_caller_before_anything_else() -> None:
    blocks = _code_blocks(_text())
    assert "aws sts get-caller-identity" in blocks
    assert blocks.index("aws sts get-caller-identity") < blocks.index("make deploy ")


# ----- stack outputs and other template names -----------------------------------------------------


def test_every_output_the_runbook_reads_is_a_stack_output() -> None:
    text = _text()
    outputs = set(load()["Outputs"])
    read = set(re.findall(r"\bout ([A-Za-z0-9]+)", _code_blocks(text)))
    read |= set(re.findall(r"\$\(out ([A-Za-z0-9]+)\)", text))
    read |= set(re.findall(r"OutputKey=='([A-Za-z0-9]+)'", text))
    read |= set(re.findall(r"`([A-Za-z0-9]+)` output", text))
    assert read, "the runbook reads no outputs at all?"
    assert sorted(read - outputs) == []
    # The ones an administrator cannot do without.
    assert {"AdminPasswordSecretArn", "NameServers", "CustomDomainTarget", "CustomDomainValidationRecords"} <= read
    assert {"ServiceUrl", "CustomUrl", "NotificationTopicArn"} <= read


def test_the_output_helper_queries_the_outputs_by_key() -> None:
    assert "--query \"Stacks[0].Outputs[?OutputKey=='$1'].OutputValue\"" in _code_blocks(_text())


def test_every_template_name_in_the_runbook_exists() -> None:
    template = load()
    known = set(template["Parameters"]) | set(template["Outputs"]) | set(template["Resources"])
    for spec in template["Parameters"].values():
        known |= {str(v) for v in spec.get("AllowedValues", [])}
    named = {s for s in _code_spans(_text()) if re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+", s)}
    assert sorted(named - known - set(NOT_TEMPLATE_NAMES)) == []


def test_the_admin_sees_only_the_password() -> None:
    blocks = _code_blocks(_text())
    command = re.search(r"aws secretsmanager get-secret-value [^\n]*\n[^\n]*", blocks)
    assert command, "no get-secret-value command"
    assert '--secret-id "$(out AdminPasswordSecretArn)"' in command.group(0)
    assert "--query SecretString --output text" in command.group(0)
    assert '["password"]' in command.group(0)
    # The key the stack generates under: RedcapAdminSecret's GenerateStringKey.
    generate = template_secret_generation()
    assert generate["GenerateStringKey"] == "password"
    assert '"username": "site_admin"' in generate["SecretStringTemplate"]


def template_secret_generation() -> dict[str, Any]:
    generate: dict[str, Any] = load()["Resources"]["RedcapAdminSecret"]["Properties"]["GenerateSecretString"]
    return generate


# ----- samconfig.toml ------------------------------------------------------------------------------


def test_the_environment_table_matches_samconfig() -> None:
    rows = _section_table("0. Choose the environment")
    documented = {}
    for cells in rows:
        env, stack, compute = (re.sub(r"`", "", c) for c in cells[:3])
        documented[env] = (stack, compute)
    assert sorted(documented) == sorted(DEPLOY_ENVS)
    config = _samconfig()
    for env, (stack, compute) in documented.items():
        assert config[env]["global"]["parameters"]["stack_name"] == stack, env
        expected = "ECS Express" if _overrides(env)["ComputeType"] == "EcsExpress" else "App Runner"
        assert compute == expected, env


def _placeholder_rows() -> dict[str, tuple[str, str]]:
    out = {}
    for cells in _section_table("3. Fill in samconfig.toml"):
        names = re.findall(r"`([A-Za-z0-9]+)`", cells[0])
        assert len(names) == 1, cells
        out[names[0]] = (cells[1], cells[2])
    return out


def _expected_cell(overrides: dict[str, str], name: str) -> str:
    return f"`{overrides[name]}`" if name in overrides else "not set"


@pytest.mark.parametrize(("column", "envs"), [(0, ["dev", "dev-express"]), (1, ["prod", "prod-express"])])
def test_the_samconfig_table_says_what_each_environment_holds(column: int, envs: list[str]) -> None:
    params = set(load()["Parameters"])
    for name, cells in _placeholder_rows().items():
        assert name in params, f"{name} is not a template parameter"
        for env in envs:
            assert cells[column] == _expected_cell(_overrides(env), name), (env, name)


@pytest.mark.parametrize("env", DEPLOY_ENVS)
def test_every_placeholder_in_samconfig_is_in_the_runbook(env: str) -> None:
    placeholders = {k for k, v in _overrides(env).items() if v == PLACEHOLDER}
    assert placeholders, f"{env} has no CHANGE_ME left to document?"
    assert sorted(placeholders - set(_placeholder_rows())) == []


def test_every_samconfig_key_the_runbook_names_exists() -> None:
    keys: set[str] = set()
    for env in DEPLOY_ENVS:
        for section in _samconfig()[env].values():
            keys |= set(section["parameters"])
    named = {m.group(1) for s in _code_spans(_text()) if (m := re.fullmatch(r"([a-z]+(?:_[a-z]+)+)(?: = \S+)?", s))}
    assert {"parameter_overrides", "confirm_changeset", "stack_name"} <= named
    assert sorted(named - keys - set(NOT_SAMCONFIG_KEYS)) == []
    assert "`confirm_changeset = true`" in _text()
    assert all(_samconfig()[env]["deploy"]["parameters"]["confirm_changeset"] is True for env in DEPLOY_ENVS)
