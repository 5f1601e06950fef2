"""Claims in the docs that a review found wrong once, each tied to the code it describes.

operations.md lists exactly the template's alarms, with the condition each one exists under; NAT
gateways exist only with App Runner; the cluster's deletion protection follows Environment and is
no parameter; first boot, not the administrator, enters REDCap's S3 settings; no page points at a
runbook that does not exist, calls a delete clean, or names a stack or output the stack lacks.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from testkit import ROOT
from testkit.template import Rendered, load

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
OPERATIONS = DOCS / "operations.md"
ALARM = "AWS::CloudWatch::Alarm"


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _samconfig() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))


def _env_params(env: str) -> dict[str, str]:
    """An environment's parameter_overrides, with every CHANGE_ME filled in as an administrator would."""
    text = _samconfig()[env]["deploy"]["parameters"]["parameter_overrides"]
    params = dict(item.split("=", 1) for item in shlex.split(text))
    filled = {
        "RedcapSourceZip": "s3://releases/redcap15.7.6.zip",
        "DomainName": "redcap.example.org",
        "SesEmailIdentity": "redcap@example.org",
        "NotificationEmail": "ops@example.org",
        "AdminEmail": "admin@example.org",
    }
    return {k: filled[k] if v == "CHANGE_ME" else v for k, v in params.items()}


# ----- operations.md: every alarm ------------------------------------------------------------------


def _documented_alarms() -> dict[str, str]:
    """Alarm -> its "Exists" cell, from the table under '## Alarms'."""
    text = OPERATIONS.read_text(encoding="utf-8") + "\n## "
    section = re.search(r"^## Alarms\n(.*?)(?=^## )", text, re.M | re.S)
    assert section, "docs/operations.md has no '## Alarms' section"
    out: dict[str, str] = {}
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or re.match(r"^-+$", cells[0]) or cells[0] == "Alarm":
            continue
        name = re.fullmatch(r"`([A-Za-z0-9]+)`", cells[0])
        assert name, f"first cell is not one `AlarmName`: {cells}"
        assert name.group(1) not in out, f"{name.group(1)} listed twice"
        out[name.group(1)] = cells[1]
    return out


def _template_alarms() -> dict[str, str | None]:
    return {n: r.get("Condition") for n, r in load()["Resources"].items() if r["Type"] == ALARM}


def test_operations_lists_exactly_the_templates_alarms() -> None:
    documented, template = set(_documented_alarms()), set(_template_alarms())
    assert sorted(template - documented) == [], "alarms missing from docs/operations.md"
    assert sorted(documented - template) == [], "docs/operations.md lists alarms the template does not have"


def test_operations_names_the_condition_each_alarm_exists_under() -> None:
    documented = _documented_alarms()
    for name, condition in _template_alarms().items():
        assert documented[name] == ("always" if condition is None else f"`{condition}`"), name


def _alarm_count(params: dict[str, str]) -> int:
    rendered = Rendered(**params)
    return sum(1 for cond in _template_alarms().values() if cond is None or rendered.condition(cond))


def test_operations_counts_are_the_templates() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    assert f"{len(_template_alarms())} in all" in text
    assert f"(the `prod` environment) has {_alarm_count(_env_params('prod'))};" in text
    assert f"(`prod-express`) has {_alarm_count(_env_params('prod-express'))}." in text


# ----- NAT gateways exist only with App Runner -------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "nat_gateways"), [("dev", 0), ("prod", 2), ("dev-express", 0), ("prod-express", 0)], ids=str
)
def test_nat_gateways_exist_only_with_app_runner(env: str, nat_gateways: int) -> None:
    # What README's diagram, deploy.md's Environment row, compute.md and samconfig.toml say.
    rendered = Rendered(**_env_params(env))
    found = [n for n, r in load()["Resources"].items() if r["Type"] == "AWS::EC2::NatGateway"]
    present = [n for n in found if (c := load()["Resources"][n].get("Condition")) is None or rendered.condition(c)]
    assert len(present) == nat_gateways, (env, present)


def test_the_docs_say_nat_is_app_runner_only() -> None:
    assert "with App Runner one NAT gateway per AZ (ECS Express has none)" in _page("deploy.md")
    assert "No NAT gateway on Express" in (ROOT / "samconfig.toml").read_text(encoding="utf-8")


# ----- deletion protection, deletes ------------------------------------------------------------------


def test_deletion_protection_follows_environment_and_is_no_parameter() -> None:
    template = load()
    assert "DeletionProtection" not in template["Parameters"]
    assert template["Resources"]["DbCluster"]["Properties"]["DeletionProtection"] == {"Fn::If": ["IsProd", True, False]}
    deploy = _page("deploy.md")
    assert "that is not a parameter, it follows `Environment=prod`" in deploy
    assert "--no-deletion-protection" in deploy


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_calls_a_delete_clean(page: Path) -> None:
    # A dev delete leaves things behind on purpose: say so, and point at "What a delete leaves".
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"\b(?:deletes?|deleted|deleting)\s+cleanly\b", text), page.name


# ----- first boot enters the S3 settings --------------------------------------------------------------


def test_first_boot_seeds_the_s3_settings_and_no_page_asks_for_them() -> None:
    install = (ROOT / "containers/redcap/rootfs/opt/redcap-image/lib/install.php").read_text(encoding="utf-8")
    for row in ("edoc_storage_option", "amazon_s3_bucket", "amazon_s3_endpoint", "amazon_s3_key", "amazon_s3_secret"):
        assert f"'{row}'" in install, row
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"enter (it )?in REDCap's Amazon S3", text), page.name
    assert "nothing to enter" in _page("deploy.md")
    assert "never type a key there" in _page("runbook.md")


# ----- pointers, names, environments -----------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_no_page_points_at_a_readme_runbook(page: Path) -> None:
    # The README has no runbook; the administrator's one is docs/runbook.md.
    assert not re.search(r"README'?s (?:manual )?runbook", page.read_text(encoding="utf-8")), page.name


def test_samconfig_points_at_the_page_that_lists_every_parameter() -> None:
    header = (ROOT / "samconfig.toml").read_text(encoding="utf-8").split("version")[0]
    assert 'README\'s "Deploy for real" lists every parameter' not in header
    # docs/deploy.md's Parameters tables are complete (test_foundation_readme.py) and the runbook's step 3.
    assert "docs/deploy.md list every parameter" in header
    assert "docs/runbook.md" in header


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_commands_name_real_stacks_and_outputs(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    stacks = {env["global"]["parameters"]["stack_name"] for env in _samconfig().values() if isinstance(env, dict)}
    for name in re.findall(r"--stack-name\s+(\S+)", text):
        assert name.startswith(('"$', "$", "<")) or name in stacks, f"{page.name}: no stack is named {name}"
    outputs = set(load()["Outputs"])
    for name in re.findall(r"OutputKey=='([A-Za-z0-9]+)'", text):
        assert name in outputs, f"{page.name}: no output {name}"
    assert "<ServiceArn>" not in text, f"{page.name}: the stack has no ServiceArn output"


def test_development_names_every_deploy_environment() -> None:
    text = _page("development.md")
    for env in (e for e in _samconfig() if e not in ("default", "version")):
        assert f"`{env}`" in text, env


# ----- App Runner named where ECS Express applies too ------------------------------------------------

# In these pages, a paragraph that names the App Runner resource also names its ECS Express twin.
TWINS = {
    "AppRunnerService": "ExpressService",
    "AppRunnerEcrAccessRole": "ExpressExecutionRole",
    "AppRunnerInstanceRole": "ExpressTaskRole",
}


@pytest.mark.parametrize("name", ["deploy.md", "image-build.md", "image.md", "path-to-production.md"])
def test_app_runner_resources_come_with_their_express_twins(name: str) -> None:
    template = load()["Resources"]
    for paragraph in re.split(r"\n\s*\n", _page(name)):
        for app_runner, express in TWINS.items():
            assert app_runner in template
            assert express in template
            if f"`{app_runner}`" in paragraph:
                assert f"`{express}`" in paragraph, f"{name}: {app_runner} without {express}:\n{paragraph}"
